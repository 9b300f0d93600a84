package akash

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// ADR-036 (cosmos-sdk docs/architecture/adr-036-arbitrary-signature.md) is
// how Cosmos wallets sign arbitrary data: Keplr's signArbitrary and
// Akash's own provider JWTs (chain-sdk go/util/jwt/es256kadr36.go) sign
// the canonical amino JSON of a zero-fee, zero-sequence transaction with
// one sign/MsgSignData message that holds the data.

// The sign doc as a fixed structure: fields in alphabetical order at every
// level (amino's canonical JSON sorts keys), amount an empty array, no
// timeout_height. encoding/json writes []byte as padded standard base64
// and escapes &, < and > as cosmjs does.
type (
	signDoc struct {
		AccountNumber string    `json:"account_number"`
		ChainID       string    `json:"chain_id"`
		Fee           signFee   `json:"fee"`
		Memo          string    `json:"memo"`
		Msgs          []signMsg `json:"msgs"`
		Sequence      string    `json:"sequence"`
	}
	signFee struct {
		Amount []struct{} `json:"amount"`
		Gas    string     `json:"gas"`
	}
	signMsg struct {
		Type  string       `json:"type"`
		Value signMsgValue `json:"value"`
	}
	signMsgValue struct {
		Data   []byte `json:"data"`
		Signer string `json:"signer"`
	}
)

// SignBytes are the exact bytes an ADR-036 wallet signs for data on behalf
// of signer:
//
//	{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"<base64(data)>","signer":"<signer>"}}],"sequence":"0"}
//
// The verifier rebuilds them from what it knows (the address and the data
// it issued); it never takes a sign doc from the client.
func SignBytes(signer string, data []byte) []byte {
	doc := signDoc{
		AccountNumber: "0",
		Fee:           signFee{Amount: []struct{}{}, Gas: "0"},
		Msgs:          []signMsg{{Type: "sign/MsgSignData", Value: signMsgValue{Data: data, Signer: signer}}},
		Sequence:      "0",
	}
	b, err := json.Marshal(doc)
	if err != nil {
		// Strings and bytes always marshal.
		panic(fmt.Sprintf("akash: marshal ADR-036 sign doc: %v", err))
	}
	return b
}

// ErrBadSignature is wrapped by every refusal of VerifyADR036 whose cause
// is the signature, key or address (not the caller's input being
// malformed in a way only a programming error produces).
var ErrBadSignature = errors.New("signature refused")

// VerifyADR036 checks that sig64 (r||s, 32 bytes each, big-endian) is an
// ADR-036 signature of data by the key pubKey33 (compressed secp256k1)
// and that the key is address's (bech32 "akash"). It checks as cosmos-sdk
// does (crypto/keys/secp256k1, decred), and also refuses what decred's
// Verify lets through: a high-S signature (the malleable twin of a valid
// one) and r or s that overflow the group order or are zero.
func VerifyADR036(address string, data []byte, pubKey33, sig64 []byte) error {
	if err := ValidateAddress(address); err != nil {
		return err
	}
	if len(pubKey33) != 33 {
		return fmt.Errorf("%w: public key is %d bytes, want a 33-byte compressed secp256k1 key", ErrBadSignature, len(pubKey33))
	}
	got, err := AddressOf(pubKey33)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if got != address {
		return fmt.Errorf("%w: the public key is the key of %s, not of %s", ErrBadSignature, got, address)
	}
	return verifySignature(SignBytes(address, data), pubKey33, sig64)
}

// verifySignature checks sig64 over sha256(msg) with the compressed key,
// whatever address prefix the key is shown with.
func verifySignature(msg, pubKey33, sig64 []byte) error {
	if len(sig64) != 64 {
		return fmt.Errorf("%w: signature is %d bytes, want 64 (r||s)", ErrBadSignature, len(sig64))
	}
	if len(pubKey33) != 33 {
		return fmt.Errorf("%w: public key is %d bytes, want a 33-byte compressed secp256k1 key", ErrBadSignature, len(pubKey33))
	}
	pub, err := secp256k1.ParsePubKey(pubKey33)
	if err != nil {
		return fmt.Errorf("%w: public key: %v", ErrBadSignature, err)
	}
	var r, s secp256k1.ModNScalar
	if overflow := r.SetByteSlice(sig64[:32]); overflow || r.IsZero() {
		return fmt.Errorf("%w: r is zero or not below the group order", ErrBadSignature)
	}
	if overflow := s.SetByteSlice(sig64[32:]); overflow || s.IsZero() {
		return fmt.Errorf("%w: s is zero or not below the group order", ErrBadSignature)
	}
	if s.IsOverHalfOrder() {
		return fmt.Errorf("%w: high-S signature (not canonical): wallets sign with low S", ErrBadSignature)
	}
	digest := sha256.Sum256(msg)
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		return fmt.Errorf("%w: the signature does not match the key and the message", ErrBadSignature)
	}
	return nil
}

// Sign makes the ADR-036 signature of data for address with the 32-byte
// secp256k1 private key priv, as a wallet does (RFC 6979 nonce, low S),
// and returns the compressed public key and the 64-byte r||s signature.
// It refuses a key that is not address's.
func Sign(priv []byte, address string, data []byte) (pubKey33, sig64 []byte, err error) {
	if len(priv) != 32 {
		return nil, nil, fmt.Errorf("private key: %d bytes, want 32", len(priv))
	}
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(priv); overflow || k.IsZero() {
		return nil, nil, errors.New("private key: zero or not below the group order")
	}
	key := secp256k1.NewPrivateKey(&k)
	defer key.Zero()
	pubKey33 = key.PubKey().SerializeCompressed()
	got, err := AddressOf(pubKey33)
	if err != nil {
		return nil, nil, err
	}
	if got != address {
		return nil, nil, fmt.Errorf("the private key is the key of %s, not of %s", got, address)
	}
	digest := sha256.Sum256(SignBytes(address, data))
	sig := ecdsa.Sign(key, digest[:])
	r, s := sig.R(), sig.S()
	sig64 = make([]byte, 64)
	r.PutBytesUnchecked(sig64[:32])
	s.PutBytesUnchecked(sig64[32:])
	return pubKey33, sig64, nil
}
