package api

import (
	"net/http"

	"github.com/pullgate/pullgate/hub/store"
)

// Members of a workspace: owners (and the admin) add, change and remove
// them. Adding a user that does not exist creates it; users have no
// password, they sign in with API tokens.

func (s *server) listMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.d.Store.ListMembers(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := MemberList{Members: make([]Member, 0, len(ms))}
	for _, m := range ms {
		out.Members = append(out.Members, memberView(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request) error {
	var req AddMemberRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := checkName("user", req.User); err != nil {
		return err
	}
	setTarget(r, "member", req.User)
	// "admin" names the hub admin in the activity log and the request log.
	if req.User == "admin" {
		return badRequest("user name %q is reserved for the hub admin", req.User)
	}
	role, err := store.ParseRole(req.Role)
	if err != nil {
		return err
	}
	m, err := s.d.Store.AddMember(r.Context(), r.PathValue("ws"), req.User, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, memberView(m))
	return nil
}

func (s *server) updateMember(w http.ResponseWriter, r *http.Request) error {
	var req UpdateMemberRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	role, err := store.ParseRole(req.Role)
	if err != nil {
		return err
	}
	// Owners keep their workspace owned; the admin may leave it without.
	keep := !principalFrom(r.Context()).IsAdmin()
	m, err := s.d.Store.UpdateMember(r.Context(), r.PathValue("ws"), r.PathValue("user"), role, keep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, memberView(m))
	return nil
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) error {
	keep := !principalFrom(r.Context()).IsAdmin()
	if _, err := s.d.Store.RemoveMember(r.Context(), r.PathValue("ws"), r.PathValue("user"), keep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteUser deletes a user with its memberships, API tokens and console
// sessions (the admin).
func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.d.Store.DeleteUser(r.Context(), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// whoami answers GET /api/v1/whoami.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, principalFrom(r.Context()).view())
	return nil
}
