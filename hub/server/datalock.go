package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockFileName is the lock file in the data directory. It is never
// removed: removing it on exit would let a starting hub lock a file that a
// third one then re-creates and locks too.
const lockFileName = "hub.lock"

// DataDirInUseError refuses a second hub on one data directory. Holder is
// what the running hub wrote into the lock file (pid, host, start time).
type DataDirInUseError struct {
	Dir    string
	Holder string
}

func (e *DataDirInUseError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "another process"
	}
	return fmt.Sprintf("data directory %s is in use by another pullgate-hub (%s; lock %s): stop that hub, or give this one another --data",
		e.Dir, holder, filepath.Join(e.Dir, lockFileName))
}

// lockDataDir takes an exclusive lock on the data directory for the life
// of the process (release undoes it; the kernel drops it if the process
// dies, so a crash leaves no stale lock), and records who holds it.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFileName)
	// Never through a symlink planted at hub.lock (the hub truncates and
	// writes the file), and only a regular file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openNoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("data dir lock %s: not a regular file", path)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	if !ok {
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		return nil, &DataDirInUseError{Dir: dir, Holder: holderText(string(b[:n]))}
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on host %s, started %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = unlock(f)
		f.Close()
	}, nil
}

// holderText keeps one printable line of what the lock file says.
func holderText(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
