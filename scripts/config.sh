#!/usr/bin/env bash
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file
# Sourced by every sparkd script: sets SPARK_HOME and SPARK_CONF_DIR and loads
# $SPARK_CONF_DIR/spark-env.sh once (SPARK_ENV_LOADED), as Spark's
# sbin/spark-config.sh and bin/load-spark-env.sh do.

# SPARK_HOME: the directory holding bin/sparkd and scripts/.
if [[ -z "${SPARK_HOME:-}" ]]; then
	SPARK_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
export SPARK_HOME
export SPARK_CONF_DIR="${SPARK_CONF_DIR:-${SPARK_HOME}/conf}"
SPARKD_BIN="${SPARKD_BIN:-${SPARK_HOME}/bin/sparkd}"

# spark_load_env sources spark-env.sh with every assignment exported.
spark_load_env() {
	if [[ -z "${SPARK_ENV_LOADED:-}" ]]; then
		export SPARK_ENV_LOADED=1
		if [[ -f "${SPARK_CONF_DIR}/spark-env.sh" ]]; then
			set -a
			# shellcheck source=/dev/null
			. "${SPARK_CONF_DIR}/spark-env.sh"
			set +a
		fi
	fi
}

# spark_parse_config handles a leading "--config <dir>" in the caller's args;
# the caller shifts by the returned count (SPARK_CONFIG_SHIFT).
spark_parse_config() {
	SPARK_CONFIG_SHIFT=0
	if [[ "${1:-}" == "--config" ]]; then
		if [[ -z "${2:-}" || ! -d "$2" ]]; then
			echo "ERROR: --config needs a directory: ${2:-<none>}" >&2
			exit 1
		fi
		SPARK_CONF_DIR="$(cd "$2" && pwd)"
		export SPARK_CONF_DIR
		SPARK_CONFIG_SHIFT=2
	fi
}

# spark_master_urls prints the comma list of every master: $SPARK_MASTERS,
# else spark.master from spark-defaults.conf, else SPARK_MASTER_HOST:PORT.
spark_master_urls() {
	local urls="${SPARK_MASTERS:-}"
	if [[ -z "$urls" && -f "${SPARK_CONF_DIR}/spark-defaults.conf" ]]; then
		urls="$(sed -n -E 's/^[[:space:]]*spark\.master[[:space:]]*[=:[:space:]][[:space:]]*//p' \
			"${SPARK_CONF_DIR}/spark-defaults.conf" | tail -n 1 | tr -d '[:space:]')"
	fi
	if [[ -z "$urls" ]]; then
		local host="${SPARK_MASTER_HOST:-$(hostname -f 2>/dev/null || hostname)}"
		urls="spark://${host}:${SPARK_MASTER_PORT:-7077}"
	fi
	case "$urls" in
	spark://*) ;;
	*) urls="spark://${urls}" ;;
	esac
	echo "$urls"
}
