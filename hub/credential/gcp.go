package credential

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// CheckServiceAccountJSON validates a Google service-account key as
// Google registries take it with username _json_key: a JSON object of type
// service_account with project_id, client_email and an RSA private_key in
// PEM. Errors name the missing or bad field and never quote the key.
func CheckServiceAccountJSON(b []byte) error {
	bad := func(format string, args ...any) error {
		return inputErr("kind gcp: service-account JSON: "+format, args...)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return bad("not valid JSON (error at byte %d)", se.Offset)
		case errors.As(err, &te):
			return bad("want a JSON object (the key file from `gcloud iam service-accounts keys create`)")
		}
		return bad("not valid JSON")
	}
	str := func(field string) (string, error) {
		v, ok := raw[field]
		if !ok || string(v) == "null" {
			return "", bad("missing %s", field)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", bad("%s must be a string", field)
		}
		if strings.TrimSpace(s) == "" {
			return "", bad("%s is empty", field)
		}
		return s, nil
	}
	typ, err := str("type")
	if err != nil {
		return err
	}
	if typ != "service_account" {
		return bad("type is %q, want \"service_account\" (a user or external-account credential cannot pull)", clip(typ))
	}
	if _, err := str("project_id"); err != nil {
		return err
	}
	email, err := str("client_email")
	if err != nil {
		return err
	}
	if !strings.Contains(email, "@") {
		return bad("client_email %q is not an email address", clip(email))
	}
	key, err := str("private_key")
	if err != nil {
		return err
	}
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return bad("private_key is not a PEM block (-----BEGIN PRIVATE KEY-----)")
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return bad("private_key is a PEM %q block, want PRIVATE KEY", clip(block.Type))
	}
	if err != nil {
		return bad("private_key does not parse as a PKCS#8 or PKCS#1 private key (truncated or corrupted?)")
	}
	switch parsed.(type) {
	case *rsa.PrivateKey:
		return nil
	case *ecdsa.PrivateKey:
		return bad("private_key is an ECDSA key, want RSA")
	case ed25519.PrivateKey:
		return bad("private_key is an Ed25519 key, want RSA")
	}
	return bad("private_key is a %s, want an RSA key", fmt.Sprintf("%T", parsed))
}
