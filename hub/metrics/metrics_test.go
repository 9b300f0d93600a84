package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMethod(t *testing.T) {
	for in, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE", "OPTIONS": "OPTIONS",
		"get": "other", "CONNECT": "other", "TRACE": "other", "X00001": "other", strings.Repeat("M", 40000): "other", "": "other",
	} {
		if got := Method(in); got != want {
			t.Errorf("Method(%.20q) = %q, want %q", in, got, want)
		}
	}
}

// Any token is a valid HTTP method, and Instrument counts requests before
// the handler authenticates them: methods must not become series.
func TestInstrumentMethodsBounded(t *testing.T) {
	h := New()
	srv := httptest.NewServer(h.Instrument("api", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})))
	defer srv.Close()
	send := func(method string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/api/v1/workspaces", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send(http.MethodGet)
	for i := range 50 {
		send("X" + strings.Repeat("M", 1000+i))
	}
	series := map[string]int{}
	var other float64
	mfs, err := h.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.Metric)
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if mf.GetName() == "pullgate_http_requests_total" && l.GetName() == "method" && l.GetValue() == "other" {
					other = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, name := range []string{"pullgate_http_requests_total", "pullgate_http_request_duration_seconds"} {
		if series[name] != 2 {
			t.Errorf("%s: %d series after GET and 50 distinct methods, want 2 (GET, other)", name, series[name])
		}
	}
	if other != 50 {
		t.Errorf("method other: %v requests, want 50", other)
	}
}
