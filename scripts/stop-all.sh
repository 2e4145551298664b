#!/usr/bin/env bash
# Stops the workers of conf/workers, then the master on this machine. Every
# stop waits for its process to exit (escalating to SIGKILL after
# SPARK_STOP_TIMEOUT). --wait is accepted for Spark compatibility: stopping
# already waits.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"
case "${1:-}" in
"" | --wait) ;;
*)
	echo "Usage: stop-all.sh [--config <conf-dir>] [--wait]" >&2
	exit 1
	;;
esac
status=0
"${SPARK_HOME}/scripts/stop-workers.sh" || status=1
"${SPARK_HOME}/scripts/stop-master.sh" || status=1
exit "$status"
