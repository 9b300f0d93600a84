package jointoken

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/pkg/wire"
)

// FuzzJoinToken: a join token as the agent reads it from a file (a
// Kubernetes Secret volume) or a flag, then splits it. Properties: an
// accepted token rebuilds exactly from its parts, its cluster id can be
// used in NATS subjects (no '.', '*', '>', space), flag and file read the
// same token, and no error ever contains the secret part.
func FuzzJoinToken(f *testing.F) {
	for _, s := range []string{
		"pgj1.cl_0123456789abcdef.0123456789abcdef0123456789abcdef\n",
		"  pgj1.cl.SECRET-SECRET-SECRET  ", "pgj1..SECRET-SECRET-SECRET", "pgj1.a*b.SECRET-SECRET-SECRET",
		"pgj1.cl.short", "pgn1.node.SECRET-SECRET-SECRET", "", "\n\t ", "pgj1.cl.SECRET.with.dots-0123",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > MaxSize {
			return
		}
		path := filepath.Join(dir, "token")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file := &File{path: path}
		tok, ferr := file.Token()
		stok, serr := Static(string(data)).Token()
		if (ferr == nil) != (serr == nil) || (ferr == nil && tok != stok) {
			t.Fatalf("file %q (%v) and flag %q (%v) differ", tok, ferr, stok, serr)
		}
		if ferr != nil {
			return
		}
		cl, secret, err := wire.ParseJoinToken(tok)
		_, afterCluster, _ := strings.Cut(strings.TrimPrefix(tok, wire.JoinTokenPrefix), ".")
		if err != nil {
			if len(afterCluster) >= 8 && strings.Contains(err.Error(), afterCluster) {
				t.Fatal("error contains the secret")
			}
			return
		}
		if wire.JoinTokenPrefix+cl+"."+secret != tok || strings.ContainsAny(cl, ".*> \t\r\n") || len(secret) < 16 {
			t.Fatalf("parsed %q into %q, %q", tok, cl, secret)
		}
	})
}
