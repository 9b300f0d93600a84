package akash

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

type hubCall struct {
	Method, Path, Auth, Body string
}

// recordingHub is an HTTP peer speaking the contract's controller routes:
// it records each call and answers with the status the test picks.
type recordingHub struct {
	mu     sync.Mutex
	calls  []hubCall
	status func(hubCall) int
	srv    *httptest.Server
}

func newRecordingHub(t *testing.T, status func(hubCall) int) *recordingHub {
	h := &recordingHub{status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := hubCall{Method: r.Method, Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization"), Body: string(b)}
		h.mu.Lock()
		h.calls = append(h.calls, c)
		h.mu.Unlock()
		code := 0
		if h.status != nil {
			code = h.status(c)
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case code >= 400:
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]string{"error": "refused"})
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(c.Path, "/credentials"):
			json.NewEncoder(w).Encode(ImportResult{Workspace: "akash-m9l358xunh", Hub: "hub.example.com",
				Images: map[string]string{"ghcr.io/org/app:1": "hub.example.com/ghcr.io/org/app:1"}})
		case strings.HasSuffix(c.Path, "/akash/leases"):
			var in struct{ Leases []pkgakash.LeaseID }
			json.Unmarshal(b, &in)
			json.NewEncoder(w).Encode(map[string]int{"leases": len(in.Leases)})
		default:
			json.NewEncoder(w).Encode(map[string]any{})
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *recordingHub) Calls() []hubCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hubCall(nil), h.calls...)
}

func writeToken(t *testing.T, path, tok string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

var testLease = pkgakash.LeaseID{Owner: "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h", DSeq: 1234567, GSeq: 1, OSeq: 1,
	Provider: "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"}

func TestHubClientRoutesAndToken(t *testing.T) {
	h := newRecordingHub(t, nil)
	tokFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokFile, "tok-1")
	c, err := NewHubClient(h.srv.URL, "provider-1", tokFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := c.PutLeases(ctx, []pkgakash.LeaseID{testLease}); err != nil || n != 1 {
		t.Fatalf("PutLeases: %d %v", n, err)
	}
	// The kubelet rotated the token: the next call reads the new one.
	writeToken(t, tokFile, "tok-2")
	if err := c.PutLease(ctx, testLease); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLease(ctx, testLease.Namespace()); err != nil {
		t.Fatal(err)
	}
	res, err := c.ImportCredentials(ctx, testLease.Namespace(), []Service{{Name: "web", Images: []string{"ghcr.io/org/app:1"},
		Credentials: &Credentials{Host: "ghcr.io", Username: "u", Password: "p"}}})
	if err != nil || res.Images["ghcr.io/org/app:1"] != "hub.example.com/ghcr.io/org/app:1" {
		t.Fatalf("import: %+v %v", res, err)
	}
	ns := testLease.Namespace()
	want := []hubCall{
		{"PUT", "/api/v1/clusters/provider-1/akash/leases", "Bearer tok-1",
			`{"leases":[{"owner":"akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h","dseq":1234567,"gseq":1,"oseq":1,"provider":"akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"}]}`},
		{"PUT", "/api/v1/clusters/provider-1/akash/leases/" + ns, "Bearer tok-2",
			`{"owner":"akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h","dseq":1234567,"gseq":1,"oseq":1,"provider":"akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"}`},
		{"DELETE", "/api/v1/clusters/provider-1/akash/leases/" + ns, "Bearer tok-2", ""},
		{"POST", "/api/v1/clusters/provider-1/akash/leases/" + ns + "/credentials", "Bearer tok-2",
			`{"services":[{"name":"web","images":["ghcr.io/org/app:1"],"credentials":{"host":"ghcr.io","email":"","username":"u","password":"p"}}]}`},
	}
	got := h.Calls()
	if len(got) != len(want) {
		t.Fatalf("calls %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestHubClientRetriesAndErrors(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokFile, "sekret-token")
	var n int
	var mu sync.Mutex
	h := newRecordingHub(t, func(c hubCall) int {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch {
		case strings.HasSuffix(c.Path, "/leases") && n < 3:
			return http.StatusServiceUnavailable // retried
		case strings.Contains(c.Path, "/leases/"):
			return http.StatusForbidden // not retried
		}
		return 0
	})
	c, err := NewHubClient(h.srv.URL, "provider-1", tokFile, WithRetry(4, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutLeases(context.Background(), nil); err != nil {
		t.Fatalf("PutLeases after two 503s: %v", err)
	}
	if got := len(h.Calls()); got != 3 {
		t.Fatalf("%d calls, want 3 (two retried 503s)", got)
	}
	err = c.PutLease(context.Background(), testLease)
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "PUT /api/v1/clusters/provider-1/akash/leases/") {
		t.Fatalf("err %v: want a 403 naming the call", err)
	}
	if len(h.Calls()) != 4 {
		t.Fatalf("a 403 was retried")
	}
	if !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "sekret-token") {
		t.Fatalf("error names the token: %v", err)
	}
	// A missing token file names the file, not a token.
	os.Remove(tokFile)
	c2, _ := NewHubClient(h.srv.URL, "provider-1", tokFile, WithRetry(1, time.Millisecond))
	if err := c2.PutLease(context.Background(), testLease); err == nil || !strings.Contains(err.Error(), "service-account token") {
		t.Fatalf("missing token file: %v", err)
	}
}

func TestNewHubClientRefuses(t *testing.T) {
	for _, tc := range []struct {
		url, cluster, token, want string
		opts                      []HubOption
	}{
		{"http://hub.example.com", "c", "/t", "clear text", nil},
		{"ftp://hub", "c", "/t", "want https", nil},
		{"https://hub", "", "/t", "cluster name", nil},
		{"https://hub", "a/b", "/t", "cluster name", nil},
		{"https://hub", "c", "", "token file", nil},
		{"https://hub", "c", "/t", "hub CA", []HubOption{WithHubCA("/nonexistent/ca.crt")}},
	} {
		if _, err := NewHubClient(tc.url, tc.cluster, tc.token, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: err %v, want %q", tc.url, tc.cluster, err, tc.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:1", "http://localhost:1", "https://hub.example.com"} {
		if _, err := NewHubClient(ok, "c", "/t"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := NewHubClient("http://10.250.0.1:5080", "c", "/t", WithInsecureHub(true)); err != nil {
		t.Errorf("insecure hub: %v", err)
	}
}

// A hub (or something in its place) answering with a redirect never gets
// the token sent on to the redirect's target.
func TestHubClientNoRedirect(t *testing.T) {
	leaked := make(chan string, 4)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked <- r.Header.Get("Authorization")
		w.Write([]byte(`{"leases":0}`))
	}))
	defer other.Close()
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer hub.Close()
	tokFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokFile, "sa-token")
	c, err := NewHubClient(hub.URL, "provider-1", tokFile, WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutLeases(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "307") {
		t.Fatalf("err %v: want the redirect refused", err)
	}
	select {
	case a := <-leaked:
		t.Fatalf("the redirect target got Authorization %q", a)
	default:
	}
}
