-- How the pull-through cache answered a request: 'hit', 'miss', 'stale'
-- or '' (not cached). Keep in step with sqlite/0008_audit_cache.sql.
ALTER TABLE audit_events ADD COLUMN cache TEXT NOT NULL DEFAULT '';
