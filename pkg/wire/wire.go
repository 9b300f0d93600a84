// Package wire defines the messages between the hub, node agents and the
// credential helper: NATS subjects and JSON bodies of the control plane
// (versioned pullgate.v1.*), and the agent's unix-socket API. Everything
// that crosses a process boundary on the node side is defined here once.
package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Version is the control-plane protocol version in every subject.
const Version = "v1"

const prefix = "pullgate." + Version + "."

// QueueGroup is the hub token service's queue group: hub replicas share
// requests.
const QueueGroup = "pullgate-hub"

// Subjects. The NATS server enforces who may use which (see hub/natsauth):
// an enrolling agent may publish only EnrolSubject of its cluster; an
// enrolled node may publish only its own TokenSubject and SyncSubject and
// subscribe only to its cluster's RevokeSubject and its own inbox.
func EnrolSubject(clusterID string) string { return prefix + "enrol." + clusterID }

// TokenSubject is where a node asks for install tokens.
func TokenSubject(clusterID, nodeID string) string {
	return prefix + "token." + clusterID + "." + nodeID
}

// SyncSubject is where a node asks for the live state of its cluster's
// installs (after a reconnect, and periodically).
func SyncSubject(clusterID, nodeID string) string {
	return prefix + "sync." + clusterID + "." + nodeID
}

// RevokeSubject is where the hub pushes revocations for a cluster.
func RevokeSubject(clusterID string) string { return prefix + "revoke." + clusterID }

// Wildcards the hub subscribes to.
const (
	EnrolSubjectAll = prefix + "enrol.*"
	TokenSubjectAll = prefix + "token.*.*"
	SyncSubjectAll  = prefix + "sync.*.*"
)

// ParseNodeSubject returns the cluster and node of a token or sync subject.
// The NATS server has already checked that the sender owns them.
func ParseNodeSubject(subject string) (clusterID, nodeID string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 5 || parts[0] != "pullgate" || parts[1] != Version || parts[3] == "" || parts[4] == "" {
		return "", "", fmt.Errorf("subject %q: want pullgate.%s.<kind>.<cluster>.<node>", subject, Version)
	}
	return parts[3], parts[4], nil
}

// ParseEnrolSubject returns the cluster of an enrol subject.
func ParseEnrolSubject(subject string) (string, error) {
	c, ok := strings.CutPrefix(subject, prefix+"enrol.")
	if !ok || c == "" || strings.Contains(c, ".") {
		return "", fmt.Errorf("subject %q: want %senrol.<cluster>", subject, prefix)
	}
	return c, nil
}

// InboxPrefix is a node's reply inbox prefix (nats.CustomInboxPrefix).
// Only that node may subscribe below it.
func InboxPrefix(nodeID string) string { return "_INBOX_" + nodeID }

// EnrolInboxPrefix is the reply inbox of an enrolling connection.
func EnrolInboxPrefix(enrolID string) string { return "_INBOX_enrol_" + enrolID }

// EnrolUser is the NATS user name of an enrolling agent; its password is
// the cluster's join token.
func EnrolUser(enrolID string) string { return "enrol-" + enrolID }

// Token formats. Join tokens name their cluster so the hub can find the
// hash to compare with; the secret parts are random.
const (
	JoinTokenPrefix  = "pgj1."
	NodeSecretPrefix = "pgn1."
)

// ParseJoinToken splits "pgj1.<cluster-id>.<secret>".
func ParseJoinToken(s string) (clusterID, secret string, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), JoinTokenPrefix)
	if !ok {
		return "", "", fmt.Errorf("join token: want %s<cluster>.<secret>", JoinTokenPrefix)
	}
	clusterID, secret, ok = strings.Cut(rest, ".")
	if !ok || len(secret) < 16 || !idToken(clusterID) {
		return "", "", fmt.Errorf("join token: malformed")
	}
	return clusterID, secret, nil
}

