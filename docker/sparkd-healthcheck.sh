#!/bin/bash
# Container healthcheck for sparkd daemons, with no curl in the image.
#
#   sparkd-healthcheck [PORT]         exit 0 if the daemon's web UI on PORT
#                                     answers /healthz (or, if that is 404,
#                                     /json) with 200. ALIVE and STANDBY
#                                     masters are both healthy; /readyz tells
#                                     them apart.
#   sparkd-healthcheck --get PATH [PORT]
#                                     print the body of GET PATH; exit 0 on 200,
#                                     1 otherwise (e.g. --get /readyz 8080).
#
# PORT defaults to $SPARK_MASTER_WEBUI_PORT, $SPARK_WORKER_WEBUI_PORT, 8080.
set -uo pipefail

# The daemon may bind one address only (SPARK_MASTER_HOST, SPARK_LOCAL_IP,
# --host): try loopback, then those, then the container's host name.
addrs=(127.0.0.1)
for a in "${SPARK_LOCAL_IP:-}" "${SPARK_MASTER_HOST:-}" "$(hostname 2>/dev/null)"; do
	[[ -n $a && $a != 0.0.0.0 ]] && addrs+=("$a")
done

get() { # get PATH PORT -> sets code and body
	local path=$1 port=$2 resp addr
	code=000 body=""
	for addr in "${addrs[@]}"; do
		# shellcheck disable=SC2016 # expanded by the inner bash
		resp=$(timeout 5 bash -c '
			exec 3<>"/dev/tcp/$1/$2" || exit 1
			printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3
			cat <&3' _ "$addr" "$port" "$path" 2>/dev/null) || continue
		code=$(head -n1 <<<"$resp" | awk '{print $2}')
		body=$(sed '1,/^\r\{0,1\}$/d' <<<"$resp")
		code=${code:-000}
		return
	done
}

default_port=${SPARK_MASTER_WEBUI_PORT:-${SPARK_WORKER_WEBUI_PORT:-8080}}

if [[ ${1:-} == --get ]]; then
	[[ $# -ge 2 ]] || { echo "usage: sparkd-healthcheck --get PATH [PORT]" >&2; exit 2; }
	get "$2" "${3:-$default_port}"
	printf '%s\n' "$body"
	[[ $code == 200 ]]
	exit
fi

port=${1:-$default_port}
get /healthz "$port"
if [[ $code == 404 ]]; then
	get /json "$port"
fi
if [[ $code == 200 ]]; then
	exit 0
fi
echo "sparkd-healthcheck: web UI on port $port answered ${code/#000/nothing}" >&2
exit 1
