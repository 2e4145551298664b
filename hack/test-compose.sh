#!/usr/bin/env bash
# The docker-compose failover drill (make test-compose):
#
#   1. build the images (hack/compose-images.sh; SKIP_IMAGES=1 skips it) and
#      bring up 3 ZooKeeper servers, 2 masters and $WORKERS workers under a
#      unique compose project name, every host port picked by Docker;
#   2. wait for exactly one ALIVE master (and the other STANDBY) and all workers;
#   3. submit an --exec application (sparkd submit in a one-off container) whose
#      executors run for $APP_SECONDS seconds, and wait until they run;
#   4. `docker kill` the leader's container: the other master must become ALIVE,
#      every worker must re-register with it and the application must complete
#      (submit exits 0);
#   5. `docker start` the old master: it must come back STANDBY;
#   6. `docker stop` the leader (graceful): the standby must take over in about
#      a second (the figure is printed; HANDOFF_MAX bounds it, default 5 s,
#      generous for a loaded machine).
#
# Masters are watched through their /json (curl on the published ports, or
# `docker exec ... sparkd-healthcheck --get /json` with DRILL_VIA_EXEC=1).
# Knobs: WORKERS (3), APP_SECONDS (40), HANDOFF_MAX (5), UP_TIMEOUT (180),
# FAILOVER_TIMEOUT (60), SKIP_IMAGES=1, DRILL_PROJECT (default sparkddrill<pid>).
#
# It always tears down (containers, volumes, networks), also on failure or
# Ctrl-C, and on failure prints the tail of each service's log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORKERS=${WORKERS:-3}
APP_SECONDS=${APP_SECONDS:-40}
HANDOFF_MAX=${HANDOFF_MAX:-5}
UP_TIMEOUT=${UP_TIMEOUT:-180}
FAILOVER_TIMEOUT=${FAILOVER_TIMEOUT:-60}
# Its own project name (never $COMPOSE_PROJECT_NAME: the drill tears down
# everything in its project, and must not touch a user's ensemble).
PROJECT=${DRILL_PROJECT:-sparkddrill$$}
export COMPOSE_PROJECT_NAME=$PROJECT
# Docker picks every host port, so the drill never collides with anything.
export SPARKD_ZK1_PORT=0 SPARKD_ZK2_PORT=0 SPARKD_ZK3_PORT=0 \
	SPARKD_MASTER1_PORT=0 SPARKD_MASTER1_WEBUI_PORT=0 SPARKD_MASTER1_REST_PORT=0 \
	SPARKD_MASTER2_PORT=0 SPARKD_MASTER2_WEBUI_PORT=0 SPARKD_MASTER2_REST_PORT=0

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic and comparisons (1 = true).
calc() { awk "BEGIN { printf \"%.3f\", ($*) }"; }
T0=$(now)
ts() { printf '%6.1fs' "$(calc "$(now) - $T0")"; }
say() { printf '\033[1m[drill %s]\033[0m %s\n' "$(ts)" "$*"; }
ok() { printf '\033[1;32m[drill %s] ok:\033[0m %s\n' "$(ts)" "$*"; }
fail() {
	printf '\033[1;31m[drill %s] FAIL:\033[0m %s\n' "$(ts)" "$*" >&2
	exit 1
}

command -v docker >/dev/null 2>&1 || fail "docker not found"
command -v python3 >/dev/null 2>&1 || fail "python3 not found (used to read /json)"
if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
else
	fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
compose() { "${COMPOSE[@]}" "$@"; }

TMP=$(mktemp -d)
SUBMIT_PID=""
STARTED=0
cleanup() {
	local rc=$?
	set +e
	if [[ -n $SUBMIT_PID ]] && kill -0 "$SUBMIT_PID" 2>/dev/null; then
		kill "$SUBMIT_PID" 2>/dev/null
		wait "$SUBMIT_PID" 2>/dev/null
	fi
	if [[ $rc -ne 0 && $STARTED == 1 ]]; then
		echo "----- submit output -----" >&2
		tail -n 40 "$TMP/submit.log" >&2 2>/dev/null
		for s in master1 master2 worker zk1; do
			echo "----- last log lines of $s -----" >&2
			compose logs --no-color --tail=200 "$s" 2>/dev/null | grep -v 'Processing srvr command' | tail -n 25 >&2
		done
	fi
	say "tearing down project $PROJECT (containers, volumes, networks)"
	compose down -v --remove-orphans -t 3 >/dev/null 2>&1
	rm -rf "$TMP"
	if [[ $rc -eq 0 ]]; then
		ok "drill passed"
	else
		printf '\033[1;31m[drill] FAILED (exit %d)\033[0m\n' "$rc" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ---------------------------------------------------------------

# cid SERVICE: the container id of a master (recorded once it is up, so it
# stays known while the container is stopped).
declare -A CIDS
cid() {
	if [[ -z ${CIDS[$1]:-} ]]; then
		CIDS[$1]=$(compose ps -q "$1" | head -n1)
	fi
	echo "${CIDS[$1]}"
}

# UI port of each master inside its container.
uiport() { case $1 in master1) echo 8080 ;; master2) echo 8090 ;; esac; }

