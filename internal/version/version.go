// Package version is the build's version, stamped at link time so that
// the Makefile's build, the packages and the images all report the same:
//
//	go build -ldflags "-X github.com/pullgate/pullgate/internal/version.version=1.2.3 \
//	  -X github.com/pullgate/pullgate/internal/version.revision=0123abc" ./...
//
// An unstamped build (go build, go run, tests) reports "dev" with the VCS
// revision Go recorded, if any.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); strings only, never changed at run time.
var (
	version  = "dev"
	revision = ""
)

// Version is the stamped version ("1.2.3"), or "dev".
func Version() string { return version }

// Revision is the stamped VCS revision, else the one the Go toolchain
// recorded in the binary ("" when neither is known).
func Revision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			} else if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// String is the --version line of program: "pullgate-hub 1.2.3 (0123abc, go1.25.1 linux/amd64)".
func String(program string) string {
	rev := Revision()
	if rev == "" {
		rev = "unknown revision"
	}
	return fmt.Sprintf("%s %s (%s, %s %s/%s)", program, Version(), rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
