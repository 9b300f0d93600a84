package api

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// A member chooses the path of its requests, and a path segment is
// decoded before it becomes an activity row's target: escape sequences
// (%1B), bidi overrides and a huge name must not reach the rows that the
// hub admin prints in a terminal (`pullgate-hub activity`) and owners read
// in the console.
func TestActivityTargetIsPlainText(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/v1/workspaces", `{"name":"acme"}`, 201, nil)
	e.addMember("acme", "otto", "operator")
	tok, _ := e.userToken("otto", "")
	for _, tc := range []struct{ name, seg string }{
		{"terminal escape", "%1B%5D52%3Bc%3BZWNobyBwd25lZA%3D%3D%07x"},
		{"bidi override", "%E2%80%AEexe.gnp"},
		{"invalid UTF-8", "%FF%FEab"},
		{"huge", strings.Repeat("a", 20000)},
	} {
		rec := e.send(req{method: "DELETE", path: "/api/v1/workspaces/acme/registries/" + tc.seg, bearer: tok})
		if rec.Code != 404 && rec.Code != 400 {
			t.Fatalf("%s: delete: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	var list ActivityList
	e.must("GET", "/api/v1/activity", "", 200, &list)
	n := 0
	for _, a := range list.Activity {
		if a.Action != "registry.delete" {
			continue
		}
		n++
		for field, v := range map[string]string{"target": a.Target, "path": a.Path} {
			if i := strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 || !utf8.ValidString(v) {
				t.Errorf("activity %s %q holds a control or format character or invalid UTF-8", field, v)
			}
		}
		if len(a.Target) > maxActivityTarget+3 || len(a.Path) > maxActivityPath+3 {
			t.Errorf("activity target of %d bytes, path of %d: want at most %d and %d", len(a.Target), len(a.Path), maxActivityTarget, maxActivityPath)
		}
	}
	if n != 4 {
		t.Fatalf("%d registry.delete rows, want 4: %+v", n, list.Activity)
	}
}

func TestActivityText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"gh", 16, "gh"},
		{"a\x1b]0;x\x07b", 16, "a?]0;x?b"},
		{"bot\u202egnp", 16, "bot?gnp"},
		{"\xff\xfeab", 16, "??ab"},
		{strings.Repeat("é", 5), 5, "éé..."}, // cut on a rune boundary
	} {
		if got := activityText(tc.in, tc.n); got != tc.want {
			t.Errorf("activityText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
