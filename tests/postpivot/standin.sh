#!/bin/sh
# Recording stand-in for the host tools post-pivot drives that cannot run on
# the build machine (PID 1 is not systemd, no NetworkManager, no recert
# image): it appends its name and arguments to $STANDIN_LOG and imitates
# the one effect later steps look at. The vm-tests scenario runs the real
# tools.
name=$(basename "$0")
printf '%s\n' "$name $*" >>"$STANDIN_LOG"
case "$name" in
hostnamectl)
	[ "$1" = set-hostname ] && printf '%s\n' "$2" >"$STANDIN_ROOT/etc/hostname"
	;;
systemctl)
	if [ -n "$STANDIN_KILL_ON" ] && [ "$name $*" = "$STANDIN_KILL_ON" ]; then
		# SIGKILL to sprout, as a power cut would do it mid-step.
		kill -9 "$PPID"
		exit 1
	fi
	if [ "$*" = "start nodeip-configuration" ] && [ -n "$STANDIN_NODEIP" ]; then
		# What nodeip-configuration.service leaves for kubelet.
		mkdir -p "$STANDIN_ROOT/run/nodeip-configuration" "$STANDIN_ROOT/etc/systemd/system/kubelet.service.d"
		printf '%s' "$STANDIN_NODEIP" >"$STANDIN_ROOT/run/nodeip-configuration/primary-ip"
		printf '[Service]\nEnvironment="KUBELET_NODE_IP=%s" "KUBELET_NODE_IPS=%s"\n' "$STANDIN_NODEIP" "$STANDIN_NODEIP" \
			>"$STANDIN_ROOT/etc/systemd/system/kubelet.service.d/20-nodenet.conf"
	fi
	;;
podman)
	case "$1" in
	run)
		# recert: its configuration must be there and valid JSON, the
		# temporary etcd must answer; then it writes what recert writes.
		cfg="$STANDIN_ROOT/opt/openshift/recert_config.json"
		[ "$(head -c1 "$cfg")" = '{' ] || exit 1
		etcdctl --endpoints "$STANDIN_ETCD" put /recert-standin/ran yes >/dev/null || exit 1
		if [ -n "$STANDIN_RECERT_HOLD" ]; then
			# A recert that takes its time: its pid (this process, after
			# exec) is the sign it runs; `podman stop recert` ends it.
			printf '%s' "$$" >"$STANDIN_RECERT_HOLD.tmp"
			mv "$STANDIN_RECERT_HOLD.tmp" "$STANDIN_RECERT_HOLD"
			exec sleep 120
		fi
		if [ -n "$STANDIN_RECERT_FAILS" ]; then
			printf 'error: %s\n' "$STANDIN_RECERT_FAILS" >"$STANDIN_ROOT/var/tmp/recert-summary.yaml"
			exit 1
		fi
		printf 'server 192.0.2.1 iburst\n' >"$STANDIN_ROOT/etc/chrony.conf"
		printf 'recert: stand-in\n' >"$STANDIN_ROOT/var/tmp/recert-summary.yaml"
		;;
	stop)
		for last; do :; done
		if [ "$last" = recert ] && [ -n "$STANDIN_RECERT_HOLD" ] && [ -f "$STANDIN_RECERT_HOLD" ]; then
			kill "$(cat "$STANDIN_RECERT_HOLD")"
		fi
		;;
	esac
	;;
esac
exit 0
