package identity

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/pkg/wire"
)

var good = Identity{NodeID: "node_1", NodeSecret: "pgn1.supersecret", ClusterID: "cl_1", Cluster: "prod", EnrolledAt: time.Unix(1, 0).UTC()}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := Load(dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of an empty dir: %v", err)
	}
	if err := Save(dir, good); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil || got != good {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	fi, _ := os.Stat(Path(dir))
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes file %v dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	// Overwrite atomically.
	g2 := good
	g2.NodeID = "node_2"
	if err := Save(dir, g2); err != nil {
		t.Fatal(err)
	}
	if got, _ := Load(dir); got.NodeID != "node_2" {
		t.Fatal("not replaced")
	}
}

func TestLoadTightensPermissions(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, good); err != nil {
		t.Fatal(err)
	}
	os.Chmod(Path(dir), 0o644)
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(Path(dir)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v not tightened", fi.Mode().Perm())
	}
}

func TestLoadRejects(t *testing.T) {
	for name, content := range map[string]string{
		"malformed":     `{"node_id":`,
		"unknown field": `{"node_id":"n","node_secret":"s","cluster_id":"c","extra":1}`,
		"no secret":     `{"node_id":"n","cluster_id":"c"}`,
		"bad node id":   `{"node_id":"n.*","node_secret":"s","cluster_id":"c"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(Path(dir), []byte(content), 0o600)
			_, err := Load(dir)
			if err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("Load = %v", err)
			}
			if strings.Contains(err.Error(), `"s"`) {
				t.Fatalf("error quotes file content: %v", err)
			}
		})
	}
}

func TestNeverPrintsSecret(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "identity", good)
	for _, s := range []string{fmt.Sprint(good), fmt.Sprintf("%v %+v %#v %s", good, good, good, good), buf.String()} {
		if strings.Contains(s, good.NodeSecret) {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestFromEnrolReply(t *testing.T) {
	if _, err := FromEnrolReply(wire.EnrolReply{NodeID: "n", ClusterID: "c"}, "x", time.Now()); err == nil {
		t.Fatal("reply without secret accepted")
	}
	id, err := FromEnrolReply(wire.EnrolReply{NodeID: "n", NodeSecret: "s", ClusterID: "c", Cluster: "prod", Shared: true}, "node-a", time.Now())
	if err != nil || !id.Shared || id.NodeName != "node-a" {
		t.Fatalf("%+v %v", id, err)
	}
}
