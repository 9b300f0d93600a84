package api

import (
	"regexp"

	"github.com/pullgate/pullgate/hub/store"
)

const nameRule = "must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"

func checkName(field, v string) error {
	if v == "" {
		return badRequest("%s: required", field)
	}
	if !store.ValidName(v) {
		return badRequest("%s %q: %s", field, v, nameRule)
	}
	return nil
}

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)
