#!/usr/bin/env sh
# Runs the e2e-ha test binary inside the network namespace `unshare --net`
# made for it. The suite adds a veth pair to a second namespace (one
# agent's), and the NATS servers listen on that pair's address: nothing
# reaches or is reachable from the machine's own network.
set -eu
ip link set lo up
export PULLGATE_HA_NETNS=1
export GOPROXY=off # modules come from the cache: the namespace has no network
cd "$(dirname "$0")"
exec "$@"
