package akash

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzVerifyADR036: no input panics, and whatever VerifyADR036 accepts is
// a canonical (low-S) signature by the address's own key. Seeds: the
// valid login signature and its refusals.
func FuzzVerifyADR036(f *testing.F) {
	pub, sig := b64(f, tenantPubB64), b64(f, loginSigB64)
	f.Add(tenantAddr, []byte(loginMessage), pub, sig)
	f.Add(tenantAddr, []byte(loginMessage), pub, sig[:63])
	f.Add(providerAddr, []byte(loginMessage), pub, sig)
	f.Add("akash1", []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, addr string, data, pub, sig []byte) {
		err := VerifyADR036(addr, data, pub, sig)
		if err != nil {
			return
		}
		if got, _ := AddressOf(pub); got != addr {
			t.Fatalf("accepted a key of %s for %s", got, addr)
		}
		if len(sig) != 64 || sig[32] >= 0x80 {
			t.Fatalf("accepted a non-canonical signature %x", sig)
		}
	})
}

// FuzzSignBytes: the sign doc is valid JSON that holds the signer and
// data exactly, whatever they are (the verifier builds it from a stored
// address and message, but nothing may break out of its field).
func FuzzSignBytes(f *testing.F) {
	f.Add(tenantAddr, []byte(loginMessage))
	f.Add(`a","msgs":[`, []byte("</script>&"))
	f.Fuzz(func(t *testing.T, signer string, data []byte) {
		b := SignBytes(signer, data)
		var doc signDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("sign doc is not JSON: %v\n%s", err, b)
		}
		if len(doc.Msgs) != 1 || !bytes.Equal(doc.Msgs[0].Value.Data, data) || doc.ChainID != "" || doc.Msgs[0].Type != "sign/MsgSignData" {
			t.Fatalf("sign doc %s does not round-trip", b)
		}
		// encoding/json replaces invalid UTF-8; any valid signer comes
		// back exactly.
		if utf8.ValidString(signer) && doc.Msgs[0].Value.Signer != signer {
			t.Fatalf("signer %q came back as %q", signer, doc.Msgs[0].Value.Signer)
		}
	})
}
