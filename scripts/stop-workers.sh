#!/usr/bin/env bash
# Stops the workers on every host in conf/workers, over ssh.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"
spark_load_env
exec "${SPARK_HOME}/scripts/workers.sh" cd "$SPARK_HOME" \; \
	env SPARK_CONF_DIR="$SPARK_CONF_DIR" "${SPARK_HOME}/scripts/stop-worker.sh"
