#!/usr/bin/env bash
# Runs a sparkd daemon as a background process, like Spark's sbin/spark-daemon.sh.
#
# Environment:
#   SPARK_CONF_DIR       configuration directory (default ${SPARK_HOME}/conf)
#   SPARK_LOG_DIR        where log files go (default ${SPARK_HOME}/logs)
#   SPARK_LOG_MAX_FILES  rotated logs to keep (default 5)
#   SPARK_PID_DIR        where pid files go (default /tmp)
#   SPARK_IDENT_STRING   identity in file names (default $USER)
#   SPARK_NICENESS       scheduling priority (default 0)
#   SPARK_NO_DAEMONIZE   run in the foreground, logging to stdout (containers)
#   SPARK_STOP_TIMEOUT   seconds stop waits before SIGKILL (default 30)
#   SPARK_DECOMMISSION_ACK_TIMEOUT  seconds decommission waits for the worker's
#                        answer in its log (default 10)
#
# decommission exits 0 when the worker decommissions (or has exited), 3 when
# it refuses because spark.decommission.enabled=false, 1 on no answer.
#
# Unlike Spark's script: stop waits for the process and escalates to SIGKILL;
# a pid file is trusted only if its process really is this sparkd daemon, so a
# recycled pid is never signalled; start refuses a daemon already running.
set -euo pipefail

usage="Usage: daemon.sh [--config <conf-dir>] (start|stop|status|decommission) <master|worker> <instance-number> [args...]"

# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
spark_parse_config "$@"
shift "$SPARK_CONFIG_SHIFT"

if [[ $# -lt 3 ]]; then
	echo "$usage" >&2
	exit 1
fi
option=$1
role=$2
instance=$3
shift 3
case "$role" in
master | worker) ;;
*)
	echo "daemon.sh: unknown daemon '$role': want master or worker" >&2
	echo "$usage" >&2
	exit 1
	;;
esac
if ! [[ "$instance" =~ ^[0-9]+$ ]]; then
	echo "daemon.sh: instance must be a number, got '$instance'" >&2
	exit 1
fi

spark_load_env

SPARK_IDENT_STRING="${SPARK_IDENT_STRING:-${USER:-$(id -un)}}"
SPARK_LOG_DIR="${SPARK_LOG_DIR:-${SPARK_HOME}/logs}"
SPARK_PID_DIR="${SPARK_PID_DIR:-/tmp}"
SPARK_NICENESS="${SPARK_NICENESS:-0}"
SPARK_STOP_TIMEOUT="${SPARK_STOP_TIMEOUT:-30}"
host="${HOSTNAME:-$(hostname)}"
name="sparkd ${role}"
log="${SPARK_LOG_DIR}/spark-${SPARK_IDENT_STRING}-${role}-${instance}-${host}.out"
pid="${SPARK_PID_DIR}/spark-${SPARK_IDENT_STRING}-${role}-${instance}.pid"

# rotate_log keeps SPARK_LOG_MAX_FILES old copies: log -> log.1 -> log.2 ...
rotate_log() {
	local f=$1 num=${SPARK_LOG_MAX_FILES:-5}
	if ! [[ "$num" =~ ^[1-9][0-9]*$ ]]; then
		echo "daemon.sh: SPARK_LOG_MAX_FILES must be a positive integer, got '$num'" >&2
		exit 1
	fi
	[[ -f "$f" ]] || return 0
	local prev
	while [[ $num -gt 1 ]]; do
		prev=$((num - 1))
		[[ -f "$f.$prev" ]] && mv -f "$f.$prev" "$f.$num"
		num=$prev
	done
	mv -f "$f" "$f.1"
}

