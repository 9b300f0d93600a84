#!/bin/sh
# pullgate-hub postinstall. deb: $1=configure, $2=the old version on upgrade;
# rpm: $1=1 on install, 2 on upgrade.
set -e

fresh=
case "$1" in
	configure) [ -z "$2" ] && fresh=1 ;;
	1) fresh=1 ;;
esac

if ! getent passwd pullgate >/dev/null 2>&1; then
	getent group pullgate >/dev/null 2>&1 || groupadd --system pullgate
	useradd --system --gid pullgate --no-create-home --home-dir /var/lib/pullgate \
		--shell /usr/sbin/nologin --comment "pullgate hub" pullgate
fi
# The data dir: database, master key, admin token, NATS keys and store.
install -d -o pullgate -g pullgate -m 0700 /var/lib/pullgate

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ -n "$fresh" ]; then
		systemctl enable --now pullgate-hub.service >/dev/null 2>&1 || true
	else
		systemctl try-restart pullgate-hub.service >/dev/null 2>&1 || true
	fi
fi

if [ -n "$fresh" ]; then
	cat <<'MSG'
pullgate-hub: listening on 127.0.0.1:5080 (set PULLGATE_HUB_ARGS in
/etc/default/pullgate-hub, then: systemctl restart pullgate-hub).
Operator CLI as root:  pullgate-hub --token-file /var/lib/pullgate/admin.token workspace list
Back up /var/lib/pullgate/master.key: stored secrets cannot be read without it.
MSG
fi
exit 0
