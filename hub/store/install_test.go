package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestInstalls(t *testing.T) { forEachStore(t, testInstalls) }

func testInstalls(t *testing.T, s *SQL) {
	ctx := context.Background()
	w := mustWorkspace(t, s, "acme")
	mustWorkspace(t, s, "other")

	in := mustInstall(t, s, "acme", "web", []string{"ghcr.io/acme/*", "docker.io/library/nginx"})
	if !strings.HasPrefix(in.ID, "inst_") || in.WorkspaceID != w.ID || in.Generation != 1 || !in.Enabled ||
		in.Cluster != "prod-acme" || in.ClusterID == "" || in.Namespace != "default" || in.ServiceAccount != "puller" {
		t.Fatalf("created = %+v", in)
	}
	got, err := s.GetInstall(ctx, "acme", "web")
	if err != nil || !installEqual(got, in) {
		t.Fatalf("GetInstall = %+v, %v; want %+v", got, err, in)
	}
	got, err = s.InstallByID(ctx, in.ID)
	if err != nil || !installEqual(got, in) {
		t.Fatalf("InstallByID = %+v, %v; want %+v", got, err, in)
	}
	all := mustInstall(t, s, "acme", "api", nil)
	if got, _ := s.GetInstall(ctx, "acme", "api"); got.Repos != nil {
		t.Errorf("nil repos came back as %#v", got.Repos)
	}
	mustInstall(t, s, "other", "web", nil)

	list, err := s.ListInstalls(ctx, "acme")
	if err != nil || len(list) != 2 || !installEqual(list[0], all) || !installEqual(list[1], in) {
		t.Fatalf("ListInstalls = %+v, %v", list, err)
	}

	for _, tc := range []struct {
		name   string
		err    error
		target error
		msg    string
	}{
		{"duplicate", func() error { _, err := s.CreateInstall(ctx, "acme", Install{Name: "web"}); return err }(),
			ErrConflict, `install "web" in workspace "acme"`},
		{"create in missing workspace", func() error { _, err := s.CreateInstall(ctx, "nope", Install{Name: "web"}); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"get missing", func() error { _, err := s.GetInstall(ctx, "acme", "nope"); return err }(),
			ErrNotFound, `install "nope" in workspace "acme": not found`},
		{"get in missing workspace", func() error { _, err := s.GetInstall(ctx, "nope", "web"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"by missing id", func() error { _, err := s.InstallByID(ctx, "inst_nope"); return err }(),
			ErrNotFound, "inst_nope"},
		{"list in missing workspace", func() error { _, err := s.ListInstalls(ctx, "nope"); return err }(),
			ErrNotFound, `workspace "nope"`},
		{"update missing", func() error { _, err := s.UpdateInstall(ctx, "acme", "nope", InstallUpdate{}); return err }(),
			ErrNotFound, `install "nope"`},
		{"delete missing", s.DeleteInstall(ctx, "acme", "nope"), ErrNotFound, `install "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.err, tc.target, tc.msg) })
	}

	if err := s.DeleteInstall(ctx, "acme", "api"); err != nil {
		t.Fatal(err)
	}
	_, err = s.InstallByID(ctx, all.ID)
	wantErr(t, err, ErrNotFound, "")
	if _, err := s.GetInstall(ctx, "other", "web"); err != nil {
		t.Fatal(err)
	}
}

func TestInstallGeneration(t *testing.T) { forEachStore(t, testInstallGeneration) }

func testInstallGeneration(t *testing.T, s *SQL) {
	ctx := context.Background()
	mustWorkspace(t, s, "acme")
	in := mustInstall(t, s, "acme", "web", []string{"a/*"})

	on, off := true, false
	repos := func(r ...string) *[]string { return &r }
	steps := []struct {
		name    string
		u       InstallUpdate
		gen     int64
		enabled bool
		repos   []string
	}{
		{"no-op", InstallUpdate{}, 1, true, []string{"a/*"}},
		{"enable while enabled", InstallUpdate{Enabled: &on}, 1, true, []string{"a/*"}},
		{"same repos", InstallUpdate{Repos: repos("a/*")}, 1, true, []string{"a/*"}},
		{"disable bumps", InstallUpdate{Enabled: &off}, 2, false, []string{"a/*"}},
		{"disable while disabled", InstallUpdate{Enabled: &off}, 2, false, []string{"a/*"}},
		{"enable does not bump", InstallUpdate{Enabled: &on}, 2, true, []string{"a/*"}},
		{"repo change bumps", InstallUpdate{Repos: repos("a/*", "b/*")}, 3, true, []string{"a/*", "b/*"}},
		{"repo order change bumps", InstallUpdate{Repos: repos("b/*", "a/*")}, 4, true, []string{"b/*", "a/*"}},
		{"clear repos bumps", InstallUpdate{Repos: repos()}, 5, true, []string{}},
		{"disable and change repos bumps once", InstallUpdate{Enabled: &off, Repos: repos("c/*")}, 6, false, []string{"c/*"}},
	}
	prev := in
	for _, st := range steps {
		got, err := s.UpdateInstall(ctx, "acme", "web", st.u)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got.Generation != st.gen || got.Enabled != st.enabled || !slices.Equal(got.Repos, st.repos) {
			t.Fatalf("%s: got gen=%d enabled=%v repos=%q; want gen=%d enabled=%v repos=%q",
				st.name, got.Generation, got.Enabled, got.Repos, st.gen, st.enabled, st.repos)
		}
		if !got.UpdatedAt.After(prev.UpdatedAt) || !got.CreatedAt.Equal(in.CreatedAt) {
			t.Fatalf("%s: timestamps %v/%v after %v", st.name, got.CreatedAt, got.UpdatedAt, prev.UpdatedAt)
		}
		stored, err := s.InstallByID(ctx, in.ID)
		if err != nil || !installEqual(stored, got) {
			t.Fatalf("%s: stored = %+v, %v; returned %+v", st.name, stored, err, got)
		}
		prev = got
	}
}

func BenchmarkInstallByID(b *testing.B) {
	s, _ := openTest(b)
	ctx := context.Background()
	mustWorkspace(b, s, "acme")
	for i := range 100 {
		mustInstall(b, s, "acme", fmt.Sprintf("i%d", i), nil)
	}
	in := mustInstall(b, s, "acme", "web", []string{"ghcr.io/acme/*", "docker.io/library/*"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.InstallByID(ctx, in.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
