#!/usr/bin/env bash
# stop-kafka.sh - stop the broker started by start-kafka.sh or start-kafka-secure.sh (and the latter's TLS/SASL
# proxy), by their pid files only (never by process name, which could hit another engineer's broker).
#
# Usage:   scripts/infra/stop-kafka.sh
# Env:     KAFKATOS3_INFRA_DIR  the state dir start-kafka.sh used (default /tmp/kafkatos3-infra)
# Exits 0 when nothing was running.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${KAFKATOS3_INFRA_DIR:-/tmp/kafkatos3-infra}"
# The proxy first: clients then fail at the front door rather than behind it.
[[ -f "$DIR/kafka-proxy.pid" ]] && "$HERE/stop-by-pidfile.sh" "$DIR/kafka-proxy.pid"
exec "$HERE/stop-by-pidfile.sh" "$DIR/kafka.pid"