// idToken reports whether s can be an id inside a subject: hub ids are a
// prefix and hex digits, so letters, digits, '_' and '-' are enough, and
// nothing else can change a subject's shape (found by FuzzParseJoinToken:
// a tab or a non-ASCII space went through).
func idToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// ErrorReply is embedded in every reply: a non-empty Error means the
// request failed and Code says how.
type ErrorReply struct {
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Error codes.
const (
	CodeInvalid   = "invalid"   // malformed request or image reference
	CodeNotFound  = "not_found" // no install on this cluster serves the image
	CodeAmbiguous = "ambiguous" // several installs could serve it; a service-account token is needed
	CodeForbidden = "forbidden" // service-account token refused, node revoked, cluster gone
	CodeInternal  = "internal"
)

// EnrolRequest is sent on EnrolSubject by an agent holding a join token.
type EnrolRequest struct {
	NodeName     string `json:"node_name"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// EnrolReply gives the node its own identity.
type EnrolReply struct {
	ErrorReply
	NodeID     string `json:"node_id,omitempty"`
	NodeSecret string `json:"node_secret,omitempty"` // NATS password of the node
	ClusterID  string `json:"cluster_id,omitempty"`
	Cluster    string `json:"cluster,omitempty"` // name
	Shared     bool   `json:"shared,omitempty"`  // multi-workspace: service-account tokens required
}

// TokenRequest asks for an install token for an image, with the pod's
// projected service-account token when the kubelet supplies one (KEP-4412).
type TokenRequest struct {
	Image               string            `json:"image"`
	ServiceAccountToken string            `json:"service_account_token,omitempty"`
	Annotations         map[string]string `json:"service_account_annotations,omitempty"`
}

// TokenReply carries a fresh install token and what the agent needs to
// cache it and to drop it on revocation.
type TokenReply struct {
	ErrorReply
	Token      string    `json:"token,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Install    string    `json:"install,omitempty"`    // name, for logs
	InstallID  string    `json:"install_id,omitempty"` // revocation key
	Workspace  string    `json:"workspace_id,omitempty"`
	Generation int64     `json:"generation,omitempty"`
	Epoch      string    `json:"epoch,omitempty"`
	// Registry is the auth key for the image: its registry host as the
	// image names it (the hub's host for path-prefix images).
	Registry string `json:"registry,omitempty"`
	// Hub says Registry is the hub itself (a path-prefix image, or the
	// hub's bare host): the runtime sends the token to the hub whatever
	// the node's mirrors. Otherwise Registry is an upstream host, and the
	// agent answers only when the node routes that host to the hub.
	Hub bool `json:"hub,omitempty"`
}

// InstallState is the part of an install's live state a cached token
// depends on. A token is still good while its install is listed with the
// same generation and epoch; Epoch changes when any credential of the
// install's workspace is disabled, deleted or changed.
type InstallState struct {
	Generation int64  `json:"generation"`
	Epoch      string `json:"epoch"`
}

// SyncRequest asks for the live state of the node's cluster.
type SyncRequest struct {
	Seq uint64 `json:"seq"` // last revocation seen
	// JWKS, when set, is the cluster's service-account issuer key set as
	// the agent found it. The hub never trusts it by itself: when it
	// differs from the keys an operator approved it is recorded as a
	// proposal the operator reviews (pullgate-hub cluster jwks show).
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// Issuer, when set, is the issuer URL the agent found for those keys;
	// part of the proposal.
	Issuer string `json:"issuer,omitempty"`
	// AgentVersion is the agent's version, so that the hub shows what each
	// node runs after an upgrade (enrolment happens once). Optional: older
	// agents do not send it and keep being served.
	AgentVersion string `json:"agent_version,omitempty"`
}

// SyncReply lists every live install of the cluster. Anything a node holds
// for an install not listed, or listed with another state, is revoked.
type SyncReply struct {
	ErrorReply
	Source   string                  `json:"source"` // the answering hub process, as in Revocation
	Seq      uint64                  `json:"seq"`
	Installs map[string]InstallState `json:"installs"`
	// Hosts are the canonical upstream hosts ("docker.io", "ghcr.io",
	// "registry.corp") the cluster's installs pull from: a credential of
	// the install's workspace is for the host and the install's allow-list
	// reaches it. Disabled installs and credentials count (a pause must
	// not switch a node's pulls of the host to the upstream itself);
	// deleted ones do not. Agents write containerd mirror configuration
	// for them. The hub always sends the field (an empty
	// list when there are none); nil means a hub that does not know it,
	// and agents then leave their mirror configuration as it is.
	Hosts []string `json:"hosts"`
}

// Revocation is pushed on RevokeSubject. An agent drops every cached token
// it matches. Seq grows by one per message of a Source (one hub process);
// a gap within a source, or a source the agent has not seen, makes the
// agent resync. A Revocation that names nothing is a change notice: nothing
// is dropped, and agents that keep containerd mirrors resync.
type Revocation struct {
	Source     string    `json:"source"`
	Seq        uint64    `json:"seq"`
	Installs   []string  `json:"installs,omitempty"`   // install ids
	Workspaces []string  `json:"workspaces,omitempty"` // workspace ids: all their installs
	Nodes      []string  `json:"nodes,omitempty"`      // node ids: those nodes drop everything
	Cluster    bool      `json:"cluster,omitempty"`    // the cluster is gone: drop everything
	Time       time.Time `json:"time"`
}

// Agent unix-socket API (HTTP over the socket).
const (
	// CredentialsPath: POST a CredentialsRequest, get Credentials (200),
	// or an ErrorReply with 404 when no install serves the image (the
	// docker-credential-helper not-found case), 4xx/5xx otherwise.
	CredentialsPath = "/v1/credentials"
	HealthPath      = "/healthz"
	// DefaultSocket is where the agent listens and the helper dials.
	DefaultSocket = "/run/pullgate/agent.sock"
)

// CredentialsRequest is what the helper sends the agent.
type CredentialsRequest = TokenRequest

// Credentials are what the helper hands to the kubelet or runtime.
type Credentials struct {
	Registry  string    `json:"registry"` // auth key
	Username  string    `json:"username"`
	Password  string    `json:"password"` // the install token
	ExpiresAt time.Time `json:"expires_at"`
}

// Username is the user name presented with install tokens; the hub
// ignores it.
const Username = "pullgate"
