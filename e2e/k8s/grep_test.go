//go:build e2e_k8s

package k8s

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// secretMatcher finds a secret in bytes as a tool on the node would: the
// plain text, the text inside any base64 (std or URL alphabet, at any
// alignment, as in a Secret's data or an "auth" field), and inside base64
// inside base64 (a docker config's "auth" in a Secret's data).
type secretMatcher struct {
	needles [][]byte
}

func newSecretMatcher(secret string) *secretMatcher {
	m := &secretMatcher{needles: [][]byte{[]byte(secret)}}
	for shift := 0; shift < 3; shift++ {
		// The characters that only the secret's bits determine, whatever
		// comes before or after it.
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, shift), secret...))
		first := (8*shift + 5) / 6
		last := (8*(shift+len(secret)) - 6) / 6
		if last-first < 4 {
			continue
		}
		core := enc[first : last+1]
		m.needles = append(m.needles, []byte(core))
		if url := strings.NewReplacer("+", "-", "/", "_").Replace(core); url != core {
			m.needles = append(m.needles, []byte(url))
		}
	}
	return m
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)

// in reports whether b holds the secret, decoding base64 runs up to depth
// levels deep.
func (m *secretMatcher) in(b []byte, depth int) bool {
	for _, n := range m.needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	if depth == 0 {
		return false
	}
	for _, run := range base64Run.FindAll(b, -1) {
		s := strings.TrimRight(string(run), "=")
		enc := base64.RawStdEncoding
		if strings.ContainsAny(s, "-_") {
			enc = base64.RawURLEncoding
		}
		s = s[:len(s)-len(s)%4] // whole quanta: a run may start mid-stream
		if dec, err := enc.DecodeString(s); err == nil && m.in(dec, depth-1) {
			return true
		}
	}
	return false
}

// grepClusterState looks for secret in everything the cluster keeps:
// every object of every listable resource the API server's discovery
// names (/api and the preferred version of each /apis group, all
// namespaces), and every file under the suite's cluster directory (the
// kine SQLite database and its WAL, which is the cluster's etcd; the
// kubelet's root dir with pod volumes and pull records; containerd's root
// and state; the agent's state; pod logs; the processes' logs, also those
// still in memory). It returns where it found it.
func (c *cluster) grepClusterState(secret string) []string {
	c.t.Helper()
	start := time.Now()
	m := newSecretMatcher(secret)
	hits := c.grepAPI(m)
	files, bytesRead := 0, int64(0)
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while we walk (a pod going away)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n, hit, err := grepFile(path, m)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		files++
		bytesRead += n
		if hit {
			hits = append(hits, "file "+strings.TrimPrefix(path, c.dir+"/"))
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("grep the cluster's files: %v", err)
	}
	// The processes' output, on disk only when the test ends (earlier
	// kubelets' is in the directory already).
	for _, p := range append(c.procs, c.kubelet) {
		if m.in([]byte(p.log.String()), 2) {
			hits = append(hits, "log of "+p.name)
		}
	}
	c.t.Logf("grep of the cluster state: %d files (%d MiB) and the API in %v, %d hits",
		files, bytesRead>>20, time.Since(start).Round(time.Millisecond), len(hits))
	return hits
}

// grepFile streams the file through the plain and single-base64 needles,
// and decodes base64 runs in files small enough to be configuration or a
// database page set (not image layers).
func grepFile(path string, m *secretMatcher) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if st.Size() <= 8<<20 {
		b, err := io.ReadAll(f)
		return int64(len(b)), m.in(b, 2), err
	}
	n, hit, err := grepStream(f, m, 4<<20)
	return n, hit, err
}

// grepStream reads r in chunks of size bytes, each searched together with
// the tail of the one before it, so a needle across chunks is found.
func grepStream(r io.Reader, m *secretMatcher, size int) (int64, bool, error) {
	overlap := 0
	for _, n := range m.needles {
		overlap = max(overlap, len(n)-1)
	}
	buf := make([]byte, size+overlap)
	keep, total := 0, int64(0)
	for {
		n, err := io.ReadFull(r, buf[keep:])
		total += int64(n)
		if m.in(buf[:keep+n], 0) {
			return total, true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, false, nil
		}
		if err != nil {
			return total, false, err
		}
		copy(buf, buf[keep+n-overlap:keep+n])
		keep = overlap
	}
}

// grepAPI lists every listable resource through discovery and checks each
// object.
func (c *cluster) grepAPI(m *secretMatcher) []string {
	t := c.t
	t.Helper()
	var groupVersions []string
	var core struct{ Versions []string }
	if err := c.get("/api", &core); err != nil {
		t.Fatal(err)
	}
	for _, v := range core.Versions {
		groupVersions = append(groupVersions, "/api/"+v)
	}
	var groups struct {
		Groups []struct {
			Name             string
			PreferredVersion struct{ GroupVersion string }
		}
	}
	if err := c.get("/apis", &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		groupVersions = append(groupVersions, "/apis/"+g.PreferredVersion.GroupVersion)
	}
	var hits []string
	resources := 0
	for _, gv := range groupVersions {
		var list struct {
			Resources []struct {
				Name  string
				Verbs []string
			}
		}
		if err := c.get(gv, &list); err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Resources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue // subresources; create-only reviews
			}
			resources++
			code, body, err := c.raw("GET", gv+"/"+r.Name, nil)
			if err != nil || code != 200 {
				t.Fatalf("list %s/%s: %d %v %.300s", gv, r.Name, code, err, body)
			}
			var items struct{ Items []json.RawMessage }
			if err := json.Unmarshal(body, &items); err != nil {
				t.Fatalf("list %s/%s: %v", gv, r.Name, err)
			}
			for _, it := range items.Items {
				if !m.in(it, 2) {
					continue
				}
				var o struct {
					Metadata struct{ Namespace, Name string }
				}
				json.Unmarshal(it, &o)
				hits = append(hits, fmt.Sprintf("api %s/%s %s/%s", gv, r.Name, o.Metadata.Namespace, o.Metadata.Name))
			}
		}
	}
	if resources < 30 {
		t.Fatalf("discovery named only %d listable resources", resources)
	}
	return hits
}
