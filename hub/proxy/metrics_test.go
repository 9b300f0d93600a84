package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pullgate/pullgate/hub/metrics"
	"github.com/pullgate/pullgate/internal/testupstream"
)

// Requests before authentication (any method is a valid token) and denied
// requests for hosts a client makes up must not add metric series: the
// series count stays the same however many such requests come.
func TestMetricLabelsBounded(t *testing.T) {
	up := testupstream.StartInProcess(t, testupstream.WithBasicAuth("alice", "metrics-SECRET"))
	up.PushRandomImage(t, "org/app", "v1", 1, 64)
	m := metrics.New()
	f := newFixture(t, WithMetrics(m))
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web", upstreamHost+"/org/*")
	f.install(ws, "all")
	tok := f.token(ws, "web", 10*time.Minute)

	// One of every kind of request, so that every legitimate series exists.
	if _, err := f.pull(f.ref(upstreamHost, "org/app", "v1"), tok); err != nil {
		t.Fatal(err)
	}
	round := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			method := fmt.Sprintf("X%05d%s", i, strings.Repeat("M", 2000))
			for _, path := range []string{"/v2/", "/v2/" + upstreamHost + "/org/app/manifests/v1", "/auth/token"} {
				readBody(t, f.get(method, path, tok))
				readBody(t, f.get(method, path, ""))
			}
			// Authenticated, for hosts and repositories the client makes
			// up: denied (not allowed, no credential), with error bodies.
			for _, path := range []string{
				fmt.Sprintf("/v2/rnd%d.attacker.example/x/manifests/latest", i),
				fmt.Sprintf("/v2/%s/made-up%d/blobs/sha256:%064d", upstreamHost, i, i),
				fmt.Sprintf("/v2/x/manifests/latest?ns=rnd%d.attacker.example", i),
			} {
				if resp := f.get(http.MethodGet, path, tok); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("GET %s: %d, want 403", path, resp.StatusCode)
				} else {
					readBody(t, resp)
				}
			}
			readBody(t, f.get(http.MethodGet, fmt.Sprintf("/v2/rnd%d.attacker.example/x/manifests/latest", i), "garbage"))
		}
	}
	round(0, 5)
	before, _ := seriesOf(t, m)
	round(5, 55)
	after, labels := seriesOf(t, m)
	if after != before {
		t.Errorf("%d series after 5 rounds, %d after 55: client requests add series", before, after)
	}
	for _, l := range labels {
		if strings.Contains(l, "attacker") || strings.Contains(l, "X0") || strings.Contains(l, "made-up") {
			t.Errorf("client-chosen label value %.80q", l)
		}
	}
	// Upstream failures are still counted, by configured host.
	// (Nothing listens at down's address.)
	down := &testupstream.Registry{URL: fmt.Sprintf("http://127.0.0.1:%d", testupstream.FreePort(t))}
	f.credential(ws, "down", "down.test", down, "x")
	if resp := f.get(http.MethodGet, "/v2/down.test/org/app/manifests/v1", f.token(ws, "all", time.Minute)); resp.StatusCode < 500 {
		t.Fatalf("pull from an upstream that is down: %d", resp.StatusCode)
	} else {
		readBody(t, resp)
	}
	var upErrs float64
	// Error bodies are not proxied bytes: only the pull's content counts.
	var proxied float64
	mfs, _ := m.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "pullgate_proxy_bytes_total" {
			for _, s := range mf.Metric {
				proxied += s.GetCounter().GetValue()
				for _, l := range s.Label {
					if l.GetName() == "upstream" && l.GetValue() != upstreamHost {
						t.Errorf("bytes counted for upstream %q", l.GetValue())
					}
				}
			}
		}
	}
	for _, mf := range mfs {
		if mf.GetName() == "pullgate_upstream_errors_total" {
			for _, s := range mf.Metric {
				for _, l := range s.Label {
					if l.GetName() == "upstream" && l.GetValue() == "down.test" {
						upErrs += s.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if upErrs != 1 {
		t.Errorf("upstream errors for down.test: %v, want 1", upErrs)
	}
	if proxied == 0 {
		t.Error("the pull's bytes were not counted")
	}
}

// seriesOf counts the hub's own series (pullgate_*) and lists their label
// values.
func seriesOf(t *testing.T, m *metrics.Hub) (int, []string) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var labels []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "pullgate_") {
			continue
		}
		n += len(mf.Metric)
		for _, s := range mf.Metric {
			labels = append(labels, labelValues(s)...)
		}
	}
	return n, labels
}

func labelValues(s *dto.Metric) []string {
	var out []string
	for _, l := range s.Label {
		out = append(out, l.GetValue())
	}
	return out
}
