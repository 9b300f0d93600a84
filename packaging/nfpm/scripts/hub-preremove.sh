#!/bin/sh
# pullgate-hub preremove. deb: $1=remove|upgrade|deconfigure|failed-upgrade;
# rpm: $1=0 on erase, 1 on upgrade.
set -e
case "$1" in
	remove | 0)
		if [ -d /run/systemd/system ]; then
			systemctl disable --now pullgate-hub.service >/dev/null 2>&1 || true
		fi
		;;
esac
exit 0
