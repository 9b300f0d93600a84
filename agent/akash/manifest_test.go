package akash

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	pkgakash "github.com/pullgate/pullgate/pkg/akash"
)

func loadManifest(t *testing.T, edit func(map[string]any)) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(obj)
	}
	return &unstructured.Unstructured{Object: obj}
}

func spec(o map[string]any) map[string]any { return o["spec"].(map[string]any) }
func leaseID(o map[string]any) map[string]any {
	return spec(o)["lease_id"].(map[string]any)
}

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest(loadManifest(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := pkgakash.LeaseID{Owner: "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h", DSeq: 1234567, GSeq: 1, OSeq: 1,
		Provider: "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"}
	if m.Lease != want || m.Name != want.Namespace() {
		t.Fatalf("lease %+v name %s", m.Lease, m.Name)
	}
	if len(m.Services) != 2 || m.Services[0].Name != "web" || m.Services[0].Images[0] != "ghcr.io/org/app:1" ||
		m.Services[1].Credentials != nil {
		t.Fatalf("services %+v", m.Services)
	}
	creds := m.WithCredentials()
	if len(creds) != 1 || *creds[0].Credentials != (Credentials{Host: "ghcr.io", Username: "org-bot", Password: "ghp_s3cr3tPAT"}) {
		t.Fatalf("with credentials %+v", creds)
	}
	// The password never shows in a formatted value.
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", *creds[0].Credentials), fmt.Sprintf("%v", *creds[0].Credentials)} {
		if strings.Contains(s, "ghp_s3cr3tPAT") {
			t.Fatalf("password printed: %s", s)
		}
	}
}

func TestParseManifestRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(map[string]any)
	}{
		{"name is not the lease's namespace", "not named after", func(o map[string]any) {
			o["metadata"].(map[string]any)["name"] = "someone-elses-namespace"
		}},
		{"owner rewritten", "not named after", func(o map[string]any) {
			leaseID(o)["owner"] = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
		}},
		{"dseq not a number", "dseq", func(o map[string]any) { leaseID(o)["dseq"] = "12x" }},
		{"bad owner address", "owner", func(o map[string]any) { leaseID(o)["owner"] = "cosmos1xyz" }},
		{"service without image", "services[1]", func(o map[string]any) {
			delete(spec(o)["group"].(map[string]any)["services"].([]any)[1].(map[string]any), "image")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(loadManifest(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "ghp_s3cr3tPAT") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	// dseq given as a number is read too.
	m, err := ParseManifest(loadManifest(t, func(o map[string]any) { leaseID(o)["dseq"] = 1234567 }))
	if err != nil || m.Lease.DSeq != 1234567 {
		t.Fatalf("numeric dseq: %v %+v", err, m.Lease)
	}
}
