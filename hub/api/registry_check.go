package api

import (
	"strings"
	"unicode"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// CheckCreateRegistry checks every field of a create request but the
// password, and returns the normalised host and endpoint. The hub runs it
// on each request; the CLI runs it before it reads the password from
// stdin, so that a mistake in a flag does not cost a typed password.
func CheckCreateRegistry(req CreateRegistryRequest) (prefix imageref.Prefix, endpoint string, err error) {
	if err := checkName("name", req.Name); err != nil {
		return imageref.Prefix{}, "", err
	}
	if strings.TrimSpace(req.Host) == "" {
		return imageref.Prefix{}, "", badRequest("host: required (e.g. ghcr.io or ghcr.io/org)")
	}
	if strings.Contains(req.Host, "@") {
		// Not echoed: it may be user:password@host.
		return imageref.Prefix{}, "", badRequest("host: must not contain user info; give username and password separately")
	}
	prefix, err = imageref.ParsePrefix(req.Host)
	if err != nil {
		return imageref.Prefix{}, "", badRequest("host: %v", err)
	}
	if endpoint, err = parseEndpoint(req.Endpoint); err != nil {
		return imageref.Prefix{}, "", err
	}
	if err := checkUsername(req.Username); err != nil {
		return imageref.Prefix{}, "", err
	}
	if err := checkRealmHosts(req.RealmHosts); err != nil {
		return imageref.Prefix{}, "", err
	}
	if _, err := credential.CheckParams(kindInput(req.Kind, prefix.String(), req.Username, "", req.ECR, req.ACR)); err != nil {
		return imageref.Prefix{}, "", prepareErr(err)
	}
	return prefix, endpoint, nil
}

// CheckUpdateRegistry checks the fields of an update request that do not
// depend on the stored credential (the password aside): username,
// endpoint, realm hosts and, when given, the new kind. Like
// CheckCreateRegistry it runs at the hub and in the CLI before the
// password is read.
func CheckUpdateRegistry(req UpdateRegistryRequest) error {
	if req.Username != nil {
		if err := checkUsername(*req.Username); err != nil {
			return err
		}
	}
	if req.Endpoint != nil {
		if _, err := parseEndpoint(*req.Endpoint); err != nil {
			return err
		}
	}
	if req.RealmHosts != nil {
		if err := checkRealmHosts(*req.RealmHosts); err != nil {
			return err
		}
	}
	if req.Kind != nil && !credential.ValidKind(*req.Kind) {
		return badRequest("kind %q: want one of %v", clipField(*req.Kind), credential.Kinds)
	}
	return nil
}

// clipField shortens an echoed field value.
func clipField(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func checkUsername(u string) error {
	if len(u) > 256 {
		return badRequest("username: longer than 256 bytes")
	}
	if strings.IndexFunc(u, unicode.IsControl) >= 0 {
		return badRequest("username: contains control characters")
	}
	// The username is shown to every member of the workspace and to the
	// hub admin (console, `registry list` in a terminal): no bidi
	// overrides or invisible characters that make it read as another.
	if strings.IndexFunc(u, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0 {
		return badRequest("username: contains format characters (bidi overrides, zero-width characters)")
	}
	return nil
}
