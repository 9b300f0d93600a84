package akash

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/decred/dcrd/bech32"
	//lint:ignore SA1019 Cosmos account addresses are RIPEMD-160 of SHA-256 by definition; the package is frozen, not broken.
	"golang.org/x/crypto/ripemd160"
)

// AddressPrefix is the bech32 human-readable part of Akash accounts.
const AddressPrefix = "akash"

// ValidateAddress checks that s is a bech32 account address with the
// akash prefix and a 20-byte payload, in lowercase.
func ValidateAddress(s string) error {
	if s == "" {
		return errors.New("address: empty")
	}
	if len(s) > 90 {
		return errors.New("address: longer than bech32 allows")
	}
	hrp, data, err := bech32.Decode(s)
	if err != nil {
		return fmt.Errorf("address %q: not bech32: %w", s, err)
	}
	if hrp != AddressPrefix {
		return fmt.Errorf("address %q: prefix %q, want %q", s, hrp, AddressPrefix)
	}
	if s != toLower(s) {
		return fmt.Errorf("address %q: write it in lowercase", s)
	}
	raw, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil || len(raw) != 20 {
		return fmt.Errorf("address %q: want a 20-byte account address", s)
	}
	return nil
}

// AddressOf is the account address of a 33-byte compressed secp256k1
// public key: bech32("akash", ripemd160(sha256(key))).
func AddressOf(pubKey []byte) (string, error) {
	if len(pubKey) != 33 {
		return "", fmt.Errorf("public key: %d bytes, want a 33-byte compressed secp256k1 key", len(pubKey))
	}
	sum := sha256.Sum256(pubKey)
	h := ripemd160.New()
	h.Write(sum[:])
	conv, err := bech32.ConvertBits(h.Sum(nil), 8, 5, true)
	if err != nil {
		return "", fmt.Errorf("address of public key: %w", err)
	}
	return bech32.Encode(AddressPrefix, conv)
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
