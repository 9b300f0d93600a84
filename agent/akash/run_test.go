package akash

import (
	"net/http"
	"testing"
)

// The metrics listener is reachable by whoever reaches the pod (the node,
// with hostNetwork): an idle keep-alive connection, or a request body sent
// slowly, must not be held for ever.
func TestMetricsServerTimeouts(t *testing.T) {
	srv := metricsServer(http.NotFoundHandler())
	for name, d := range map[string]int64{
		"ReadHeaderTimeout": int64(srv.ReadHeaderTimeout), "ReadTimeout": int64(srv.ReadTimeout),
		"WriteTimeout": int64(srv.WriteTimeout), "IdleTimeout": int64(srv.IdleTimeout),
	} {
		if d <= 0 {
			t.Errorf("%s unset: connections may be held for ever", name)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
	}
}
