package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pullgate/pullgate/hub/credential"
)

// readPassword reads an upstream password from in: the whole input minus
// one trailing newline. When in is a terminal it prompts on prompt and
// reads one line without echo (where the platform allows; elsewhere it
// refuses a terminal).
func readPassword(ctx context.Context, in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(prompt, "Password: ")
		pw, err := readNoEcho(ctx, f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password from terminal: %w", err)
		}
		if pw == "" {
			return "", errors.New("empty password")
		}
		return pw, nil
	}
	b, err := io.ReadAll(io.LimitReader(in, credential.MaxSecretLen+3))
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	if len(b) > credential.MaxSecretLen+2 {
		return "", fmt.Errorf("password on stdin is longer than %d bytes", credential.MaxSecretLen)
	}
	pw := string(b)
	if p, ok := strings.CutSuffix(pw, "\n"); ok {
		pw = strings.TrimSuffix(p, "\r")
	}
	if pw == "" {
		return "", errors.New("empty password on stdin: pipe it in, e.g. printf '%s' \"$PASSWORD\" | pullgate-hub registry add ... --password-stdin")
	}
	return pw, nil
}
