#!/bin/bash
# Entrypoint of the sparkd image.
#
#   master [flags]                 sparkd master in the foreground
#   worker [flags] [MASTER_URLS]   sparkd worker; without a spark:// argument it
#                                  uses $SPARK_MASTER (or $SPARK_MASTER_URL)
#   submit|status|version ...      the sparkd client commands
#   (no arguments)                 $SPARK_MODE (master|worker), default master
#   anything else                  run as a command (e.g. bash)
#
# The daemons run directly in the foreground, as Spark's sbin scripts do with
# SPARK_NO_DAEMONIZE set, and log to stdout/stderr for `docker logs`.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	set -- "${SPARK_MODE:-master}"
fi

case $1 in
master)
	shift
	exec sparkd master "$@"
	;;
worker)
	shift
	for a in "$@"; do
		if [[ $a == spark://* ]]; then
			exec sparkd worker "$@"
		fi
	done
	url=${SPARK_MASTER:-${SPARK_MASTER_URL:-}}
	if [[ -z $url ]]; then
		echo "sparkd-entrypoint: worker needs the master URL(s): pass spark://m1:7077,m2:7077 or set SPARK_MASTER" >&2
		exit 2
	fi
	exec sparkd worker "$@" "$url"
	;;
submit | status | version)
	exec sparkd "$@"
	;;
*)
	exec "$@"
	;;
esac
