package store

import (
	"context"
	"fmt"
	"time"
)

// MaxAgentVersionLen bounds the agent version a node reports; longer ones
// are cut (the node chooses the string, the hub only shows it).
const MaxAgentVersionLen = 64

// NodeContactInterval is how stale a node's recorded last contact may get:
// a contact within it of the recorded one, with no new version, writes
// nothing. A node (or a stolen node credential) that floods resyncs then
// costs the database no write per message, and the console's "last
// contact" is still accurate to well under a resync period.
const NodeContactInterval = 30 * time.Second

// NodeContact records that the node's agent was heard from at t, running
// version ("" leaves the stored version as it is: an older agent that does
// not send one on resync). The version is reduced to printable characters
// and cut to MaxAgentVersionLen. An unknown node is not an error here: the
// caller has already decided whether to serve it. Contacts closer than
// NodeContactInterval to the recorded one that bring no new version
// change nothing (see NodeContactInterval).
func (s *SQL) NodeContact(ctx context.Context, nodeID, version string, t time.Time) error {
	version = CleanAgentVersion(version)
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE nodes SET last_seen_at = ?, agent_version = CASE WHEN ? = '' THEN agent_version ELSE ? END
		WHERE id = ? AND (last_seen_at <= ? OR (? <> '' AND agent_version <> ?))`),
		toNanos(t), version, version, nodeID, toNanos(t.Add(-NodeContactInterval)), version, version)
	if err != nil {
		return fmt.Errorf("record contact of node %q: %w", nodeID, err)
	}
	return nil
}

// CleanAgentVersion keeps the printable ASCII characters of v other than
// space, at most MaxAgentVersionLen of them.
func CleanAgentVersion(v string) string {
	out := make([]byte, 0, min(len(v), MaxAgentVersionLen))
	for i := 0; i < len(v) && len(out) < MaxAgentVersionLen; i++ {
		if c := v[i]; c > 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
