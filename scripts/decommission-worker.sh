#!/usr/bin/env bash
# Decommissions the sparkd workers on this machine (SIGPWR): they refuse new
# executors, tell the master, let running work finish, and then exit.
# --block-until-exit waits until every decommissioned worker has exited.
# Exit status: 0 when every worker decommissioned (and, with
# --block-until-exit, exited); 3 when a worker refused because
# spark.decommission.enabled=false (it keeps running, so this does not wait
# for it); 1 on any other failure.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_load_env
block=""
if [[ "${1:-}" == "--block-until-exit" ]]; then
	block=1
fi
instances="${SPARK_WORKER_INSTANCES:-1}"
status=0
accepted=()
for ((i = 1; i <= instances; i++)); do
	rc=0
	"${SPARK_HOME}/scripts/daemon.sh" decommission worker "$i" || rc=$?
	if [[ $rc -eq 0 ]]; then
		accepted+=("$i")
	elif [[ $status -eq 0 || $rc -eq 3 ]]; then
		status=$rc
	fi
done
if [[ -n "$block" ]]; then
	for i in ${accepted[@]+"${accepted[@]}"}; do
		while "${SPARK_HOME}/scripts/daemon.sh" status worker "$i" >/dev/null; do
			sleep 0.2
		done
		echo "sparkd worker $i has exited"
	done
fi
if [[ $status -ne 0 ]]; then
	echo "decommission-worker.sh: not every worker was decommissioned (status $status)" >&2
fi
exit "$status"
