package store

import (
	"context"
	"fmt"
	"time"
)

// MaxAgentVersionLen bounds the agent version a node reports; longer ones
// are cut (the node chooses the string, the hub only shows it).
const MaxAgentVersionLen = 64

// NodeContact records that the node's agent was heard from at t, running
// version ("" leaves the stored version as it is: an older agent that does
// not send one on resync). The version is reduced to printable characters
// and cut to MaxAgentVersionLen. An unknown node is not an error here: the
// caller has already decided whether to serve it.
func (s *SQL) NodeContact(ctx context.Context, nodeID, version string, t time.Time) error {
	version = CleanAgentVersion(version)
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE nodes SET last_seen_at = ?, agent_version = CASE WHEN ? = '' THEN agent_version ELSE ? END WHERE id = ?`),
		toNanos(t), version, version, nodeID)
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
