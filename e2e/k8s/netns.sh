#!/usr/bin/env sh
# Runs the e2e-k8s test binary inside the network namespace `unshare --net`
# made for it: the cluster's pods use the host network, and the kubelet
# wants a node address that is not loopback, so the namespace's lo also
# carries NODE_IP. Every server of the suite (API server, hub, agent,
# registries) listens there only; nothing reaches or is reachable from the
# machine's own network, and the fixed ports of the chart's pods (5080,
# 4222, 9464, 9465) never clash with anything outside.
set -eu
NODE_IP=${NODE_IP:-10.250.0.1}
ip link set lo up
ip addr add "$NODE_IP/32" dev lo
export PULLGATE_K8S_NODE_IP="$NODE_IP"
export GOPROXY=off # modules come from the cache: the namespace has no network
cd "$(dirname "$0")"
exec "$@"
