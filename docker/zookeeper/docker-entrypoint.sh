#!/bin/bash
# Entrypoint of the Debian-built ZooKeeper image. It honours the official
# zookeeper image's environment: ZOO_MY_ID, ZOO_SERVERS
# ("server.1=zk1:2888:3888;2181 server.2=..."), ZOO_4LW_COMMANDS_WHITELIST,
# ZOO_TICK_TIME, ZOO_INIT_LIMIT, ZOO_SYNC_LIMIT, ZOO_MAX_CLIENT_CNXNS,
# ZOO_STANDALONE_ENABLED, ZOO_ADMINSERVER_ENABLED, ZOO_AUTOPURGE_*,
# ZOO_CFG_EXTRA. zoo.cfg is written only if absent, myid only if absent.
set -euo pipefail

mkdir -p "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"

# Started as root (the default): fix volume ownership, then drop privileges.
if [[ ${1:-} == zkServer.sh && $(id -u) == 0 ]]; then
	chown -R zookeeper:zookeeper "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
	if [[ -w $ZOO_CONF_DIR ]]; then
		chown zookeeper:zookeeper "$ZOO_CONF_DIR" || true
	fi
	exec setpriv --reuid=zookeeper --regid=zookeeper --init-groups "$0" "$@"
fi

cfg=$ZOO_CONF_DIR/zoo.cfg
if [[ ! -f $cfg ]]; then
	{
		echo "dataDir=$ZOO_DATA_DIR"
		echo "dataLogDir=$ZOO_DATA_LOG_DIR"
		echo "tickTime=$ZOO_TICK_TIME"
		echo "initLimit=$ZOO_INIT_LIMIT"
		echo "syncLimit=$ZOO_SYNC_LIMIT"
		echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
		echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
		echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
		echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
		echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"
		servers=${ZOO_SERVERS:-server.1=localhost:2888:3888;2181}
		for s in $servers; do
			echo "$s"
		done
		if [[ -n ${ZOO_4LW_COMMANDS_WHITELIST:-} ]]; then
			echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
		fi
		for extra in ${ZOO_CFG_EXTRA:-}; do
			echo "$extra"
		done
	} >"$cfg"
fi

if [[ ! -f $ZOO_DATA_DIR/myid ]]; then
	myid=${ZOO_MY_ID:-1}
	if ! [[ $myid =~ ^[0-9]+$ ]] || ((myid < 1 || myid > 255)); then
		echo "docker-entrypoint.sh: ZOO_MY_ID must be an integer from 1 to 255, got \"$myid\"" >&2
		exit 1
	fi
	echo "$myid" >"$ZOO_DATA_DIR/myid"
fi

exec "$@"
