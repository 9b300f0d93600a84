-- What the hub last heard from a node: the agent's version (sent on
-- enrolment and on every resync; '' from agents that do not send it) and
-- when. Keep in step with postgres/0009_node_contact.sql.
ALTER TABLE nodes ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
