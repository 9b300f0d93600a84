package version

import (
	"strings"
	"testing"
)

func TestStringUnstamped(t *testing.T) {
	got := String("pullgate-x")
	if !strings.HasPrefix(got, "pullgate-x dev (") || !strings.Contains(got, "go1.") {
		t.Errorf("String = %q", got)
	}
}
