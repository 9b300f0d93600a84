package natsauth

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/wire"
)

// FuzzDecide feeds arbitrary NATS connect credentials to the auth callout
// against a real SQLite store holding one cluster and one node: nothing
// connects but the node with its secret and an enrolling agent with the
// join token, each with only its own subjects, and no refusal quotes the
// password.
func FuzzDecide(f *testing.F) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(f.TempDir(), "hub.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		f.Fatal(err)
	}
	a := New(st, issuer)
	c, err := st.CreateCluster(ctx, store.Cluster{Name: "a"}, []byte("placeholder"))
	if err != nil {
		f.Fatal(err)
	}
	join, hash := NewJoinToken(c.ID)
	if err := st.RotateJoinToken(ctx, "a", hash); err != nil {
		f.Fatal(err)
	}
	secret, nhash := NewSecret(wire.NodeSecretPrefix)
	node, err := st.CreateNode(ctx, c.ID, "n1", nhash)
	if err != nil {
		f.Fatal(err)
	}
	enrol := "enrol-" + strings.Repeat("ab", 16)
	for _, s := range [][2]string{
		{enrol, join}, {node.ID, secret}, {enrol, " " + join + "\n"}, {enrol, secret}, {node.ID, join},
		{"enrol->", join}, {"enrol-*", join}, {enrol, wire.JoinTokenPrefix + c.ID + ".wrongwrongwrongwrong"},
		{enrol, wire.JoinTokenPrefix + c.ID + "*.x" + join[len(join)-20:]}, {node.ID, wire.NodeSecretPrefix},
		{node.ID + " ", secret}, {"node_", ""}, {HubUser, ""}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	user := jwt.NewUserClaims("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")
	f.Fuzz(func(t *testing.T, username, password string) {
		req := &jwt.AuthorizationRequest{UserNkey: user.Subject}
		req.ConnectOptions.Username, req.ConnectOptions.Password = username, password
		u, err := a.decide(ctx, req)
		if err != nil {
			if len(password) >= 8 && strings.Contains(err.Error(), password) {
				t.Fatalf("refusal quotes the password: %v", err)
			}
			if _, sec, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(password), wire.JoinTokenPrefix), "."); ok && len(sec) >= 8 && strings.Contains(err.Error(), sec) {
				t.Fatalf("refusal quotes the join token's secret: %v", err)
			}
			return
		}
		pub, sub := u.Pub.Allow, u.Sub.Allow
		switch {
		case strings.HasPrefix(username, "enrol-"):
			if strings.TrimSpace(password) != join {
				t.Fatalf("enrol user %q connected with password %q", username, password)
			}
			if len(pub) != 1 || pub[0] != wire.EnrolSubject(c.ID) || len(sub) != 1 || sub[0] != wire.EnrolInboxPrefix(strings.TrimPrefix(username, "enrol-"))+".>" {
				t.Fatalf("enrol user %q granted pub %v sub %v", username, pub, sub)
			}
		case username == node.ID:
			if password != secret {
				t.Fatalf("node connected with password %q", password)
			}
			for _, s := range append(pub, sub...) {
				if !strings.Contains(s, c.ID) && !strings.HasPrefix(s, wire.InboxPrefix(node.ID)+".") {
					t.Fatalf("node granted %q", s)
				}
			}
		default:
			t.Fatalf("user %q with password %q connected", username, password)
		}
		for _, s := range append(pub, sub...) {
			if s == ">" || strings.HasPrefix(s, "*") || strings.Contains(s, " ") {
				t.Fatalf("user %q granted %q", username, s)
			}
		}
	})
}
