package api

import (
	"regexp"
	"unicode"

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

// unsafeRune reports a control or format character: an escape sequence,
// a line break, a bidi override or an invisible character that would act
// on a terminal or make text shown to another user read as something else.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
