#!/bin/sh
# pullgate-agent postinstall. deb: $1=configure, $2=the old version on
# upgrade; rpm: $1=1 on install, 2 on upgrade.
set -e

fresh=
case "$1" in
	configure) [ -z "$2" ] && fresh=1 ;;
	1) fresh=1 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# Not started on a fresh install: it needs the hub's URL and a join token.
	[ -n "$fresh" ] || systemctl try-restart pullgate-agent.service >/dev/null 2>&1 || true
fi

if [ -n "$fresh" ]; then
	cat <<'MSG'
pullgate-agent: configure, then start it:
  1. set PULLGATE_NATS_URL in /etc/default/pullgate-agent
  2. install -m 0600 /dev/stdin /etc/pullgate/join-token    # paste the cluster's join token
  3. systemctl enable --now pullgate-agent
  4. kubelet: set matchImages in /etc/pullgate/kubelet-credential-provider.yaml and start
     the kubelet with
       --image-credential-provider-config=/etc/pullgate/kubelet-credential-provider.yaml
       --image-credential-provider-bin-dir=/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec
MSG
fi
exit 0
