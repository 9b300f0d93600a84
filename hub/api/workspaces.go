package api

import (
	"net/http"
	"slices"
)

func (s *server) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req CreateWorkspaceRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	setTarget(r, "workspace", req.Name)
	ws, err := s.d.Store.CreateWorkspace(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, workspaceView(ws))
	return nil
}

func (s *server) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	wss, err := s.d.Store.ListWorkspaces(r.Context())
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	out := WorkspaceList{Workspaces: make([]Workspace, 0, len(wss))}
	for _, ws := range wss {
		// A member sees its own workspaces only.
		if p.RoleByID(ws.ID) == "" {
			continue
		}
		out.Workspaces = append(out.Workspaces, workspaceView(ws))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.d.Store.GetWorkspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceView(ws))
	return nil
}

func (s *server) deleteWorkspace(w http.ResponseWriter, r *http.Request) error {
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	ctx, name := r.Context(), r.PathValue("ws")
	ws, err := s.d.Store.GetWorkspace(ctx, name)
	if err != nil {
		return err
	}
	// Read before the delete for the pushes after it; the store decides
	// (in its transaction) what is actually removed.
	ins, err := s.d.Store.ListInstalls(ctx, name)
	if err != nil {
		return err
	}
	clusters, err := s.d.Store.ListClusters(ctx)
	if err != nil {
		return err
	}
	// The workspace's Akash account goes with it, and with the account
	// the revocations below lose the lease clusters its Akash installs
	// were served on: find them now.
	leased, err := s.d.Store.AkashLeaseClusters(ctx, ws.ID)
	if err != nil {
		return err
	}
	gone, err := s.d.Store.DeleteWorkspace(ctx, name, force)
	if err != nil {
		return err
	}
	// Agents of the workspace's clusters drop everything and are
	// disconnected; installs on shared clusters are revoked there.
	for _, c := range clusters {
		if c.WorkspaceID == ws.ID {
			s.revoke("cluster "+c.Name, func(rv Revoker) error { return rv.ClusterDeleted(ctx, c) })
		}
		if slices.Contains(leased, c.ID) {
			// Agents resync and drop the installs no longer served.
			s.revoke("leases of cluster "+c.Name, func(rv Revoker) error { return rv.AkashLeasesChanged(ctx, c) })
		}
	}
	for _, in := range ins {
		s.revoke("install "+in.Name, func(rv Revoker) error { return rv.InstallChanged(ctx, in) })
	}
	writeJSON(w, http.StatusOK, deleteWorkspaceView(gone))
	return nil
}
