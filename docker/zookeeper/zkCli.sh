#!/bin/bash
# zkCli.sh for the Debian-built ZooKeeper image: `zkCli.sh -server zk1:2181 ls /`.
cp=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar:/usr/share/java/jline.jar
# shellcheck disable=SC2086
exec java -Dzookeeper.root.logger=WARN,CONSOLE \
	-Dlog4j.configuration=file:/etc/zookeeper-docker/log4j.properties \
	${CLIENT_JVMFLAGS:-} ${JVMFLAGS:-} -cp "$cp" org.apache.zookeeper.ZooKeeperMain "$@"
