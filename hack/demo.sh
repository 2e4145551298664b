#!/usr/bin/env bash
# make demo: build sparkd, check that ZooKeeper is installed, then on loopback
# start a 3-node ZooKeeper ensemble, 2 masters (ZOOKEEPER recovery mode via a
# generated conf/spark-env.sh) and 3 workers; submit an application, kill the
# leading master with SIGKILL, and print a timeline of the failover; then run
# the wordcount example through a SIGKILL of one executor and of the leading
# master, and check its output against the coreutils pipeline. Everything
# started is stopped at the end, also on failure or Ctrl-C.
#
# Environment: SESSION_TIMEOUT (default 2s), GO (default go).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

if ! command -v "$GO" >/dev/null 2>&1; then
	echo "demo: Go is not installed (need $(sed -n 's/^go //p' go.mod) or newer)" >&2
	exit 1
fi
bash hack/deps.sh

echo "demo: building bin/sparkd"
CGO_ENABLED=0 "$GO" build -trimpath -o bin/sparkd ./cmd/sparkd
echo "demo: building bin/wordcount"
CGO_ENABLED=0 "$GO" build -trimpath -o bin/wordcount ./examples/wordcount
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sparkd-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 "$GO" build -o "$tmp/demo" ./internal/cmd/demo

SPARKD_BIN="$PWD/bin/sparkd" "$tmp/demo" -session-timeout "${SESSION_TIMEOUT:-2s}" -wordcount "$PWD/bin/wordcount" "$@"
