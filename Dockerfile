# sparkd image: the static bin/sparkd, the operator scripts and the conf
# templates on a small Debian base, run as the unprivileged user `spark`
# (uid 185, as in the apache/spark image), logging to stdout.
#
# The binary is built on the host first (no golang image is needed):
#
#     make build                   # CGO_ENABLED=0 -> static bin/sparkd
#     docker build -t sparkd:latest .
#
# On a machine without an image registry, `make compose-images` builds a
# Debian base with debootstrap and passes it as BASE_IMAGE:
#
#     docker build --build-arg BASE_IMAGE=sparkd/debian-base:bookworm -t sparkd:latest .
#
# Usage: `docker run sparkd:latest master`, `... worker spark://m1:7077,m2:7077`,
# `... submit --master ... --exec -- CMD`, `... status`, or any command.
# The daemons run in the foreground (SPARK_NO_DAEMONIZE=1) and read the usual
# SPARK_* variables and SPARK_DAEMON_JAVA_OPTS="-Dspark.deploy.recoveryMode=ZOOKEEPER ...".
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="sparkd" \
      org.opencontainers.image.description="Spark-standalone-style cluster manager with ZooKeeper HA" \
      org.sparkd.compose=1

ENV SPARK_HOME=/opt/sparkd \
    SPARK_CONF_DIR=/opt/sparkd/conf \
    SPARK_WORKER_DIR=/opt/sparkd/work \
    SPARK_LOG_DIR=/opt/sparkd/logs \
    SPARK_NO_DAEMONIZE=1 \
    PATH=/opt/sparkd/bin:/opt/sparkd/scripts:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# .dockerignore lets in only bin/sparkd, scripts/, conf/ and docker/, so this
# works whether or not scripts/ and conf/ exist yet.
COPY . /tmp/ctx/
RUN set -eu; \
    groupadd --system --gid 185 spark; \
    useradd --system --uid 185 --gid spark --home-dir /opt/sparkd --shell /bin/bash spark; \
    test -x /tmp/ctx/bin/sparkd || { echo "bin/sparkd missing: run 'make build' first" >&2; exit 1; }; \
    mkdir -p /opt/sparkd/bin /opt/sparkd/scripts /opt/sparkd/conf /opt/sparkd/work /opt/sparkd/logs; \
    install -m 0755 /tmp/ctx/bin/sparkd /opt/sparkd/bin/sparkd; \
    if [ -d /tmp/ctx/scripts ]; then cp -a /tmp/ctx/scripts/. /opt/sparkd/scripts/; fi; \
    if [ -d /tmp/ctx/conf ]; then cp -a /tmp/ctx/conf/. /opt/sparkd/conf/; fi; \
    install -m 0755 /tmp/ctx/docker/sparkd-entrypoint.sh /usr/local/bin/sparkd-entrypoint; \
    install -m 0755 /tmp/ctx/docker/sparkd-healthcheck.sh /usr/local/bin/sparkd-healthcheck; \
    rm -rf /tmp/ctx; \
    chown -R spark:spark /opt/sparkd/work /opt/sparkd/logs /opt/sparkd/conf; \
    /opt/sparkd/bin/sparkd version

USER spark
WORKDIR /opt/sparkd
# master RPC, master web UI, REST submissions, worker web UI
EXPOSE 7077 8080 6066 8081
ENTRYPOINT ["sparkd-entrypoint"]
CMD []
