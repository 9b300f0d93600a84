// Package ha is the end-to-end suite of the production topology under
// faults: three `pullgate-hub serve` replicas on one PostgreSQL, a
// three-node NATS cluster (TLS for clients), a real upstream registry
// with htpasswd auth and two node agents, one of them in a network
// namespace of its own so that it can be cut off from NATS alone. Faults
// are real: processes killed (SIGKILL), PostgreSQL and NATS nodes stopped,
// the agent's NATS traffic rejected in its namespace. Run it with
// `make e2e-ha` (build tag e2e_ha, as root, inside `unshare --net`
// through netns.sh).
package ha
