package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pullgate/pullgate/hub/store"
)

// Every route of the table declares who may call it (its rule); New
// refuses a route without one. A member of workspace A asking for
// anything of workspace B gets the same 404 as for a workspace that does
// not exist, so that names of other tenants never leak; a member with too
// low a role in its own workspace gets 403.

type ruleKind int

const (
	ruleUnset     ruleKind = iota
	rulePublic             // no authentication (the session routes check their own)
	ruleAdmin              // the hub admin only
	ruleSignedIn           // any principal; the handler limits what it shows
	ruleWorkspace          // a role in the {ws} workspace
	ruleCluster            // a role in the workspace owning {cluster}; shared clusters: admin
	// ruleAkashController: the hub admin, or the {cluster}'s Akash
	// binding controller by its service-account token (akash_leases.go).
	ruleAkashController
)

// rule is a route's access rule.
type rule struct {
	kind ruleKind
	role store.Role // ruleWorkspace, ruleCluster
	// sharedRead lets any principal read a shared cluster (the handler
	// shows its name only).
	sharedRead bool
}

var (
	public   = rule{kind: rulePublic}
	admin    = rule{kind: ruleAdmin}
	signedIn = rule{kind: ruleSignedIn}
	// akashController: the admin or the cluster's Akash controller.
	akashController = rule{kind: ruleAkashController}
)

func wsRole(r store.Role) rule      { return rule{kind: ruleWorkspace, role: r} }
func clusterRole(r store.Role) rule { return rule{kind: ruleCluster, role: r} }

func (r rule) String() string {
	switch r.kind {
	case rulePublic:
		return "public"
	case ruleAdmin:
		return "admin"
	case ruleSignedIn:
		return "signed-in"
	case ruleWorkspace:
		return "workspace " + string(r.role)
	case ruleCluster:
		return "cluster " + string(r.role)
	case ruleAkashController:
		return "akash-controller"
	}
	return "unset"
}

func (r rule) valid() bool {
	switch r.kind {
	case rulePublic, ruleAdmin, ruleSignedIn, ruleAkashController:
		return true
	case ruleWorkspace, ruleCluster:
		return r.role.Rank() > 0
	}
	return false
}

// notFoundWorkspace is exactly what a missing workspace answers.
func notFoundWorkspace(name string) error {
	return fmt.Errorf("workspace %q: %w", name, store.ErrNotFound)
}

// notFoundCluster is exactly what a missing cluster answers.
func notFoundCluster(name string) error {
	return fmt.Errorf("cluster %q: %w", name, store.ErrNotFound)
}

func forbidden(p *Principal, need store.Role, ws string) error {
	return errorf(http.StatusForbidden, "forbidden: %s %q is %s in workspace %q; this needs %s", p.Kind, p.Name, p.Role(ws), ws, need)
}

// authorize applies rt's rule to the request's principal. It fills the
// request's activity record (workspace, refusal).
func (s *server) authorize(r *http.Request, rt *route) error {
	ri := infoFrom(r.Context())
	p := ri.principal
	err := s.check(r, rt, p, ri)
	if err != nil {
		ri.refused = true
	}
	return err
}

func (s *server) check(r *http.Request, rt *route, p *Principal, ri *reqInfo) error {
	ctx := r.Context()
	ws := r.PathValue("ws")
	if ws != "" {
		ri.workspace = ws
	}
	switch rt.access.kind {
	case rulePublic, ruleSignedIn:
		return nil
	case ruleAdmin:
		if p.IsAdmin() {
			return nil
		}
		if ws != "" && p.Role(ws) == "" {
			ri.hideWorkspace = true
			return notFoundWorkspace(ws)
		}
		return errorf(http.StatusForbidden, "forbidden: only the hub admin may %s %s", r.Method, rt.path)
	case ruleWorkspace:
		return checkRole(ri, ws, rt.access.role)
	case ruleCluster:
		return s.checkCluster(ctx, r.PathValue("cluster"), rt.access, p, ri)
	case ruleAkashController:
		return s.checkAkashController(ctx, r.PathValue("cluster"), p, ri)
	}
	return errorf(http.StatusInternalServerError, "route %s %s has no access rule", rt.method, rt.path)
}

// checkCluster: the admin manages every cluster; a member of the owning
// workspace with the role manages a single-workspace cluster; a shared
// cluster is the admin's (members see its name: sharedRead).
func (s *server) checkCluster(ctx context.Context, name string, ru rule, p *Principal, ri *reqInfo) error {
	c, err := s.d.Store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		ri.hideWorkspace = true
		return notFoundCluster(name)
	}
	if err != nil {
		return err
	}
	// No more store reads for another tenant's cluster than for a missing
	// one: a member's workspace names come with its memberships.
	if c.WorkspaceID != "" {
		ri.workspaceID = c.WorkspaceID
	}
	if p.IsAdmin() {
		if c.WorkspaceID != "" {
			ri.workspace = s.workspaceName(ctx, c.WorkspaceID)
		}
		return nil
	}
	if c.WorkspaceID == "" {
		if ru.sharedRead {
			return nil
		}
		return errorf(http.StatusForbidden, "forbidden: cluster %q is shared: only the hub admin manages it", name)
	}
	m, _ := p.membershipByID(c.WorkspaceID)
	if m.Role == "" {
		ri.hideWorkspace = true
		return notFoundCluster(name)
	}
	ri.workspace = m.Workspace
	if m.Role.Rank() < ru.role.Rank() {
		return forbidden(p, ru.role, ri.workspace)
	}
	return nil
}

// requireRole is the rule check for a workspace named in a request body
// (cluster create): 404 for a workspace the principal is no member of.
func requireRole(ctx context.Context, ws string, need store.Role) error {
	ri := infoFrom(ctx)
	err := checkRole(ri, ws, need)
	if err != nil {
		ri.refused = true
	}
	return err
}

// checkRole is the workspace rule: 404 for a workspace the request's
// principal is no member of, 403 for a role below need.
func checkRole(ri *reqInfo, ws string, need store.Role) error {
	p := ri.principal
	role := p.Role(ws)
	if role == "" {
		ri.hideWorkspace = true
		return notFoundWorkspace(ws)
	}
	// A member's memberships carry the workspace id: its activity row
	// needs no lookup (recordActivity).
	if m, ok := p.membership(ws); ok {
		ri.workspaceID = m.WorkspaceID
	}
	if role.Rank() < need.Rank() {
		return forbidden(p, need, ws)
	}
	return nil
}
