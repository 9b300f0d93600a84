package kubelet

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
)

func TestCacheDuration(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		remaining, want time.Duration
		err             bool
	}{
		{10 * time.Minute, 9 * time.Minute, false},                  // 10% margin
		{2 * time.Minute, 90 * time.Second, false},                  // 30s margin
		{time.Hour, 54 * time.Minute, false},                        // 10% margin
		{45 * time.Second, 15 * time.Second, false},                 // 30s margin
		{30 * time.Second, 15 * time.Second, false},                 // half
		{20 * time.Second, 10 * time.Second, false},                 // half
		{2500 * time.Millisecond, time.Second, false},               // half, truncated
		{90*time.Second + 700*time.Millisecond, time.Minute, false}, // whole seconds
		{time.Second, 0, true},
		{-time.Minute, 0, true},
	} {
		got, err := CacheDuration(now, now.Add(tc.remaining))
		if tc.err {
			if err == nil {
				t.Errorf("remaining %s: accepted", tc.remaining)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("remaining %s: %s %v, want %s", tc.remaining, got, err, tc.want)
		}
		if got <= 0 || got >= tc.remaining {
			t.Errorf("remaining %s: cache duration %s must be in (0, remaining)", tc.remaining, got)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"ok", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"ghcr.io/a/b"}`, ""},
		{"newer field", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"ghcr.io/a/b","futureField":1}`, ""},
		{"empty", "  \n", "no request on stdin"},
		{"malformed", `{"apiVersion":`, "malformed JSON on stdin"},
		{"not an object", `[]`, "malformed"},
		{"wrong type", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":5}`, `field "image"`},
		{"v1beta1", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"a/b"}`, "unsupported apiVersion"},
		{"no apiVersion", `{"kind":"CredentialProviderRequest","image":"a/b"}`, "unsupported apiVersion"},
		{"wrong kind", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","image":"a/b"}`, "unsupported kind"},
		{"no image", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}`, "no image"},
		{"too big", `{"image":"` + strings.Repeat("a", MaxRequest) + `"}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest(strings.NewReader(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// The mirrored types must read what the kubelet writes and write what the
// kubelet reads.
func TestMirrorsKubeletTypes(t *testing.T) {
	kreq := credentialproviderv1.CredentialProviderRequest{
		TypeMeta:                  metav1.TypeMeta{APIVersion: APIVersion, Kind: RequestKind},
		Image:                     "ghcr.io/org/app:v1",
		ServiceAccountToken:       "sa.jwt",
		ServiceAccountAnnotations: map[string]string{"a": "b"},
	}
	data, _ := json.Marshal(kreq)
	req, err := ParseRequest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if req.Image != kreq.Image || req.ServiceAccountToken != kreq.ServiceAccountToken || !reflect.DeepEqual(req.ServiceAccountAnnotations, kreq.ServiceAccountAnnotations) {
		t.Fatalf("mirror read %+v", req)
	}
	d := Duration(4*time.Minute + 30*time.Second)
	resp := Response{APIVersion: APIVersion, Kind: ResponseKind, CacheKeyType: CacheKeyImage, CacheDuration: &d,
		Auth: map[string]AuthConfig{"ghcr.io": {Username: "u", Password: "p"}}}
	data, _ = json.Marshal(resp)
	var kresp credentialproviderv1.CredentialProviderResponse
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kresp); err != nil {
		t.Fatal(err)
	}
	want := credentialproviderv1.CredentialProviderResponse{
		TypeMeta:      metav1.TypeMeta{APIVersion: APIVersion, Kind: ResponseKind},
		CacheKeyType:  credentialproviderv1.ImagePluginCacheKeyType,
		CacheDuration: &metav1.Duration{Duration: 4*time.Minute + 30*time.Second},
		Auth:          map[string]credentialproviderv1.AuthConfig{"ghcr.io": {Username: "u", Password: "p"}},
	}
	if !reflect.DeepEqual(kresp, want) {
		t.Fatalf("kubelet reads %+v", kresp)
	}
	// And the other way round: every field of the kubelet's response type is mirrored.
	kdata, _ := json.Marshal(want)
	var back Response
	dec = json.NewDecoder(bytes.NewReader(kdata))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil || !reflect.DeepEqual(back, resp) {
		t.Fatalf("mirror of the response: %+v %v", back, err)
	}
	// Every request field too.
	kdata, _ = json.Marshal(kreq)
	var breq Request
	dec = json.NewDecoder(bytes.NewReader(kdata))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&breq); err != nil {
		t.Fatalf("mirror of the request lacks a field: %v", err)
	}
}

// The mirrored types have the kubelet's JSON fields, compared by
// reflection: a field the kubelet adds is noticed here even while the
// round-trip fixtures above leave it empty (and so out of the JSON).
func TestMirrorsKubeletFieldSets(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mirror, kubel reflect.Type
	}{
		{"request", reflect.TypeFor[Request](), reflect.TypeFor[credentialproviderv1.CredentialProviderRequest]()},
		{"response", reflect.TypeFor[Response](), reflect.TypeFor[credentialproviderv1.CredentialProviderResponse]()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine, theirs := map[string]string{}, map[string]string{}
			jsonShape(tc.mirror, "", mine)
			jsonShape(tc.kubel, "", theirs)
			if len(theirs) < 5 {
				t.Fatalf("kubelet %s: only %v: the walk is broken", tc.kubel, theirs)
			}
			for path, kind := range theirs {
				if got, ok := mine[path]; !ok {
					t.Errorf("kubelet field %s (%s) is not mirrored", path, kind)
				} else if got != kind {
					t.Errorf("field %s: mirror %s, kubelet %s", path, got, kind)
				}
			}
			for path := range mine {
				if _, ok := theirs[path]; !ok {
					t.Errorf("mirror field %s is not in the kubelet's type", path)
				}
			}
		})
	}
}

// jsonShape records, under its JSON path, the JSON kind of every field
// encoding/json writes for t: embedded structs are flattened as it does,
// and a type with its own MarshalJSON (metav1.Duration, Duration) is a leaf.
func jsonShape(t reflect.Type, path string, out map[string]string) {
	marshaler := reflect.TypeFor[json.Marshaler]()
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) {
		out[path] = "custom"
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		jsonShape(t.Elem(), path, out)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				jsonShape(f.Type, path, out)
				continue
			}
			if name == "" {
				name = f.Name
			}
			jsonShape(f.Type, path+"."+name, out)
		}
	case reflect.Map, reflect.Slice:
		out[path] = t.Kind().String()
		jsonShape(t.Elem(), path+"[]", out)
	default:
		out[path] = t.Kind().String()
	}
}

// A negative --max-cache-duration is refused: taken as "no cap" it would
// let the kubelet cache a token until shortly before it expires, the
// opposite of what a cap asks for.
func TestMaxCacheDurationNegative(t *testing.T) {
	var stdout, stderr strings.Builder
	if rc := Main([]string{"--max-cache-duration=-1s"}, strings.NewReader(""), &stdout, &stderr); rc != 2 ||
		!strings.Contains(stderr.String(), "max-cache-duration") {
		t.Fatalf("rc %d, stderr %q; want 2 and a message about --max-cache-duration", rc, stderr.String())
	}
}
