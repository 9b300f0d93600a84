package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// The activity log is the audit of operator actions (the pull audit is
// separate): every state-changing request of a signed-in principal that
// reached a route writes one row, whether it succeeded ("ok"), was refused
// by an access check ("refused": 403, the 404 of another tenant's object,
// a missing CSRF token) or failed otherwise ("failed": bad input,
// conflict). Requests without a valid credential (401) have no principal
// and are only in the request log. A row holds names and ids, never a
// request body: no secret can reach it.

// reqInfo is what one request learns about itself on the way: who, what,
// where. ServeHTTP creates it; authorize and the handlers fill it.
type reqInfo struct {
	principal   *Principal
	targetKind  string
	target      string
	workspace   string
	workspaceID string
	// hideWorkspace: the principal is no member of the workspace the
	// request named; its refusal goes to the admin's log only.
	hideWorkspace bool
	refused       bool
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// setTarget names the object a request acts on (handlers of create routes,
// whose object is in the body).
func setTarget(r *http.Request, kind, name string) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.targetKind, ri.target = kind, name
	}
}

// setWorkspace names the workspace a request acts in when the path does
// not (cluster create).
func setWorkspace(r *http.Request, ws string) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.workspace = ws
	}
}

// setPrincipal records who a public route (sign-in) turned out to be.
func setPrincipal(r *http.Request, p *Principal) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.principal = p
	}
}

// targetFromPath is the default target: the most specific path value.
func targetFromPath(r *http.Request) string {
	for _, k := range []string{"node", "name", "user", "id", "digest", "cluster", "ws"} {
		if v := r.PathValue(k); v != "" {
			return v
		}
	}
	return ""
}

// secretPattern matches the hub's own secrets: API, admin and session
// tokens, join tokens, and JWTs (install tokens: base64url of `{"`).
// The hub's secrets carry at least 32 random bytes after the prefix; a
// name such as "pgu_mirror" is left alone.
var secretPattern = regexp.MustCompile(`\b(?:` + APITokenPrefix + `|pga_|` + sessionPrefix + `|` + regexp.QuoteMeta(wire.JoinTokenPrefix) + `|eyJ)[A-Za-z0-9_.\-]{20,}`)

// redactSecrets replaces what looks like a secret in s: a secret pasted
// where a name or id belongs (`token revoke pgu_...`) reaches neither the
// activity log nor an error message.
func redactSecrets(s string) string {
	return secretPattern.ReplaceAllString(s, "[redacted]")
}

// remoteAddr is the client's address. The hub has no trusted-proxy
// setting, so forwarded headers are not believed.
func remoteAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// recordActivity writes the activity row of a finished state-changing
// request. A failed write is logged: the change itself is done.
func (s *server) recordActivity(r *http.Request, rt *route, ri *reqInfo, status int) {
	p := ri.principal
	if p == nil || rt == nil || safeMethod(r.Method) {
		return
	}
	a := store.Activity{
		Time: s.now(), PrincipalKind: p.Kind, Principal: p.Name, TokenID: p.TokenID,
		Action: rt.action, TargetKind: ri.targetKind, Target: ri.target,
		RemoteAddr: remoteAddr(r), Method: r.Method, Path: shorten(r.URL.Path, 512), Status: status,
	}
	if a.TargetKind == "" {
		a.TargetKind, _, _ = strings.Cut(rt.action, ".")
	}
	if a.Target == "" {
		a.Target = targetFromPath(r)
	}
	// A secret pasted where a name or id belongs (`token revoke pgu_...`)
	// must not reach the log.
	a.Target, a.Path = redactSecrets(a.Target), redactSecrets(a.Path)
	// Target and path come from the request (a path segment is decoded:
	// %1B is an escape): a member must not write terminal escape
	// sequences, bidi overrides or a megabyte into the rows that the hub
	// admin reads with `pullgate-hub activity` and owners in the console.
	a.Target, a.Path = activityText(a.Target, maxActivityTarget), activityText(a.Path, maxActivityPath)
	if p.session != nil && a.TokenID == "" {
		a.TokenID = p.session.ID
	}
	switch {
	case status < 300:
		a.Result = "ok"
	case ri.refused || status == http.StatusForbidden:
		a.Result = "refused"
	default:
		a.Result = "failed"
	}
	if !ri.hideWorkspace && ri.workspace != "" {
		a.Workspace, a.WorkspaceID = ri.workspace, ri.workspaceID
		if a.WorkspaceID == "" {
			if ws, err := s.d.Store.GetWorkspace(r.Context(), ri.workspace); err == nil {
				a.WorkspaceID = ws.ID
			}
		}
	}
	// A workspace deleted by this very request: keep the name, the
	// admin's log shows it.
	if err := s.d.Store.AppendActivity(context.WithoutCancel(r.Context()), a); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "record activity", slog.String("action", a.Action), slog.String("error", err.Error()))
	}
}

// workspaceActivity answers GET /workspaces/{ws}/activity (owners).
func (s *server) workspaceActivity(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.d.Store.GetWorkspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	return s.answerActivity(w, r, ws.ID, false)
}

// allActivity answers GET /activity (the admin).
func (s *server) allActivity(w http.ResponseWriter, r *http.Request) error {
	wsID := ""
	if name := r.URL.Query().Get("workspace"); name != "" {
		ws, err := s.d.Store.GetWorkspace(r.Context(), name)
		if err != nil {
			return err
		}
		wsID = ws.ID
	}
	return s.answerActivity(w, r, wsID, true)
}

func (s *server) answerActivity(w http.ResponseWriter, r *http.Request, wsID string, allowWorkspace bool) error {
	q := store.ActivityQuery{WorkspaceID: wsID}
	vals := r.URL.Query()
	want := []string{"since", "after", "limit"}
	if allowWorkspace {
		want = append(want, "workspace")
	}
	if err := checkParams(vals, want); err != nil {
		return err
	}
	if v := vals.Get("since"); v != "" {
		t, err := parseSince(v, s.now())
		if err != nil {
			return err
		}
		q.Since = t
	}
	if v := vals.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("after %q: want an activity id (a non-negative integer)", v)
		}
		q.AfterID = n
	}
	var err error
	if q.Limit, err = parseLimit(vals.Get("limit")); err != nil {
		return err
	}
	as, err := s.d.Store.QueryActivity(r.Context(), q)
	if err != nil {
		return err
	}
	out := ActivityList{Activity: make([]Activity, 0, len(as))}
	for _, a := range as {
		out.Activity = append(out.Activity, activityView(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Bounds of the request-supplied text of an activity row.
const (
	maxActivityTarget = 256
	maxActivityPath   = 512
)

// activityText makes s safe to show: control and format characters and
// invalid UTF-8 become '?', and it is cut to at most n bytes (on a rune
// boundary, with "..." after).
func activityText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unsafeRune(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
