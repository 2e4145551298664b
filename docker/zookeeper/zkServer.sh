#!/bin/bash
# zkServer.sh for the Debian-built ZooKeeper image: the subset of Apache
# ZooKeeper's script that containers use.
#   zkServer.sh start-foreground   run the server in the foreground (logs on stdout)
#   zkServer.sh status             print srvr's Mode line; exit 0 only if serving
# JVMFLAGS and SERVER_JVMFLAGS are passed to the JVM, as upstream does.
set -euo pipefail

cfg=${ZOOCFG:-${ZOO_CONF_DIR:-/conf}/zoo.cfg}
cp=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar

client_port() {
	local p
	p=$(sed -n -E 's/^clientPort=([0-9]+).*/\1/p' "$cfg" | tail -n1)
	if [[ -z $p ]]; then
		p=$(sed -n -E 's/^server\.[0-9]+=.*;([^:]*:)?([0-9]+)$/\2/p' "$cfg" | head -n1)
	fi
	echo "${p:-2181}"
}

case ${1:-} in
start-foreground)
	# shellcheck disable=SC2086 # JVMFLAGS are words
	exec java -Dzookeeper.log.dir="${ZOO_LOG_DIR:-/logs}" \
		-Dzookeeper.root.logger="${ZOO_LOG_LEVEL:-INFO}, CONSOLE" \
		-Dlog4j.configuration=file:/etc/zookeeper-docker/log4j.properties \
		-XX:+ExitOnOutOfMemoryError ${SERVER_JVMFLAGS:-} ${JVMFLAGS:--Xmx512m} \
		-cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
	;;
status)
	port=$(client_port)
	out=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && echo srvr >&3 && cat <&3" 2>/dev/null || true)
	mode=$(sed -n 's/^Mode: //p' <<<"$out")
	if [[ -n $mode ]]; then
		echo "Client port found: $port. Mode: $mode"
		exit 0
	fi
	echo "Error contacting service on port $port. It is probably not running or not serving." >&2
	exit 1
	;;
*)
	echo "Usage: zkServer.sh {start-foreground|status}" >&2
	exit 2
	;;
esac
