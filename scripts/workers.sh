#!/usr/bin/env bash
# Runs a shell command on every worker host (like Spark's sbin/workers.sh).
# Usage: workers.sh [--config <conf-dir>] command...
#
# Hosts: $SPARK_WORKERS (a file of hosts, or the hosts themselves separated by
# spaces or commas), else ${SPARK_CONF_DIR}/workers, else localhost. Comments
# (#) and blank lines are ignored.
#   SPARK_SSH_OPTS         ssh options (default -o StrictHostKeyChecking=no)
#   SPARK_SSH_PARALLELISM  hosts at a time (default 10)
#   SPARK_SSH_FOREGROUND   one host at a time (for password prompts)
#   SPARK_WORKER_SLEEP     seconds to pause between hosts
# Each output line is prefixed with its host. The exit status is non-zero if
# the command failed on any host, and the failed hosts are listed.
set -euo pipefail

usage="Usage: workers.sh [--config <conf-dir>] command..."
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"
if [[ $# -eq 0 ]]; then
	echo "$usage" >&2
	exit 1
fi
spark_load_env

if [[ -n "${SPARK_SLAVES:-}" && -z "${SPARK_WORKERS:-}" ]]; then
	echo "SPARK_SLAVES is deprecated, use SPARK_WORKERS" >&2
	SPARK_WORKERS=$SPARK_SLAVES
fi
if [[ -n "${SPARK_WORKERS:-}" ]]; then
	if [[ -f "$SPARK_WORKERS" ]]; then
		hostlist=$(cat "$SPARK_WORKERS")
	else
		hostlist=$(tr ', ' '\n' <<<"$SPARK_WORKERS")
	fi
elif [[ -f "${SPARK_CONF_DIR}/workers" ]]; then
	hostlist=$(cat "${SPARK_CONF_DIR}/workers")
else
	hostlist=localhost
fi
mapfile -t hosts < <(sed -e 's/#.*$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$hostlist" | grep -v '^$' || true)
if [[ ${#hosts[@]} -eq 0 ]]; then
	echo "workers.sh: no worker hosts listed" >&2
	exit 1
fi

read -r -a ssh_opts <<<"${SPARK_SSH_OPTS:--o StrictHostKeyChecking=no}"
parallelism="${SPARK_SSH_PARALLELISM:-10}"
if ! [[ "$parallelism" =~ ^[1-9][0-9]*$ ]]; then
	echo "workers.sh: SPARK_SSH_PARALLELISM must be a positive integer, got '$parallelism'" >&2
	exit 1
fi
[[ -n "${SPARK_SSH_FOREGROUND:-}" ]] && parallelism=1

# The remote command: arguments quoted so they survive the remote shell.
remote=""
for a in "$@"; do
	if [[ "$a" == ";" ]]; then
		remote+="; "
	else
		remote+="$(printf '%q' "$a") "
	fi
done

statusdir=$(mktemp -d)
trap 'rm -rf "$statusdir"' EXIT

run_host() {
	local h=$1 rc=0
	# The command is quoted above on purpose: it is expanded remotely.
	# shellcheck disable=SC2029
	if ssh "${ssh_opts[@]}" "$h" "$remote" </dev/null 2>&1 | sed -u "s/^/$h: /"; then
		rc=0
	else
		rc=$? # pipefail: ssh's status, or sed's
	fi
	echo "$rc" >"$statusdir/$h"
}

running=0
for h in "${hosts[@]}"; do
	if [[ $parallelism -eq 1 ]]; then
		run_host "$h"
	else
		run_host "$h" &
		running=$((running + 1))
		if [[ $running -ge $parallelism ]]; then
			wait -n || true
			running=$((running - 1))
		fi
	fi
	if [[ -n "${SPARK_WORKER_SLEEP:-}" ]]; then
		sleep "$SPARK_WORKER_SLEEP"
	fi
done
wait

failed=()
for h in "${hosts[@]}"; do
	rc=$(cat "$statusdir/$h" 2>/dev/null || echo 255)
	[[ "$rc" == 0 ]] || failed+=("$h (exit $rc)")
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "workers.sh: failed on ${#failed[@]} of ${#hosts[@]} hosts: ${failed[*]}" >&2
	exit 1
fi