# How to read a master's /json: from the host through its published port with
# curl (fast), or through docker exec (no curl, or a remote DOCKER_HOST).
VIA_EXEC=${DRILL_VIA_EXEC:-0}
if ! command -v curl >/dev/null 2>&1 || [[ ${DOCKER_HOST:-unix://} != unix://* ]]; then
	VIA_EXEC=1
fi

# json SERVICE: the master's /json on stdout; non-zero if it does not answer.
json() {
	local c port hp
	c=$(cid "$1") || return 1
	[[ -n $c ]] || return 1
	port=$(uiport "$1")
	if [[ $VIA_EXEC != 1 ]]; then
		hp=$(docker port "$c" "$port/tcp" 2>/dev/null | sed -n 's/^0\.0\.0\.0:\([0-9]*\)$/\1/p' | head -n1)
		if [[ -n $hp ]]; then
			curl -fsS --max-time 2 "http://127.0.0.1:$hp/json" 2>/dev/null
			return
		fi
	fi
	docker exec "$c" sparkd-healthcheck --get /json "$port" 2>/dev/null
}

# field SERVICE EXPR: a Python expression over the master's /json (as d);
# prints DOWN if the master does not answer.
field() {
	local out
	if ! out=$(json "$1"); then
		echo DOWN
		return
	fi
	python3 -c 'import json,sys
try:
    d = json.loads(sys.argv[2])
except Exception:
    print("DOWN"); sys.exit()
print(eval(sys.argv[1]))' "$2" "$out"
}

state() { field "$1" 'd.get("status", "?")'; }
other() { [[ $1 == master1 ]] && echo master2 || echo master1; }

# wait_for DESCRIPTION TIMEOUT COMMAND...: poll COMMAND every $POLL seconds
# until it succeeds, or fail after TIMEOUT seconds.
POLL=0.5
wait_for() {
	local what=$1 timeout=$2
	shift 2
	local deadline
	deadline=$(calc "$(now) + $timeout")
	until "$@"; do
		if [[ $(calc "$(now) > $deadline") != 0.000 ]]; then
			fail "timed out after ${timeout}s waiting for: $what"
		fi
		sleep "$POLL"
	done
}

one_alive() {
	local a b
	a=$(state master1)
	b=$(state master2)
	if [[ $a == ALIVE && $b == STANDBY ]]; then
		LEADER=master1
	elif [[ $b == ALIVE && $a == STANDBY ]]; then
		LEADER=master2
	else
		return 1
	fi
}

is_state() { [[ $(state "$1") == "$2" ]]; }

# workers_on SERVICE: all $WORKERS workers ALIVE on that master.
workers_on() {
	[[ $(field "$1" 'sum(1 for w in d.get("workers", []) if w.get("state") == "ALIVE")') == "$WORKERS" ]]
}

running_executors() {
	field "$1" 'sum(len(a.get("executors", [])) if isinstance(a.get("executors"), list) else 0 for a in d.get("activeapps", []))'
}

app_running_on() {
	local s=$1
	[[ $(field "$s" 'sum(1 for a in d.get("activeapps", []) if a.get("state") == "RUNNING")') -ge 1 ]] &&
		[[ $(field "$s" 'sum(w.get("coresused", 0) for w in d.get("workers", []))') -ge "$WORKERS" ]]
}

app_attached_on() {
	[[ $(field "$1" 'len(d.get("activeapps", []))') -ge 1 ]]
}

submit_exited() { ! kill -0 "$SUBMIT_PID" 2>/dev/null; }

since() { calc "$(now) - $1"; }

# ---- the drill -------------------------------------------------------------

if [[ ${SKIP_IMAGES:-0} != 1 ]]; then
	say "building images (hack/compose-images.sh)"
	hack/compose-images.sh || fail "building the images failed (hack/compose-images.sh)"
fi

say "starting project $PROJECT: zk1 zk2 zk3, master1 master2, $WORKERS workers (${COMPOSE[*]})"
STARTED=1
compose up -d --scale "worker=$WORKERS" >"$TMP/up.log" 2>&1 || {
	cat "$TMP/up.log" >&2
	fail "compose up failed"
}
ok "ZooKeeper quorum formed and both masters healthy (compose waited for service_healthy)"
cid master1 >/dev/null
cid master2 >/dev/null
[[ -n ${CIDS[master1]} && -n ${CIDS[master2]} ]] || fail "cannot find the masters' containers"

LEADER=""
wait_for "exactly one ALIVE master and one STANDBY" "$UP_TIMEOUT" one_alive
STANDBY=$(other "$LEADER")
ok "leader is $LEADER (epoch $(field "$LEADER" 'd.get("epoch")')), $STANDBY is STANDBY"
wait_for "$WORKERS workers registered with $LEADER" "$UP_TIMEOUT" workers_on "$LEADER"
ok "$WORKERS workers ALIVE on $LEADER"

say "submitting an --exec app: $WORKERS executors x 1 core running 'sleep $APP_SECONDS'"
# The driver (submit) listens for the masters' pushes; it advertises its
# container's name, as spark.driver.host, so that a new leader can reach it.
SUBMITTER=${PROJECT}-submit
compose run --rm -T --no-deps --name "$SUBMITTER" worker submit \
	--master spark://master1:7077,master2:7077 --name compose-drill \
	--conf "spark.driver.host=$SUBMITTER" \
	--executor-cores 1 --total-executor-cores "$WORKERS" --executor-memory 128m \
	--executors "$WORKERS" --exec -- sleep "$APP_SECONDS" >"$TMP/submit.log" 2>&1 &
SUBMIT_PID=$!
wait_for "the app RUNNING on $LEADER with its executors" 60 app_running_on "$LEADER"
ok "app running on $LEADER ($(field "$LEADER" 'sum(w.get("coresused", 0) for w in d.get("workers", []))') cores in use)"

# --- crash of the leader ---
old=$LEADER
say "docker kill $old (SIGKILL)"
t=$(now)
docker kill "$(cid "$old")" >/dev/null
wait_for "$STANDBY to become ALIVE after $old was killed" "$FAILOVER_TIMEOUT" is_state "$STANDBY" ALIVE
kill_failover=$(since "$t")
ok "$STANDBY ALIVE ${kill_failover}s after docker kill (session timeout + recovery; epoch $(field "$STANDBY" 'd.get("epoch")'))"
LEADER=$STANDBY
wait_for "all $WORKERS workers re-registered with $LEADER" "$FAILOVER_TIMEOUT" workers_on "$LEADER"
ok "all $WORKERS workers re-registered with $LEADER $(since "$t")s after the kill"
wait_for "the app re-attached to $LEADER" "$FAILOVER_TIMEOUT" app_attached_on "$LEADER"
ok "app re-attached to $LEADER"
wait_for "the app to complete" "$((APP_SECONDS + 60))" submit_exited
rc=0
wait "$SUBMIT_PID" || rc=$?
SUBMIT_PID=""
if [[ $rc -ne 0 ]]; then
	fail "sparkd submit exited $rc (see its output below)"
fi
ok "app completed: sparkd submit exited 0"
tail -n 3 "$TMP/submit.log" | sed 's/^/    submit: /'

# --- the old leader comes back as a standby ---
say "docker start $old"
docker start "$(cid "$old")" >/dev/null
wait_for "$old back as STANDBY" "$UP_TIMEOUT" is_state "$old" STANDBY
[[ $(state "$LEADER") == ALIVE ]] || fail "$LEADER is no longer ALIVE after $old restarted"
ok "$old is STANDBY; $LEADER still ALIVE"

# --- graceful stop: hand-off in about a second ---
STANDBY=$old
POLL=0.05
say "docker stop $LEADER (SIGTERM: the leader resigns)"
t=$(now)
docker stop -t 10 "$(cid "$LEADER")" >/dev/null &
STOP_PID=$!
wait_for "$STANDBY to become ALIVE after $LEADER was stopped" "$FAILOVER_TIMEOUT" is_state "$STANDBY" ALIVE
handoff=$(since "$t")
wait "$STOP_PID" || true
ok "graceful hand-off: $STANDBY ALIVE ${handoff}s after docker stop $LEADER"
if [[ $(calc "$handoff > $HANDOFF_MAX") != 0.000 ]]; then
	fail "graceful hand-off took ${handoff}s, more than HANDOFF_MAX=${HANDOFF_MAX}s"
fi
wait_for "all $WORKERS workers re-registered with $STANDBY" "$FAILOVER_TIMEOUT" workers_on "$STANDBY"
ok "all $WORKERS workers re-registered with $STANDBY $(since "$t")s after the stop"
echo "KILL_FAILOVER_SECONDS=$kill_failover HANDOFF_SECONDS=$handoff"
