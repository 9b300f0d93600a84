package kubelet

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRequest: the kubelet's CredentialProviderRequest on stdin.
// Properties: an accepted request has the right apiVersion, kind and an
// image and survives a re-encode unchanged; an error is short (it goes to
// the kubelet's log) and never quotes the service-account token.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"ghcr.io/org/app:1"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"hub/ghcr.io/a","serviceAccountToken":"eyJ.SA-SECRET.sig","serviceAccountAnnotations":{"a":"b"}}`,
		`{"apiVersion":"v0","kind":"CredentialProviderRequest","image":"x"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":1}`,
		`{"serviceAccountToken":"SA-SECRET",`, ``, `   `, `null`, `[]`,
		// Found by fuzzing: a huge apiVersion was quoted whole in the error.
		`{"apiVersion":"` + strings.Repeat("v", 2000) + `","kind":"CredentialProviderRequest","image":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(bytes.NewReader(data))
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			var raw struct {
				SA string `json:"serviceAccountToken"`
			}
			// (Only when the token appears nowhere else in the input: an
			// apiVersion or kind of the same text may be quoted.)
			if json.Unmarshal(data, &raw) == nil && len(raw.SA) >= 8 && bytes.Count(data, []byte(raw.SA)) == 1 &&
				strings.Contains(err.Error(), raw.SA) {
				t.Fatal("error quotes the service-account token")
			}
			return
		}
		if req.APIVersion != APIVersion || req.Kind != RequestKind || req.Image == "" {
			t.Fatalf("accepted %+v", req)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRequest(bytes.NewReader(again))
		if err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("round trip: %+v != %+v (%v)", back, req, err)
		}
	})
}
