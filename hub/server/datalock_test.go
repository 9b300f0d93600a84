package server

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second hub on the same data directory refuses to start, at once, and
// names the holder; the lock goes with the hub that held it (issue 11,
// item 7).
func TestSecondHubOnDataDirRefused(t *testing.T) {
	data := t.TempDir()
	first, err := startHub(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = startHub(t, data, "")
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second hub on %s: %v", data, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusal took %v", took)
	}
	for _, want := range []string{"data directory " + data + " is in use by another pullgate-hub", fmt.Sprintf("pid %d on host ", os.Getpid()),
		filepath.Join(data, "hub.lock"), "--data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// The first hub is unharmed.
	if code, _ := first.api(t, "GET", "/api/v1/workspaces", nil); code != 200 {
		t.Fatalf("first hub after the refused start: %d", code)
	}
	first.stop(t)
	if _, err := startHub(t, data, ""); err != nil {
		t.Fatalf("start after the first hub stopped: %v", err)
	}
}

// A hub that died without releasing the lock (SIGKILL) leaves the lock
// file behind but no lock: the next hub starts.
func TestDataDirLockFreedByCrash(t *testing.T) {
	data := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataDirLockHolderProcess$")
	cmd.Env = append(os.Environ(), "PULLGATE_TEST_LOCK_DIR="+data)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "locked") {
		t.Fatalf("holder process: %q %v", line, err)
	}
	_, err = startHub(t, data, "")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d on host", cmd.Process.Pid)) {
		t.Fatalf("start while another process holds the lock: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if b, _ := os.ReadFile(filepath.Join(data, "hub.lock")); !strings.Contains(string(b), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("the killed holder's lock file is gone or empty: %q", b)
	}
	if _, err := startHub(t, data, ""); err != nil {
		t.Fatalf("start after the holder was killed: %v", err)
	}
}

// TestDataDirLockHolderProcess is the process TestDataDirLockFreedByCrash
// kills: it takes the lock, says so, and waits.
func TestDataDirLockHolderProcess(t *testing.T) {
	dir := os.Getenv("PULLGATE_TEST_LOCK_DIR")
	if dir == "" {
		t.Skip("helper process of TestDataDirLockFreedByCrash")
	}
	if _, err := lockDataDir(dir); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// hub.lock planted as a symlink (or anything but a regular file) is
// refused, and the file it points at is neither truncated nor written.
func TestDataDirLockSymlinkRefused(t *testing.T) {
	data := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(data, "hub.lock")); err != nil {
		t.Fatal(err)
	}
	release, err := lockDataDir(data)
	if err == nil {
		release()
		t.Error("lock taken through a symlink")
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Fatalf("the symlink's target now holds %q", b)
	}
}
