package proxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/token"
	"github.com/pullgate/pullgate/internal/testupstream"
)

func TestVerifiedCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newVerifiedCache(100)
	c.put("a", token.Claims{Expiry: now.Add(time.Minute).Unix()}, now)
	if _, ok := c.get("a", now); !ok {
		t.Fatal("miss right after put")
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Fatal("hit at expiry")
	}
	for i := range 1000 {
		c.put(fmt.Sprint(i), token.Claims{Expiry: now.Add(time.Hour).Unix()}, now)
	}
	if n := len(c.entries); n > 100 {
		t.Fatalf("cache holds %d entries, bound is 100", n)
	}
}

// BenchmarkHeadManifest is one authenticated manifest HEAD through the
// proxy to a token-auth upstream with a warm upstream token.
func BenchmarkHeadManifest(b *testing.B) {
	up := testupstream.StartInProcess(b, testupstream.WithTokenAuth("alice", "bench-SECRET"))
	up.PushRandomImage(b, "org/app", "v1", 1, 64)
	f := newFixture(b)
	ws := f.workspace("acme")
	f.credential(ws, "reg", upstreamHost, up, up.Password)
	f.install(ws, "web")
	tok := f.token(ws, "web", time.Hour)
	req, _ := http.NewRequest(http.MethodHead, f.hub.URL+"/v2/"+upstreamHost+"/org/app/manifests/v1", nil)
	req.SetBasicAuth("pullgate", tok)
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(resp, err)
		}
		resp.Body.Close()
	}
}
