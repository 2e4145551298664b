#!/usr/bin/env bash
# Decommissions the sparkd workers on this machine (SIGPWR): they refuse new
# executors, tell the master, and let running work finish.
# --block-until-exit waits until every worker process has exited.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_load_env
block=""
if [[ "${1:-}" == "--block-until-exit" ]]; then
	block=1
fi
instances="${SPARK_WORKER_INSTANCES:-1}"
for ((i = 1; i <= instances; i++)); do
	"${SPARK_HOME}/scripts/daemon.sh" decommission worker "$i"
done
if [[ -n "$block" ]]; then
	for ((i = 1; i <= instances; i++)); do
		while "${SPARK_HOME}/scripts/daemon.sh" status worker "$i" >/dev/null; do
			sleep 1
		done
	done
fi
