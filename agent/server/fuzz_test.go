package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/pullgate/pullgate/pkg/wire"
)

// echo is a Backend that answers with the request's image.
type echo struct{}

func (echo) Credentials(_ context.Context, req wire.CredentialsRequest) (wire.Credentials, error) {
	return wire.Credentials{Registry: "r", Username: wire.Username, Password: "pw"}, nil
}
func (echo) Ready() (bool, string) { return true, "" }

// FuzzCredentialsRequest: the socket API's request (method, Content-Type,
// body). Properties: only a POST of one strict JSON object with an image
// reaches the backend, and then decode round-trips; every refusal is a
// 4xx JSON error of bounded size that never quotes the service-account
// token.
func FuzzCredentialsRequest(f *testing.F) {
	for _, s := range [][3]string{
		{"POST", "application/json", `{"image":"ghcr.io/org/app"}`},
		{"POST", "", `{"image":"a","service_account_token":"SA-SECRET-TOKEN","service_account_annotations":{"k":"v"}}`},
		{"POST", "application/json; charset=utf-8", `{"image":"a"} {"image":"b"}`},
		{"POST", "text/plain", `{"image":"a"}`},
		{"GET", "", ""},
		{"POST", "application/json", `{"image":"a","bogus_field_SA-SECRET":1}`},
		{"POST", "application/json", `{"image":"","service_account_token":"SA-SECRET-TOKEN"}`},
		{"POST", "application/json", `{"image":"a","service_account_token":12}`},
		{"POST", "application/json", strings.Repeat(" ", MaxBody) + `{}`},
		// Found by fuzzing: an unknown field's name was quoted whole.
		{"POST", "application/json", `{"image":"a","` + strings.Repeat("f", 4000) + `":1}`},
	} {
		f.Add(s[0], s[1], []byte(s[2]))
	}
	h := Handler(echo{}, slog.New(slog.DiscardHandler), nil)
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte) {
		if !validMethod(method) || strings.ContainsAny(contentType, "\r\n\x00") {
			return
		}
		r := httptest.NewRequest(method, wire.CredentialsPath, bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		resp := w.Body.Bytes()
		if w.Code == http.StatusOK {
			req, err := decode(bytes.NewReader(body))
			if method != http.MethodPost || err != nil || req.Image == "" {
				t.Fatalf("200 for %s %q: %v", method, body, err)
			}
			again, _ := json.Marshal(req)
			back, err := decode(bytes.NewReader(again))
			if err != nil || !reflect.DeepEqual(back, req) {
				t.Fatalf("round trip %+v != %+v: %v", back, req, err)
			}
			return
		}
		if w.Code < 400 || w.Code > 499 || len(resp) > 512 {
			t.Fatalf("%d with %d bytes: %s", w.Code, len(resp), resp)
		}
		var er wire.ErrorReply
		if err := json.Unmarshal(resp, &er); err != nil || er.Error == "" || er.Code == "" {
			t.Fatalf("error reply %q", resp)
		}
		var raw struct {
			SA string `json:"service_account_token"`
		}
		// (Only when the token appears nowhere else in the body: a field
		// name of the same text may be quoted.)
		if json.Unmarshal(body, &raw) == nil && len(raw.SA) >= 8 && bytes.Count(body, []byte(raw.SA)) == 1 &&
			strings.Contains(string(resp), raw.SA) {
			t.Fatal("error quotes the service-account token")
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}
