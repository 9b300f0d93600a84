package akash

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Addresses of two public test keys (see adr036_test.go).
const (
	tenantAddr   = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	providerAddr = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
)

func TestLeaseNamespace(t *testing.T) {
	// Computed with the provider's LeaseIDToNamespace for this lease.
	l := LeaseID{Owner: tenantAddr, DSeq: 1234567, GSeq: 1, OSeq: 1, Provider: providerAddr}
	if got, want := l.Namespace(), "ptsipcpu1uiuhtf4ovkom5fiotir3glcbrgh292gjp7gg"; got != want {
		t.Fatalf("Namespace() = %s, want %s", got, want)
	}
	if len(l.Namespace()) != 45 {
		t.Fatalf("namespace length %d", len(l.Namespace()))
	}
}

func TestLeaseFromLabels(t *testing.T) {
	l := LeaseID{Owner: tenantAddr, DSeq: 1234567, GSeq: 1, OSeq: 1, Provider: providerAddr}
	labels := func(mod func(map[string]string)) map[string]string {
		m := map[string]string{"akash.network": "true", LabelOwner: l.Owner, LabelDSeq: "1234567", LabelGSeq: "1", LabelOSeq: "1", LabelProvider: l.Provider}
		if mod != nil {
			mod(m)
		}
		return m
	}
	got, err := LeaseFromLabels(l.Namespace(), labels(nil))
	if err != nil || got != l {
		t.Fatalf("LeaseFromLabels = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name   string
		ns     string
		mod    func(map[string]string)
		errHas string
	}{
		{"another lease's namespace", "tenant-a", nil, "is not the namespace of lease"},
		{"owner of another tenant", l.Namespace(), func(m map[string]string) { m[LabelOwner] = providerAddr }, "is not the namespace"},
		{"dseq not a number", l.Namespace(), func(m map[string]string) { m[LabelDSeq] = "12x" }, LabelDSeq},
		{"gseq missing", l.Namespace(), func(m map[string]string) { delete(m, LabelGSeq) }, LabelGSeq},
		{"oseq too big", l.Namespace(), func(m map[string]string) { m[LabelOSeq] = "4294967296" }, LabelOSeq},
		{"owner not akash", l.Namespace(), func(m map[string]string) { m[LabelOwner] = "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud" }, "prefix"},
		{"provider missing", l.Namespace(), func(m map[string]string) { delete(m, LabelProvider) }, "provider"},
		{"dseq zero", l.Namespace(), func(m map[string]string) { m[LabelDSeq] = "0" }, "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LeaseFromLabels(tc.ns, labels(tc.mod))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one naming %q", err, tc.errHas)
			}
		})
	}
}

func TestAddress(t *testing.T) {
	pub, _ := base64.StdEncoding.DecodeString("A/MdHVpitzHNSdD1Zw3kY+L5PEIPyd9l6sD5i4aIfXp9")
	got, err := AddressOf(pub)
	if err != nil || got != tenantAddr {
		t.Fatalf("AddressOf = %s, %v; want %s", got, err, tenantAddr)
	}
	if _, err := AddressOf(pub[:32]); err == nil {
		t.Fatal("a 32-byte key got an address")
	}
	for _, bad := range []string{"", strings.ToUpper(tenantAddr), "cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud",
		tenantAddr[:len(tenantAddr)-1] + "x", "akash1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq0yf0v6", strings.Repeat("a", 91)} {
		if err := ValidateAddress(bad); err == nil {
			t.Errorf("ValidateAddress(%q) = nil", bad)
		}
	}
	if err := ValidateAddress(providerAddr); err != nil {
		t.Fatal(err)
	}
}
