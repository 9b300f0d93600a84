package satoken

import (
	"strings"
	"testing"
)

// RFC 7638 section 3.1's example key and thumbprint.
const rfc7638Key = `{"kty":"RSA","kid":"2011-04-29","alg":"RS256","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`

func TestDescribeJWKS(t *testing.T) {
	keys, err := DescribeJWKS([]byte(`{"keys":[` + rfc7638Key + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := KeyInfo{KID: "2011-04-29", Kty: "RSA", Alg: "RS256", Thumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}
	if len(keys) != 1 || keys[0] != want {
		t.Fatalf("DescribeJWKS = %+v, want %+v", keys, want)
	}
	// What NewVerifier refuses, DescribeJWKS refuses too.
	if _, err := DescribeJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil || !strings.Contains(err.Error(), "symmetric") {
		t.Fatalf("symmetric key: %v", err)
	}
}
