package jwtexp

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestUnverified(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	for _, c := range []struct {
		name, tok string
		want      time.Time
	}{
		{"exp", jwt(`{"exp":1700000000}`), time.Unix(1700000000, 0)},
		{"padded payload", "a." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1700000001}`)) + ".b", time.Unix(1700000001, 0)},
		{"no exp", jwt(`{"sub":"x"}`), time.Time{}},
		{"exp not a number", jwt(`{"exp":"soon"}`), time.Time{}},
		{"exp fraction", jwt(`{"exp":1.5}`), time.Time{}},
		{"exp zero", jwt(`{"exp":0}`), time.Time{}},
		{"exp negative", jwt(`{"exp":-5}`), time.Time{}},
		{"not JSON", jwt(`exp`), time.Time{}},
		{"not base64", "a.!!!.b", time.Time{}},
		{"two parts", "a.b", time.Time{}},
		{"opaque", "opaque-token", time.Time{}},
	} {
		if got := Unverified(c.tok); !got.Equal(c.want) {
			t.Errorf("%s: Unverified(%q) = %v, want %v", c.name, c.tok, got, c.want)
		}
	}
}
