// Package revsim is a seeded simulation of revocation under faults: random
// schedules of revokes (install, credential, node), agent disconnects and
// reconnects, and hub replica kills, run on the real parts in one process
// (several replicas' proxy, token service and API over one real store, a
// real three-node NATS cluster with the hub's auth callout, two real node
// agents behind relays the test can cut), checking after every step that no
// revoked token is accepted by any replica and that no connected, synced
// agent hands one out. See the package's test file for the schedule, the
// invariant and how to replay a seed.
package revsim
