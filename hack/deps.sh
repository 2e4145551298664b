#!/usr/bin/env bash
# Installs what sparkd's tests and demo need on a Debian machine. Idempotent:
# it installs only what is missing. Not root: it prints what to install.
set -euo pipefail

need=()
have_zk() {
	[[ -n "${ZOOKEEPER_JAR:-}" && -f "${ZOOKEEPER_JAR}" ]] && return 0
	[[ -n "${ZOOKEEPER_HOME:-}" && -d "${ZOOKEEPER_HOME}" ]] && return 0
	[[ -f /usr/share/java/zookeeper.jar ]]
}
have_zk || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The UI tests drive a real headless browser (internal/uitest).
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
# make bench compares the task runtime with GNU parallel (and xargs); the
# tests do not need them, so without root their absence is only a warning.
bench=()
command -v parallel >/dev/null 2>&1 || bench+=(parallel)
command -v hyperfine >/dev/null 2>&1 || bench+=(hyperfine)
if [[ $(id -u) -eq 0 ]]; then
	need+=("${bench[@]}")
elif [[ ${#bench[@]} -gt 0 ]]; then
	echo "deps: make bench also wants: ${bench[*]} (apt-get install -y ${bench[*]})" >&2
fi

if [[ ${#need[@]} -eq 0 ]]; then
	echo "deps: everything needed is installed"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing Debian packages: ${need[*]}" >&2
	echo "deps: run as root: apt-get update && apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "deps: installed ${need[*]}"
