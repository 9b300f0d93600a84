package credential

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/pullgate/pullgate/hub/secrets"
)

func testSealer(t testing.TB) *secrets.Sealer {
	sl, err := secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// fmtAll formats v every way a careless log line might.
func fmtAll(v any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s ", v, v, v, v)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "v", v)
	return b.String()
}
