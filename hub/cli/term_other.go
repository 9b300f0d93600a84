//go:build !linux && !darwin

package cli

import (
	"context"
	"errors"
	"os"
)

// isTerminal reports a character device as a terminal: without a way to
// turn echo off here, readNoEcho refuses it rather than show the password.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func readNoEcho(context.Context, *os.File) (string, error) {
	return "", errors.New("stdin is a terminal: pipe the password in instead")
}
