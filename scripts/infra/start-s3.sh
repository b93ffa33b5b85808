#!/usr/bin/env bash
# start-s3.sh - start an S3-compatible server (s3s-fs 0.14.1, files on disk) on loopback, in the background.
#
# Usage:   eval "$(scripts/infra/start-s3.sh)"     # then $S3_ENDPOINT is http://127.0.0.1:PORT
# Env:     S3_PORT              port (default 8014)
#          S3_ACCESS_KEY        access key (default testaccesskey)  } s3s-fs checks SigV4 signatures for real:
#          S3_SECRET_KEY        secret key (default testsecretkey)  } a wrong secret is refused
#          S3_DATA_DIR          data root (default $KAFKATOS3_INFRA_DIR/s3-data); survives stop/start
#          S3_BUCKETS           space-separated buckets to create once it is up (optional; uses boto3)
#          KAFKATOS3_INFRA_DIR  state dir: s3.pid, s3.log (default /tmp/kafkatos3-infra)
#          S3S_FS_BIN           use this s3s-fs binary (else PATH, ~/.cargo/bin, else cargo install: ~7 min)
# Output:  eval-able KEY=VALUE lines on stdout: S3_ENDPOINT, S3_PID, and the same settings under the names
#          AWS SDKs read (AWS_ENDPOINT_URL, AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#          AWS_DEFAULT_REGION, AWS_REGION, AWS_ALLOW_HTTP, AWS_EC2_METADATA_DISABLED). Stop with stop-s3.sh.
# Path-style addressing only (no virtual-hosted buckets).
set -euo pipefail
LOG_TAG=start-s3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "$HERE/common.sh"

PORT="${S3_PORT:-8014}"
AK="${S3_ACCESS_KEY:-testaccesskey}"
SK="${S3_SECRET_KEY:-testsecretkey}"
DATA="${S3_DATA_DIR:-$KAFKATOS3_INFRA_DIR/s3-data}"
ENDPOINT="http://127.0.0.1:$PORT"
mkdir -p "$KAFKATOS3_INFRA_DIR"
PIDFILE="$KAFKATOS3_INFRA_DIR/s3.pid"
LOG="$KAFKATOS3_INFRA_DIR/s3.log"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  die "already running (pid $(cat "$PIDFILE"), $PIDFILE); stop it first with stop-s3.sh"
fi

BIN="$("$HERE/install-s3s-fs.sh")"
port_open "$PORT" && die "127.0.0.1:$PORT is already in use"
mkdir -p "$DATA"

t0=$(now_ms)
# Append to the log: a test that restarts the server keeps the first run's log for post-mortems.
nohup "$BIN" --host 127.0.0.1 --port "$PORT" --access-key "$AK" --secret-key "$SK" "$DATA" \
  >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

for _ in $(seq 1 300); do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "ERROR: s3s-fs exited; log follows"; cat "$LOG" >&2; rm -f "$PIDFILE"; exit 1
  fi
  port_open "$PORT" && break
  sleep 0.05
done
if ! port_open "$PORT"; then
  log "ERROR: s3s-fs not reachable after 15 s; stopping it"
  "$HERE/stop-by-pidfile.sh" "$PIDFILE"; exit 1
fi
log "s3s-fs ready on $ENDPOINT after $(( $(now_ms) - t0 )) ms (pid $(cat "$PIDFILE"), data $DATA, log $LOG)"

if [[ -n "${S3_BUCKETS:-}" ]]; then
  ensure_boto3
  # shellcheck disable=SC2086  # S3_BUCKETS is a space-separated list on purpose
  if ! python3 "$HERE/s3-mkbucket.py" "$ENDPOINT" "$AK" "$SK" $S3_BUCKETS; then
    # All or nothing: a caller that sees a failure must not be left with a running server to clean up.
    log "ERROR: could not create buckets '$S3_BUCKETS'; stopping s3s-fs"
    "$HERE/stop-by-pidfile.sh" "$PIDFILE"; exit 1
  fi
fi

cat <<OUT
S3_ENDPOINT=$ENDPOINT
S3_PID=$(cat "$PIDFILE")
AWS_ENDPOINT_URL=$ENDPOINT
AWS_ENDPOINT=$ENDPOINT
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_DEFAULT_REGION=us-east-1
AWS_REGION=us-east-1
AWS_ALLOW_HTTP=true
AWS_EC2_METADATA_DISABLED=true
OUT
