#!/usr/bin/env bash
# Starts the master on this machine, then the workers of conf/workers.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"
"${SPARK_HOME}/scripts/start-master.sh"
"${SPARK_HOME}/scripts/start-workers.sh"
