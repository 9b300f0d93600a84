#!/bin/sh
# pullgate-hub postremove. deb: $1=remove|purge|upgrade|...; rpm: $1=0 on
# erase, 1 on upgrade.
#
# The data dir /var/lib/pullgate holds the database and the master key: it
# is removed only when empty (purge, or rpm erase). The pullgate system user
# stays (files may still be owned by it).
set -e
case "$1" in
	purge | 0)
		if [ -d /var/lib/pullgate ] && ! rmdir /var/lib/pullgate 2>/dev/null; then
			echo "pullgate-hub: kept /var/lib/pullgate (database, master key); delete it yourself when no longer needed" >&2
		fi
		;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
