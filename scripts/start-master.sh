#!/usr/bin/env bash
# Starts a sparkd master on this machine (like Spark's sbin/start-master.sh).
# SPARK_MASTER_HOST (default `hostname -f`), SPARK_MASTER_PORT (7077) and
# SPARK_MASTER_WEBUI_PORT (8080) may be set in conf/spark-env.sh. Extra
# arguments are passed to `sparkd master`.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_load_env

SPARK_MASTER_HOST="${SPARK_MASTER_HOST:-$(hostname -f 2>/dev/null || hostname)}"
SPARK_MASTER_PORT="${SPARK_MASTER_PORT:-7077}"
SPARK_MASTER_WEBUI_PORT="${SPARK_MASTER_WEBUI_PORT:-8080}"

exec "${SPARK_HOME}/scripts/daemon.sh" start master 1 \
	--host "$SPARK_MASTER_HOST" --port "$SPARK_MASTER_PORT" --webui-port "$SPARK_MASTER_WEBUI_PORT" "$@"
