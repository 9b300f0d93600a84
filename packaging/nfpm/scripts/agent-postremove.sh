#!/bin/sh
# pullgate-agent postremove. deb: $1=remove|purge|upgrade|...; rpm: $1=0 on
# erase, 1 on upgrade.
#
# purge also deletes the node's identity (/var/lib/pullgate-agent; the hub
# can revoke it, and a reinstall enrols again with a join token) and the
# join token file /etc/pullgate/join-token.
set -e
case "$1" in
	purge)
		rm -rf /var/lib/pullgate-agent
		rm -f /etc/pullgate/join-token
		rmdir /etc/pullgate 2>/dev/null || true
		;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
