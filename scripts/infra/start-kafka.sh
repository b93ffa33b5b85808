#!/usr/bin/env bash
# start-kafka.sh - start a single-node Kafka-compatible broker (Tansu 0.6.0) on loopback, in the background.
#
# Usage:   eval "$(scripts/infra/start-kafka.sh)"      # then $KAFKA_BOOTSTRAP is 127.0.0.1:PORT
# Env:     KAFKA_PORT           port to listen on (default 9092)
#          KAFKATOS3_INFRA_DIR  state dir: kafka.pid, kafka.log (default /tmp/kafkatos3-infra)
#          KAFKA_STORAGE        memory://tansu/ (default; lost on stop) or s3://BUCKET/ for records and committed
#                               offsets that survive a broker restart. s3:// needs a loopback S3 server with the
#                               bucket already created (start-s3.sh with S3_BUCKETS=BUCKET) and, in the env,
#                               AWS_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY.
#          TANSU_BIN            use this tansu binary (else install-tansu.sh downloads and caches one)
#          KAFKA_ADVERTISED_PORT port put in metadata (default KAFKA_PORT); start-kafka-secure.sh sets it to its
#                               TLS/SASL proxy's port so that clients come back through the proxy
# Output:  eval-able lines KAFKA_BOOTSTRAP=127.0.0.1:PORT and KAFKA_PID=PID on stdout; messages on stderr.
#          Stop with stop-kafka.sh (same KAFKATOS3_INFRA_DIR).
#
# Test-broker quirks (see the project's testing notes): each group join takes session.timeout.ms/2, so give
# clients session.timeout.ms=6000; ListOffsets(latest) is off for multi-record batches; use fresh group ids.
set -euo pipefail
LOG_TAG=start-kafka
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "$HERE/common.sh"

PORT="${KAFKA_PORT:-9092}"
ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-$PORT}"
STORAGE="${KAFKA_STORAGE:-memory://tansu/}"
mkdir -p "$KAFKATOS3_INFRA_DIR"
PIDFILE="$KAFKATOS3_INFRA_DIR/kafka.pid"
LOG="$KAFKATOS3_INFRA_DIR/kafka.log"

# Starting twice against one state dir would orphan the first broker's pid file: refuse instead.
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  die "already running (pid $(cat "$PIDFILE"), $PIDFILE); stop it first with stop-kafka.sh"
fi

BIN="$("$HERE/install-tansu.sh")"

case "$STORAGE" in
  memory://*) ;;
  s3://*)
    # Never let the broker talk to real AWS: demand an explicit loopback endpoint and static keys.
    case "${AWS_ENDPOINT:-}" in
      http://127.*|http://localhost*) ;;
      *) die "KAFKA_STORAGE=s3://... needs AWS_ENDPOINT=http://127.0.0.1:PORT (got '${AWS_ENDPOINT:-}')" ;;
    esac
    [[ -n "${AWS_ACCESS_KEY_ID:-}" && -n "${AWS_SECRET_ACCESS_KEY:-}" ]] \
      || die "KAFKA_STORAGE=s3://... needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    # tansu's object store client refuses plain http unless told, and needs a region to sign with.
    export AWS_ALLOW_HTTP=true AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" ;;
  *) die "this tansu build has only memory:// and s3:// storage (got '$STORAGE')" ;;
esac

port_open "$PORT" && die "127.0.0.1:$PORT is already in use"

t0=$(now_ms)
# nohup + </dev/null: the broker must not die with the starting shell nor read its stdin (CI has none).
# Append to the log: a test that restarts the broker keeps the first run's log for post-mortems.
nohup "$BIN" broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$ADVERTISED_PORT" \
  --storage-engine "$STORAGE" \
  >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

for _ in $(seq 1 100); do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "ERROR: broker exited; log follows"; cat "$LOG" >&2; rm -f "$PIDFILE"; exit 1
  fi
  if port_open "$PORT"; then
    log "tansu ready on 127.0.0.1:$PORT after $(( $(now_ms) - t0 )) ms (pid $(cat "$PIDFILE"), storage $STORAGE, log $LOG)"
    echo "KAFKA_BOOTSTRAP=127.0.0.1:$PORT"
    echo "KAFKA_PID=$(cat "$PIDFILE")"
    exit 0
  fi
  sleep 0.1
done
log "ERROR: broker not reachable after 10 s; stopping it"
"$HERE/stop-by-pidfile.sh" "$PIDFILE"
exit 1
