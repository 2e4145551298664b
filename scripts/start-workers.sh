#!/usr/bin/env bash
# Starts a worker on every host in conf/workers, over ssh, pointed at ALL
# masters: $SPARK_MASTERS, else spark.master in spark-defaults.conf, else
# spark://$SPARK_MASTER_HOST:$SPARK_MASTER_PORT. (Spark's own script knows
# only one master.)
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"
spark_load_env
masters=$(spark_master_urls)
echo "starting workers for $masters"
exec "${SPARK_HOME}/scripts/workers.sh" cd "$SPARK_HOME" \; \
	env SPARK_CONF_DIR="$SPARK_CONF_DIR" "${SPARK_HOME}/scripts/start-worker.sh" "$masters" "$@"
