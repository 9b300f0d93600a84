package server

import (
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "0": 0, "0d": 0, "720h": 720 * time.Hour, "1d": 24 * time.Hour, "36h30m": 36*time.Hour + 30*time.Minute,
	} {
		if got, err := parseDays(in); err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "-5h", "1.5d", "ninety", "90 d", "99999999d"} {
		if got, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) = %v, want an error", in, got)
		}
	}
	d := 90 * 24 * time.Hour
	if s := (daysValue{&d}).String(); s != "90d" {
		t.Errorf("String() = %q, want 90d", s)
	}
}

func TestServeFlagsRefuseBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--audit-retention", "ninety"},
		{"--audit-retention", "-1d"},
		{"--write-timeout", "10ms"},
	} {
		cmd := Command()
		cmd.SetArgs(append(args, "--data", t.TempDir()))
		cmd.SetOut(new(nopWriter))
		cmd.SetErr(new(nopWriter))
		if err := cmd.Execute(); err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}

type nopWriter struct{}

func (*nopWriter) Write(b []byte) (int, error) { return len(b), nil }
