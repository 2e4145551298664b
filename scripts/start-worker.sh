#!/usr/bin/env bash
# Starts sparkd worker instance(s) on this machine (like Spark's
# sbin/start-worker.sh). Usage: start-worker.sh <spark://m1:7077,m2:7077> [args]
#
# SPARK_WORKER_INSTANCES (default 1) workers are started; instance i gets web
# UI port SPARK_WORKER_WEBUI_PORT+i-1 (default base 8081) and, when
# SPARK_WORKER_PORT is set, port SPARK_WORKER_PORT+i-1 (otherwise random).
# SPARK_WORKER_CORES, SPARK_WORKER_MEMORY and SPARK_WORKER_DIR are read by the
# worker itself.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"

if [[ $# -lt 1 || "$1" == -* ]]; then
	echo "Usage: start-worker.sh <master-urls> [options]" >&2
	echo "  e.g. start-worker.sh spark://m1:7077,m2:7077" >&2
	exit 1
fi
master=$1
shift
spark_load_env

instances="${SPARK_WORKER_INSTANCES:-1}"
webui="${SPARK_WORKER_WEBUI_PORT:-8081}"
for v in instances webui; do
	if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then
		echo "start-worker.sh: $v must be a number, got '${!v}'" >&2
		exit 1
	fi
done
host_args=()
if [[ -n "${SPARK_WORKER_HOST:-}" ]]; then
	host_args=(--host "$SPARK_WORKER_HOST")
fi

# instance_cmd I: sets cmd to the daemon.sh command line for instance I.
instance_cmd() {
	local i=$1
	cmd=("${SPARK_HOME}/scripts/daemon.sh" start worker "$i" --webui-port $((webui + i - 1)))
	if [[ -n "${SPARK_WORKER_PORT:-}" ]]; then
		cmd+=(--port $((SPARK_WORKER_PORT + i - 1)))
	fi
	cmd+=("${host_args[@]}" "$master")
}

if [[ -n "${SPARK_NO_DAEMONIZE:-}" && $instances -gt 1 ]]; then
	echo "start-worker.sh: SPARK_NO_DAEMONIZE runs one worker in the foreground, but SPARK_WORKER_INSTANCES=$instances" >&2
	exit 1
fi
cmd=()
if [[ $instances -eq 1 ]]; then
	# exec: in a container this script may be PID 1, and SIGTERM must reach
	# the worker (daemon.sh in turn execs it under SPARK_NO_DAEMONIZE).
	instance_cmd 1
	exec "${cmd[@]}" "$@"
fi
status=0
for ((i = 1; i <= instances; i++)); do
	instance_cmd "$i"
	"${cmd[@]}" "$@" || status=1
done
exit "$status"
