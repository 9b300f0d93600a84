package cli

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/pullgate/pullgate/hub/credential"
)

func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// readNoEcho reads one line from the terminal f with echo off, restoring
// the terminal afterwards, also when ctx is cancelled while term's read
// still waits (it restores again when it returns: the same state).
func readNoEcho(ctx context.Context, f *os.File) (string, error) {
	fd := int(f.Fd())
	old, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	defer term.Restore(fd, old) //nolint:errcheck // best effort restore
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- result{b, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return "", r.err
		}
		if len(r.b) > credential.MaxSecretLen {
			return "", fmt.Errorf("password is longer than %d bytes", credential.MaxSecretLen)
		}
		return string(r.b), nil
	}
}
