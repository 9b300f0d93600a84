package akash

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
)

// Labels the Akash provider puts on a lease namespace
// (cluster/kube/builder in akash-network/provider). The provider rewrites
// every label under "akash.network" on reconcile: pullgate never writes
// one.
const (
	LabelOwner    = "akash.network/lease.id.owner"
	LabelDSeq     = "akash.network/lease.id.dseq"
	LabelGSeq     = "akash.network/lease.id.gseq"
	LabelOSeq     = "akash.network/lease.id.oseq"
	LabelProvider = "akash.network/lease.id.provider"
	// LabelService is on every workload and pod: the SDL service's name.
	LabelService = "akash.network/manifest-service"
)

// LeaseID identifies a lease on the chain. The provider's namespace for a
// lease is derived from it (Namespace).
type LeaseID struct {
	Owner    string `json:"owner"`
	DSeq     uint64 `json:"dseq"`
	GSeq     uint32 `json:"gseq"`
	OSeq     uint32 `json:"oseq"`
	Provider string `json:"provider"`
}

// String is the chain's form: owner/dseq/gseq/oseq/provider.
func (l LeaseID) String() string {
	return fmt.Sprintf("%s/%d/%d/%d/%s", l.Owner, l.DSeq, l.GSeq, l.OSeq, l.Provider)
}

// Namespace is the Kubernetes namespace the provider runs the lease in:
// the lowercase, unpadded base32hex of the SHA-224 of String()
// (cluster/util/lease_id_to_namespace.go), 45 characters.
func (l LeaseID) Namespace() string {
	sum := sha256.Sum224([]byte(l.String()))
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
}

// Validate checks both addresses (bech32, prefix akash) and that the
// sequence numbers are set.
func (l LeaseID) Validate() error {
	if err := ValidateAddress(l.Owner); err != nil {
		return fmt.Errorf("lease owner: %w", err)
	}
	if err := ValidateAddress(l.Provider); err != nil {
		return fmt.Errorf("lease provider: %w", err)
	}
	if l.DSeq == 0 || l.GSeq == 0 || l.OSeq == 0 {
		return fmt.Errorf("lease %s: dseq, gseq and oseq must be positive", l)
	}
	return nil
}

// LeaseFromLabels reads a lease id from a lease namespace's labels and
// checks that name is the namespace the provider derives from it, so a
// namespace cannot claim another lease than the one its name encodes.
func LeaseFromLabels(name string, labels map[string]string) (LeaseID, error) {
	var l LeaseID
	l.Owner, l.Provider = labels[LabelOwner], labels[LabelProvider]
	var err error
	if l.DSeq, err = strconv.ParseUint(labels[LabelDSeq], 10, 64); err != nil {
		return LeaseID{}, fmt.Errorf("namespace %s: label %s: want a decimal number", name, LabelDSeq)
	}
	for _, f := range []struct {
		label string
		dst   *uint32
	}{{LabelGSeq, &l.GSeq}, {LabelOSeq, &l.OSeq}} {
		n, err := strconv.ParseUint(labels[f.label], 10, 32)
		if err != nil {
			return LeaseID{}, fmt.Errorf("namespace %s: label %s: want a decimal number", name, f.label)
		}
		*f.dst = uint32(n)
	}
	if err := l.Validate(); err != nil {
		return LeaseID{}, fmt.Errorf("namespace %s: %w", name, err)
	}
	if ns := l.Namespace(); ns != name {
		return LeaseID{}, fmt.Errorf("namespace %s is not the namespace of lease %s (%s)", name, l, ns)
	}
	return l, nil
}
