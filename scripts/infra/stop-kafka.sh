#!/usr/bin/env bash
# stop-kafka.sh - stop the broker started by start-kafka.sh, by its pid file only (never by process name,
# which could hit another engineer's broker).
#
# Usage:   scripts/infra/stop-kafka.sh
# Env:     KAFKATOS3_INFRA_DIR  the state dir start-kafka.sh used (default /tmp/kafkatos3-infra)
# Exits 0 when nothing was running.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/stop-by-pidfile.sh" "${KAFKATOS3_INFRA_DIR:-/tmp/kafkatos3-infra}/kafka.pid"