# is_ours PID: the process exists and is this sparkd daemon (binary named
# sparkd, first argument the role), so a recycled pid is never signalled.
is_ours() {
	local p=$1 args
	[[ "$p" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$p" 2>/dev/null || [[ -d "/proc/$p" ]] || return 1
	if [[ -r "/proc/$p/cmdline" ]]; then
		mapfile -d '' -t args <"/proc/$p/cmdline" || return 1
	else
		read -r -a args <<<"$(ps -p "$p" -o args= 2>/dev/null)" || return 1
	fi
	[[ ${#args[@]} -ge 2 && "$(basename -- "${args[0]}")" == "sparkd" && "${args[1]}" == "$role" ]]
}

running_pid() {
	[[ -f "$pid" ]] || return 1
	local p
	p=$(tr -d '[:space:]' <"$pid")
	is_ours "$p" || return 1
	echo "$p"
}

case $option in
start)
	if p=$(running_pid); then
		echo "$name running as process $p.  Stop it first."
		exit 1
	fi
	if [[ ! -x "$SPARKD_BIN" ]]; then
		echo "daemon.sh: $SPARKD_BIN not found or not executable (run 'make build')" >&2
		exit 1
	fi
	if [[ -n "${SPARK_NO_DAEMONIZE:-}" ]]; then
		echo "running $name in the foreground (SPARK_NO_DAEMONIZE)"
		exec nice -n "$SPARK_NICENESS" "$SPARKD_BIN" "$role" "$@"
	fi
	mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR"
	# Rotate the previous run's log first: touching first would make the
	# very first start rotate the empty log it had just created.
	if ! { [[ -w "$SPARK_LOG_DIR" ]] && rotate_log "$log" && touch "$log"; } 2>/dev/null; then
		echo "daemon.sh: cannot write log directory $SPARK_LOG_DIR" >&2
		exit 1
	fi
	echo "starting $name, logging to $log"
	nohup nice -n "$SPARK_NICENESS" "$SPARKD_BIN" "$role" "$@" >>"$log" 2>&1 </dev/null &
	newpid=$!
	echo "$newpid" >"$pid"
	# A daemon that dies in its first seconds (bad config, port in use) is
	# reported here, not discovered later.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		sleep 0.2
		kill -0 "$newpid" 2>/dev/null || break
	done
	if ! kill -0 "$newpid" 2>/dev/null; then
		wait "$newpid" 2>/dev/null || true
		rm -f "$pid"
		echo "failed to launch: $name $*"
		tail -n 10 "$log" | sed 's/^/  /'
		echo "full log in $log"
		exit 1
	fi
	;;

stop)
	if p=$(running_pid); then
		echo "stopping $name"
		kill -TERM "$p" 2>/dev/null || true
		deadline=$((SECONDS + SPARK_STOP_TIMEOUT))
		while is_ours "$p" && [[ $SECONDS -lt $deadline ]]; do
			sleep 0.1
		done
		if is_ours "$p"; then
			echo "$name did not stop after ${SPARK_STOP_TIMEOUT}s; sending SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
			while is_ours "$p"; do sleep 0.1; done
		fi
		rm -f "$pid"
	else
		[[ -f "$pid" ]] && rm -f "$pid"
		echo "no $name to stop"
	fi
	;;

decommission)
	if ! p=$(running_pid); then
		echo "no $name to decommission"
		exit 0
	fi
	echo "decommissioning $name"
	if [[ "$role" != worker ]]; then
		kill -s PWR "$p"
		exit 0
	fi
	# The worker answers in its log: it decommissions (and exits once its
	# executors and drivers are done), or, with spark.decommission.enabled=false,
	# ignores the signal and keeps running; say which, with the exit status.
	offset=$(wc -c <"$log" 2>/dev/null || echo 0)
	kill -s PWR "$p"
	ack_timeout="${SPARK_DECOMMISSION_ACK_TIMEOUT:-10}"
	deadline=$((SECONDS + ack_timeout))
	while :; do
		answer=$(tail -c +"$((offset + 1))" "$log" 2>/dev/null || true)
		case "$answer" in
		*"decommission is disabled"*)
			echo "$name (process $p) ignored the request: decommissioning is disabled (spark.decommission.enabled=false); it keeps running" >&2
			exit 3
			;;
		*"Decommissioning this worker"* | *"already started decommissioning"*)
			echo "$name (process $p) is decommissioning: it exits once its executors and drivers have finished"
			exit 0
			;;
		esac
		if ! is_ours "$p"; then
			echo "$name (process $p) has exited"
			exit 0
		fi
		if [[ $SECONDS -ge $deadline ]]; then
			echo "$name (process $p) did not answer the decommission request within ${ack_timeout}s; see $log" >&2
			exit 1
		fi
		sleep 0.1
	done
	;;

status)
	if running_pid >/dev/null; then
		echo "$name is running."
		exit 0
	elif [[ -f "$pid" ]]; then
		echo "$pid file is present but $name not running"
		exit 1
	else
		echo "$name not running."
		exit 2
	fi
	;;

*)
	echo "$usage" >&2
	exit 1
	;;
esac
