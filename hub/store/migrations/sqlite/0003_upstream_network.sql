-- Upstream network policy per credential (issue 8, findings 2 and 15).
-- Keep in step with postgres/0003_upstream_network.sql.
--
-- allow_private_network: the operator allowed this credential's upstream to
-- resolve to a loopback, private or otherwise special-purpose address.
-- realm_hosts: extra token-realm hosts the operator trusts for it,
-- comma-separated.

ALTER TABLE credentials ADD COLUMN allow_private_network BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE credentials ADD COLUMN realm_hosts TEXT NOT NULL DEFAULT '';
