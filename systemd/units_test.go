// Package systemd_test checks the unit files shipped in the deb/rpm
// packages: systemd-analyze verify accepts them without a warning, their
// sandboxing keeps the exposure score low, and the paths they use match
// what the binaries and the kubelet config expect.
package systemd_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/pkg/wire"
)

var units = []string{"pullgate-hub.service", "pullgate-agent.service"}

// maxExposure is systemd-analyze security's --threshold (0-100; the
// printed score times ten). Both units score 1.4-1.6 ("OK") today.
const maxExposure = "20"

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are checked on Linux")
	}
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: apt-get install systemd (.ci/run does)")
	}
	return p
}

// unitDirs is where the host keeps systemd's own units (targets etc.),
// which verify needs to resolve the units' dependencies.
func hostUnitDir(t *testing.T) string {
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "multi-user.target")); err == nil {
			return d
		}
	}
	t.Fatal("no systemd unit directory with multi-user.target on this host: apt-get install systemd")
	return ""
}

// parseUnit returns every key's values in file order ("Section.Key").
func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// execPaths are the absolute programs the unit's Exec*= lines run.
func execPaths(u map[string][]string) []string {
	var paths []string
	for k, vs := range u {
		if !strings.HasPrefix(k, "Service.Exec") {
			continue
		}
		for _, v := range vs {
			prog := strings.Fields(v)[0]
			paths = append(paths, strings.TrimLeft(prog, "-+!@:|"))
		}
	}
	return paths
}

// fakeRoot is a directory tree for systemd-analyze --root: the host's
// systemd units, ours in /etc/systemd/system, and an executable at every
// path our units exec (verify checks they exist). The deb test in e2e
// verifies the installed units against the real installed binaries.
func fakeRoot(t *testing.T, unitFiles map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if out, err := exec.Command("cp", "-a", hostUnitDir(t), filepath.Join(root, "hostunits")).CombinedOutput(); err != nil {
		t.Fatalf("copy host units: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "hostunits"), filepath.Join(root, "usr/lib/systemd/system")); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range unitFiles {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(etc, name)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range execPaths(parseUnit(t, dst)) {
			stub := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestUnitsVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	files := map[string]string{}
	for _, u := range units {
		files[u] = u
	}
	root := fakeRoot(t, files)
	out, err := run(t, sa, append([]string{"verify", "--root=" + root}, units...)...)
	// verify exits 0 on unknown keys and some other mistakes: any output
	// at all is a failure.
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestVerifyCatchesTypos makes sure the check above is not vacuous: the
// same run on a unit with a misspelt directive reports it.
func TestVerifyCatchesTypos(t *testing.T) {
	sa := systemdAnalyze(t)
	data, err := os.ReadFile("pullgate-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "typo.service")
	if err := os.WriteFile(bad, bytes.Replace(data, []byte("ProtectSystem=strict"), []byte("ProtectSytem=strict"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	root := fakeRoot(t, map[string]string{"typo.service": bad})
	out, _ := run(t, sa, "verify", "--root="+root, "typo.service")
	if !strings.Contains(out, "ProtectSytem") {
		t.Fatalf("verify did not report the misspelt key; output:\n%s", out)
	}
}

func TestUnitsExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	files := map[string]string{}
	for _, u := range units {
		files[u] = u
	}
	root := fakeRoot(t, files)
	for _, u := range units {
		out, err := run(t, sa, "security", "--offline=true", "--threshold="+maxExposure, "--no-pager", "--root="+root, u)
		if err != nil {
			t.Errorf("%s: exposure above %s (or security failed): %v\n%s", u, maxExposure, err, out)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "Overall exposure level") {
				t.Log(strings.TrimSpace(line))
			}
		}
	}
}

func TestUnitsContract(t *testing.T) {
	common := map[string]string{
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.Restart":                 "on-failure",
		"Service.SystemCallArchitectures": "native",
	}
	want := map[string]map[string]string{
		"pullgate-hub.service": {
			"Service.User":            "pullgate",
			"Service.StateDirectory":  "pullgate",
			"Service.EnvironmentFile": "-/etc/default/pullgate-hub",
		},
		"pullgate-agent.service": {
			"Service.StateDirectory":        "pullgate-agent",
			"Service.RuntimeDirectory":      "pullgate",
			"Service.EnvironmentFile":       "-/etc/default/pullgate-agent",
			"Service.ReadWritePaths":        "-/etc/containerd/certs.d",
			"Service.CapabilityBoundingSet": "",
		},
	}
	for _, name := range units {
		u := parseUnit(t, name)
		check := func(k, v string) {
			if got := u[k]; len(got) == 0 || got[len(got)-1] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		for k, v := range common {
			check(k, v)
		}
		for k, v := range want[name] {
			check(k, v)
		}
		if got := strings.Join(u["Service.SystemCallFilter"], " "); !strings.HasPrefix(got, "@system-service") {
			t.Errorf("%s: SystemCallFilter %q does not start from @system-service", name, got)
		}
		fams := strings.Fields(strings.Join(u["Service.RestrictAddressFamilies"], " "))
		for _, f := range fams {
			switch f {
			case "AF_UNIX", "AF_INET", "AF_INET6":
			case "AF_NETLINK":
				if name != "pullgate-hub.service" {
					t.Errorf("%s: AF_NETLINK is only for the hub's embedded NATS", name)
				}
			default:
				t.Errorf("%s: unexpected address family %s", name, f)
			}
		}
	}

	// The socket the agent unit serves is the one the helper dials by
	// default and the kubelet config names: RuntimeDirectory=pullgate is
	// /run/pullgate.
	agent := parseUnit(t, "pullgate-agent.service")
	var socket string
	for _, e := range agent["Service.Environment"] {
		if v, ok := strings.CutPrefix(e, "PULLGATE_SOCKET="); ok {
			socket = v
		}
	}
	if socket != wire.DefaultSocket {
		t.Errorf("agent unit PULLGATE_SOCKET=%q, helper default %q", socket, wire.DefaultSocket)
	}
	if filepath.Dir(socket) != "/run/"+agent["Service.RuntimeDirectory"][0] {
		t.Errorf("agent socket %s is not in RuntimeDirectory /run/%s", socket, agent["Service.RuntimeDirectory"][0])
	}
	hub := parseUnit(t, "pullgate-hub.service")
	if got := hub["Service.ExecStart"][0]; !strings.Contains(got, "--data /var/lib/"+hub["Service.StateDirectory"][0]+" ") {
		t.Errorf("hub ExecStart %q does not use its StateDirectory as --data", got)
	}
}
