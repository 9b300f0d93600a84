package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSigningKeys(t *testing.T) { forEachStore(t, testSigningKeys) }

func testSigningKeys(t *testing.T, s *SQL) {
	ctx := context.Background()
	if keys, err := s.ListSigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListSigningKeys on empty store = %v, %v", keys, err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	k2 := SigningKey{KID: "k2", Public: []byte("pub2"), Private: Sealed("priv2"), CreatedAt: t0.Add(time.Hour)}
	k1 := SigningKey{KID: "k1", Public: []byte("pub1"), Private: Sealed("priv1"), CreatedAt: t0.In(time.FixedZone("X", 3600))}
	for _, k := range []SigningKey{k2, k1} {
		if err := s.AddSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSigningKey(ctx, SigningKey{KID: "k3", Public: []byte("p"), Private: Sealed("s")}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddSigningKey(ctx, k1), ErrConflict, `signing key "k1"`)
	wantErr(t, s.AddSigningKey(ctx, SigningKey{Public: []byte("p"), Private: Sealed("s")}), ErrInvalid, "kid")

	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 3 {
		t.Fatalf("ListSigningKeys = %v, %v", keys, err)
	}
	if keys[0].KID != "k1" || keys[1].KID != "k2" || keys[2].KID != "k3" {
		t.Fatalf("order = %s %s %s", keys[0].KID, keys[1].KID, keys[2].KID)
	}
	if !keys[0].CreatedAt.Equal(t0) || keys[0].CreatedAt.Location() != time.UTC ||
		!bytes.Equal(keys[0].Public, k1.Public) || !bytes.Equal(keys[0].Private, k1.Private) {
		t.Fatalf("k1 = %+v", keys[0])
	}
	if keys[2].CreatedAt.IsZero() {
		t.Fatal("zero CreatedAt not filled in")
	}
}

// Replicas starting at once on a fresh database share one first key.
func TestInitSigningKeysConcurrent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db testDB) {
		const replicas = 4
		stores := make([]*SQL, replicas)
		for i := range stores {
			stores[i] = db.mustOpen(t)
		}
		var created atomic.Int64
		got := make([][]SigningKey, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = s.InitSigningKeys(context.Background(), func() (SigningKey, error) {
					n := created.Add(1)
					time.Sleep(20 * time.Millisecond) // widen the window between the check and the insert
					kid := fmt.Sprintf("k%d", n)
					return SigningKey{KID: kid, Public: []byte("pub-" + kid), Private: Sealed("priv-" + kid)}, nil
				})
			}()
		}
		wg.Wait()
		for i := range stores {
			if errs[i] != nil {
				t.Fatalf("replica %d: %v", i, errs[i])
			}
			if len(got[i]) != 1 || got[i][0].KID != got[0][0].KID {
				t.Fatalf("replica %d holds %v, replica 0 %v: want the same single key", i, kids(got[i]), kids(got[0]))
			}
		}
		if n := created.Load(); n != 1 {
			t.Fatalf("%d keys made, want 1", n)
		}
		// A later start keeps the key.
		again, err := stores[0].InitSigningKeys(context.Background(), func() (SigningKey, error) {
			t.Fatal("made a key although one exists")
			return SigningKey{}, nil
		})
		if err != nil || len(again) != 1 || again[0].KID != got[0][0].KID {
			t.Fatalf("second init: %v %v", kids(again), err)
		}
	})
}

func kids(ks []SigningKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.KID)
	}
	return out
}
