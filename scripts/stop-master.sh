#!/usr/bin/env bash
# Stops the sparkd master on this machine. The master resigns leadership
# first, so a standby takes over in about a second.
set -euo pipefail
# shellcheck source=config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
exec "${SPARK_HOME}/scripts/daemon.sh" stop master 1
