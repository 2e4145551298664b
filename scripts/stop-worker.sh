#!/usr/bin/env bash
# Stops every sparkd worker instance on this machine (SPARK_WORKER_INSTANCES).
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_load_env
instances="${SPARK_WORKER_INSTANCES:-1}"
status=0
for ((i = 1; i <= instances; i++)); do
	"${SPARK_HOME}/scripts/daemon.sh" stop worker "$i" || status=1
done
exit "$status"
