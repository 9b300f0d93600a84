package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// Fuzz targets for what crosses the control plane: subjects the NATS
// server routes, join tokens presented by enrolling agents, and the JSON
// bodies of every message. Plain `go test` replays the seeds and
// testdata/fuzz.

// subjectToken reports whether s may stand as one token of a NATS subject
// without changing the subject's shape: no separators, wildcards, spaces
// or control characters.
func subjectToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	})
}

func FuzzParseJoinToken(f *testing.F) {
	for _, s := range []string{
		"pgj1.cl_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		" pgj1.c.0123456789abcdef0123 ", "pgj1..0123456789abcdef", "pgj1.c.short", "pgj1.c*.0123456789abcdef",
		"pgj1.c>x.0123456789abcdef", "pgj1.a b.0123456789abcdef", "pgj1.a\tb.0123456789abcdef",
		"pgn1.node.0123456789abcdef", "pgj1.c.0123456789abcdef.more", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cluster, secret, err := ParseJoinToken(s)
		if err != nil {
			// The error goes to logs: it must not carry the token.
			if _, sec, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(s), JoinTokenPrefix), "."); ok && len(sec) >= 12 && strings.Contains(err.Error(), sec) { // shorter ones occur in the fixed texts ("orme" in "malformed")
				t.Fatalf("error carries the secret: %v", err)
			}
			return
		}
		if !subjectToken(cluster) {
			t.Fatalf("ParseJoinToken(%q): cluster %q is not a NATS subject token", s, cluster)
		}
		if len(secret) < 16 {
			t.Fatalf("ParseJoinToken(%q): secret of %d bytes", s, len(secret))
		}
		if EnrolSubject(cluster) == EnrolSubjectAll {
			t.Fatalf("cluster %q makes the enrol subject a wildcard", cluster)
		}
		c2, s2, err := ParseJoinToken(JoinTokenPrefix + cluster + "." + secret)
		if err != nil || c2 != cluster || s2 != secret {
			t.Fatalf("round trip of %q: %q %q, then %q %q %v", s, cluster, secret, c2, s2, err)
		}
	})
}

func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		TokenSubject("cl_a", "node_b"), SyncSubject("cl_a", "node_b"), EnrolSubject("cl_a"), RevokeSubject("cl_a"),
		"pullgate.v1.token..", "pullgate.v2.token.a.b", "pullgate.v1.enrol.", "pullgate.v1.enrol.a.b", "pullgate.v1.token.a.b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, n, err := ParseNodeSubject(s); err == nil {
			if c == "" || n == "" {
				t.Fatalf("ParseNodeSubject(%q): empty cluster %q or node %q", s, c, n)
			}
			if kind := strings.Split(s, ".")[2]; kind == "token" && TokenSubject(c, n) != s || kind == "sync" && SyncSubject(c, n) != s {
				t.Fatalf("ParseNodeSubject(%q) = %q %q: does not round-trip", s, c, n)
			}
		}
		if c, err := ParseEnrolSubject(s); err == nil {
			if EnrolSubject(c) != s || strings.Contains(c, ".") || c == "" {
				t.Fatalf("ParseEnrolSubject(%q) = %q: does not round-trip", s, c)
			}
		}
	})
}

// FuzzDecodeMessages decodes arbitrary bytes as every message of the wire
// protocol; what decodes must encode and decode to the same encoding.
func FuzzDecodeMessages(f *testing.F) {
	for _, s := range []string{
		`{"node_name":"worker-1","agent_version":"v1"}`,
		`{"node_id":"node_x","node_secret":"pgn1.s","cluster_id":"cl_x","cluster":"c","shared":true}`,
		`{"image":"ghcr.io/org/app:v1","service_account_token":"e.y.j","service_account_annotations":{"a":"b"}}`,
		`{"token":"t","expires_at":"2026-11-30T18:00:00+01:00","install":"i","install_id":"in_1","generation":3,"registry":"ghcr.io"}`,
		`{"seq":18446744073709551615,"jwks":{"keys":[]}}`,
		`{"source":"s","seq":1,"installs":{"in_1":{"generation":1,"epoch":"e"}},"hosts":["ghcr.io"]}`,
		`{"source":"s","seq":2,"installs":["in_1"],"workspaces":["ws"],"nodes":["n"],"cluster":true,"time":"2026-11-30T18:00:00Z"}`,
		`{"error":"no install","code":"not_found"}`,
		`{"registry":"ghcr.io","username":"pullgate","password":"tok","expires_at":"0001-01-01T00:00:00Z"}`,
		`{"jwks":null}`, `{"seq":-1}`, `[]`, `{"time":"2026-13-01T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() any { return new(EnrolRequest) })
		roundTrip(t, data, func() any { return new(EnrolReply) })
		roundTrip(t, data, func() any { return new(TokenRequest) })
		roundTrip(t, data, func() any { return new(TokenReply) })
		roundTrip(t, data, func() any { return new(SyncRequest) })
		roundTrip(t, data, func() any { return new(SyncReply) })
		roundTrip(t, data, func() any { return new(Revocation) })
		roundTrip(t, data, func() any { return new(Credentials) })
		roundTrip(t, data, func() any { return new(ErrorReply) })
	})
}

func roundTrip(t *testing.T, data []byte, mk func() any) {
	t.Helper()
	v := mk()
	if json.Unmarshal(data, v) != nil {
		return
	}
	b1, err := json.Marshal(v)
	if err != nil {
		// A time that decodes but does not encode (a year out of range)
		// is the only way here; the agent never re-encodes what it got.
		return
	}
	v2 := mk()
	if err := json.Unmarshal(b1, v2); err != nil {
		t.Fatalf("%T: own encoding %s does not decode: %v", v, b1, err)
	}
	b2, err := json.Marshal(v2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("%T: encoding not stable:\n%s\n%s (%v)", v, b1, b2, err)
	}
}
