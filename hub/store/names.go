package store

import (
	"fmt"
	"regexp"
)

// namePattern is the rule for workspace, credential and install names.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

// ValidName reports whether s is acceptable as a workspace, credential or
// install name: 1 to 64 lowercase letters, digits, '.', '_' or '-', starting
// and ending with a letter or digit.
func ValidName(s string) bool { return namePattern.MatchString(s) }

func checkName(field, name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("%w: %s name %q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", ErrInvalid, field, name)
}
