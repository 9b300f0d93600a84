-- Refused pulls in the audit trail, and audit retention. Keep in step with
-- sqlite/0005_audit_refusals.sql.

-- Why a request was refused ('' for one the hub served); how many requests
-- an aggregated refusal stands for.
ALTER TABLE audit_events ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN event_count BIGINT NOT NULL DEFAULT 1;
