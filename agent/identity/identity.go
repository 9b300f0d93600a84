// Package identity stores a node's identity (what enrolment returned) in
// the agent's state directory: one JSON file, mode 0600, in a directory of
// mode 0700, replaced atomically.
package identity

import (
	"bytes"

	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pullgate/pullgate/internal/atomicfile"

	"github.com/pullgate/pullgate/pkg/wire"
)

// FileName is the identity file inside the state directory.
const FileName = "identity.json"

// ErrNotFound means the node has not enrolled yet.
var ErrNotFound = errors.New("no node identity")

// Identity is a node's own NATS identity and the cluster it belongs to.
type Identity struct {
	NodeID     string    `json:"node_id"`
	NodeSecret string    `json:"node_secret"`
	ClusterID  string    `json:"cluster_id"`
	Cluster    string    `json:"cluster,omitempty"`
	Shared     bool      `json:"shared,omitempty"`
	NodeName   string    `json:"node_name,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at"`
}

// String never shows the secret.
func (id Identity) String() string {
	return fmt.Sprintf("node %s of cluster %s (%s)", id.NodeID, id.Cluster, id.ClusterID)
}

// GoString never shows the secret either (%#v).
func (id Identity) GoString() string { return "identity.Identity{" + id.String() + "}" }

// LogValue keeps the secret out of structured logs.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("node", id.NodeID), slog.String("cluster", id.Cluster),
		slog.String("cluster_id", id.ClusterID), slog.Bool("shared", id.Shared))
}

// FromEnrolReply builds an identity from the hub's answer.
func FromEnrolReply(r wire.EnrolReply, nodeName string, now time.Time) (Identity, error) {
	id := Identity{NodeID: r.NodeID, NodeSecret: r.NodeSecret, ClusterID: r.ClusterID, Cluster: r.Cluster,
		Shared: r.Shared, NodeName: nodeName, EnrolledAt: now.UTC()}
	return id, id.Validate()
}

// Validate checks that the identity can be used to connect.
func (id Identity) Validate() error {
	switch {
	case id.NodeID == "" || strings.ContainsAny(id.NodeID, ".*> \t\r\n"):
		return fmt.Errorf("node identity: bad node id %q", id.NodeID)
	case id.ClusterID == "" || strings.ContainsAny(id.ClusterID, ".*> \t\r\n"):
		return fmt.Errorf("node identity: bad cluster id %q", id.ClusterID)
	case id.NodeSecret == "":
		return fmt.Errorf("node identity: empty node secret")
	}
	return nil
}

// Path is the identity file of a state directory.
func Path(stateDir string) string { return filepath.Join(stateDir, FileName) }

// Load reads the identity from stateDir; ErrNotFound when there is none.
// A file readable by others is tightened to 0600.
func Load(stateDir string) (Identity, error) {
	p := Path(stateDir)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, ErrNotFound
	}
	if err != nil {
		return Identity{}, fmt.Errorf("read node identity: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return Identity{}, fmt.Errorf("node identity %s is readable by others and cannot be fixed: %w", p, err)
		}
	}
	var id Identity
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&id); err != nil {
		// The decoder's message never quotes values, so no secret leaks.
		return Identity{}, fmt.Errorf("node identity %s: malformed: %w", p, err)
	}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%s: %w", p, err)
	}
	return id, nil
}

// EnsureDir creates the state directory with mode 0700 (and tightens an
// existing one).
func EnsureDir(stateDir string) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		return fmt.Errorf("state dir permissions: %w", err)
	}
	return nil
}

// Save writes the identity atomically: a temporary file in the same
// directory (0600), fsync, rename, fsync of the directory.
func Save(stateDir string, id Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := EnsureDir(stateDir); err != nil {
		return err
	}
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("encode node identity: %w", err)
	}
	if err := atomicfile.Write(Path(stateDir), bytes.NewReader(append(data, '\n')), 0o600); err != nil {
		return fmt.Errorf("save node identity: %w", err)
	}
	return nil
}
