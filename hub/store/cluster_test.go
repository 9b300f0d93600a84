package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestClustersAndNodes(t *testing.T) { forEachStore(t, testClustersAndNodes) }

func testClustersAndNodes(t *testing.T, s *SQL) {
	ctx := context.Background()
	ws := mustWorkspace(t, s, "acme")

	single, err := s.CreateCluster(ctx, Cluster{Name: "edge", WorkspaceID: ws.ID}, []byte("hash-1"))
	if err != nil {
		t.Fatal(err)
	}
	if single.SAAudience != "pullgate" {
		t.Fatalf("default audience %q", single.SAAudience)
	}
	shared, err := s.CreateCluster(ctx, Cluster{Name: "akash", SAJWKS: []byte(`{"keys":[]}`), SAIssuer: "https://k8s"}, []byte("hash-2"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateCluster(ctx, Cluster{Name: "edge"}, []byte("x"))
	wantErr(t, err, ErrConflict, "edge")
	_, err = s.CreateCluster(ctx, Cluster{Name: "Bad Name"}, []byte("x"))
	wantErr(t, err, ErrInvalid, "cluster")
	_, err = s.CreateCluster(ctx, Cluster{Name: "nohash"}, nil)
	wantErr(t, err, ErrInvalid, "hash")

	got, err := s.GetCluster(ctx, "akash")
	if err != nil || got.ID != shared.ID || string(got.SAJWKS) != `{"keys":[]}` || got.SAIssuer != "https://k8s" || got.WorkspaceID != "" {
		t.Fatalf("GetCluster = %+v, %v", got, err)
	}
	if byID, err := s.ClusterByID(ctx, single.ID); err != nil || byID.Name != "edge" || byID.WorkspaceID != ws.ID {
		t.Fatalf("ClusterByID = %+v, %v", byID, err)
	}
	if list, _ := s.ListClusters(ctx); len(list) != 2 || list[0].Name != "akash" {
		t.Fatalf("ListClusters = %+v", list)
	}

	// Join token rotation replaces the hash.
	if h, _ := s.ClusterJoinHash(ctx, single.ID); !bytes.Equal(h, []byte("hash-1")) {
		t.Fatalf("join hash %q", h)
	}
	if err := s.RotateJoinToken(ctx, "edge", []byte("hash-3")); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.ClusterJoinHash(ctx, single.ID); !bytes.Equal(h, []byte("hash-3")) {
		t.Fatalf("join hash after rotate %q", h)
	}
	wantErr(t, s.RotateJoinToken(ctx, "nope", []byte("x")), ErrNotFound, "nope")

	// Installs by cluster id.
	mustInstall(t, s, "acme", "other", nil)
	if _, err := s.CreateInstall(ctx, "acme", Install{Name: "web", Cluster: "edge", Namespace: "default", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if ins, _ := s.InstallsByCluster(ctx, single.ID); len(ins) != 1 || ins[0].Name != "web" || ins[0].Cluster != "edge" || ins[0].ClusterID != single.ID {
		t.Fatalf("InstallsByCluster = %+v", ins)
	}

	// Nodes.
	n1, err := s.CreateNode(ctx, single.ID, "node-a", []byte("secret-hash"))
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := s.CreateNode(ctx, single.ID, "node-b", []byte("h2"))
	s.CreateNode(ctx, single.ID, "node-b", []byte("h3")) // re-enrolled host: same name
	got1, hash, err := s.NodeByID(ctx, n1.ID)
	if err != nil || got1.Name != "node-a" || got1.Revoked || !bytes.Equal(hash, []byte("secret-hash")) {
		t.Fatalf("NodeByID = %+v %q %v", got1, hash, err)
	}
	if nodes, _ := s.ListNodes(ctx, "edge"); len(nodes) != 3 {
		t.Fatalf("ListNodes: %d nodes", len(nodes))
	}
	_, err = s.RevokeNode(ctx, "edge", "node-b")
	wantErr(t, err, ErrInvalid, "give the node id")
	r, err := s.RevokeNode(ctx, "edge", n2.ID)
	if err != nil || !r.Revoked || r.RevokedAt.IsZero() {
		t.Fatalf("RevokeNode = %+v %v", r, err)
	}
	if again, _, _ := s.NodeByID(ctx, n2.ID); !again.Revoked {
		t.Fatal("revocation not stored")
	}
	if r, err := s.RevokeNode(ctx, "edge", "node-a"); err != nil || r.ID != n1.ID {
		t.Fatalf("revoke by name: %+v %v", r, err)
	}
	_, err = s.RevokeNode(ctx, "akash", n1.ID)
	wantErr(t, err, ErrNotFound, "")

	// Deleting the cluster (unbinding its install) removes its nodes.
	if _, err := s.DeleteCluster(ctx, "edge", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NodeByID(ctx, n1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("node after cluster delete: %v", err)
	}
	_, err = s.DeleteCluster(ctx, "edge", false)
	wantErr(t, err, ErrNotFound, "edge")
}
