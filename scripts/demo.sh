#!/usr/bin/env bash
# demo.sh - run kafkatos3's main job end to end on a fresh machine: Kafka topic -> MAK files -> the archive.
#
# Usage:   scripts/demo.sh
# Env:     DEMO_RECORDS=1000        how many records to produce
#          DEMO_TIMEOUT_S=120       how long to wait for the archive to be complete
#          DEMO_STORE=dir           where the archive goes: `dir` (default) a local directory ([store] url =
#                                   file:///...: no S3 server to build), or `s3` a local s3s-fs S3 server
#          KAFKATOS3_BIN_DIR=DIR    use kafkatos3 and kafkatos3_parse from DIR (e.g. an installed release)
#                                   instead of building them: no cargo build
#
# Steps: install deps; cargo build --release; start a Tansu broker (and with DEMO_STORE=s3 an s3s-fs server, bucket
# kafkatos3-demo) on free loopback ports (fresh state dir under /tmp); create topic `demo` (3 partitions) and produce
# DEMO_RECORDS records (distinct keys and values, one empty value); write demo.cfg in the original kafkatos3's
# INI format; run `target/release/kafkatos3 demo.cfg` in the background until the objects are in the bucket and
# the consumer group's committed offsets reach the end of every partition; SIGTERM it and wait for a clean exit;
# list the archived objects; download one and print the first lines of `target/release/kafkatos3_parse FILE`;
# check the whole archive with `kafkatos3 verify --deep`; export it to Parquet (`kafkatos3 export`) and, when the
# python3 has duckdb, query that with DuckDB.
# The broker and S3 server are stopped on exit (trap); the state dir (config, daemon log, working directory,
# downloaded file) is kept for a look and its path printed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOG_TAG=demo
# shellcheck source=SCRIPTDIR/infra/common.sh
source "$ROOT/scripts/infra/common.sh"

RECORDS="${DEMO_RECORDS:-1000}"
STORE_KIND="${DEMO_STORE:-dir}"
[[ "$STORE_KIND" == dir || "$STORE_KIND" == s3 ]] || die "DEMO_STORE is dir or s3, not $STORE_KIND"
TIMEOUT_S="${DEMO_TIMEOUT_S:-120}"
TOPIC=demo
GROUP=kafkatos3-demo
BUCKET=kafkatos3-demo
HELPER=(python3 "$ROOT/scripts/demo_helper.py")
STATE=""
DAEMON_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    log "stopping the daemon (pid $DAEMON_PID)"
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    sleep 5
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ -n "$STATE" ]]; then
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-kafka.sh" || true
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-s3.sh" || true
    if [[ $rc != 0 ]]; then
      for f in "$STATE/daemon.log" "$STATE/kafka.log" "$STATE/s3.log"; do
        [[ -f "$f" ]] || continue
        echo "----- last 30 lines of $f -----" >&2
        tail -n 30 "$f" >&2
      done
    fi
    log "state kept in $STATE (demo.cfg, daemon.log, work/, downloaded object)"
  fi
  if [[ $rc == 0 ]]; then log "demo finished OK"; else log "demo FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$STORE_KIND" == dir ]]; then
  "$ROOT/scripts/install-deps.sh" --demo
else
  "$ROOT/scripts/install-deps.sh"
fi

if [[ -n "${KAFKATOS3_BIN_DIR:-}" ]]; then
  BIN_DIR="$(cd "$KAFKATOS3_BIN_DIR" && pwd)"
  log "using the binaries in $BIN_DIR (no build)"
else
  BIN_DIR="$ROOT/target/release"
  log "cargo build --release"
  t0=$(now_ms)
  cargo build --release
  log "built in $(( ($(now_ms) - t0) / 1000 )) s"
fi
for bin in kafkatos3 kafkatos3_parse; do
  [[ -x "$BIN_DIR/$bin" ]] || die "$BIN_DIR/$bin not found"
done

# Fresh state dir and free ports: the demo never touches services someone else started on the default ports.
STATE="$(mktemp -d /tmp/kafkatos3-demo.XXXXXX)"
export KAFKATOS3_INFRA_DIR="$STATE"
KAFKA_PORT="$(free_port)"
S3_PORT="$(free_port)"
while [[ "$S3_PORT" == "$KAFKA_PORT" ]]; do S3_PORT="$(free_port)"; done
export KAFKA_PORT S3_PORT
export S3_ACCESS_KEY="kafkatos3-demo-access" S3_SECRET_KEY="kafkatos3-demo-secret"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
ENDPOINT="http://127.0.0.1:$S3_PORT"

"$ROOT/scripts/infra/start-kafka.sh" >/dev/null
if [[ "$STORE_KIND" == dir ]]; then
  STORE_ARGS=("file://$STATE/archive")
  STORE_NAME="file://$STATE/archive"
  STORE_CONFIG="[store]
# the archive in a local directory (or a mounted NAS); s3://BUCKET/PREFIX, gs://..., az://... for object stores
url = file://$STATE/archive"
else
  STORE_ARGS=("$ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$BUCKET")
  STORE_NAME="s3://$BUCKET"
  S3_BUCKETS="$BUCKET" "$ROOT/scripts/infra/start-s3.sh" >/dev/null
  STORE_CONFIG="[s3]
s3_bucket_name = $BUCKET
s3_endpoint = $ENDPOINT
s3_region = us-east-1
s3_access_key = $S3_ACCESS_KEY
s3_secret_key = $S3_SECRET_KEY"
fi

"${HELPER[@]}" produce "$BOOTSTRAP" "$TOPIC" "$RECORDS" "$STATE/end-offsets.json"

mkdir -p "$STATE/work"
CONFIG="$STATE/demo.cfg"
cat >"$CONFIG" <<CFG
# kafkatos3 demo configuration, written by scripts/demo.sh (the original kafkatos3's INI format).

[main]
log.level = INFO
# persistent; the daemon resumes from what it finds here
working_directory = $STATE/work

[consumer]
consumer_processes = 1
kafka_bootstrap = $BOOTSTRAP
kafka_consumer_group = $GROUP
kafka_auto_offset_reset = earliest
consumer_nice_level = 15
topic_whitelist = $TOPIC
# seal a MAK file after 5 s so the demo sees uploads quickly (production: 1800)
max_age_seconds = 5

[compression]
compression_check_interval = 2
compressor_workers = 1
compression_nice_level = 10

$STORE_CONFIG

[kafka]
# librdkafka settings passed through to the consumer. The test broker (Tansu) takes session.timeout.ms / 2
# for every group join: 6000 makes that 3 s instead of 23 s.
session.timeout.ms = 6000
CFG
log "config written to $CONFIG"

log "starting $BIN_DIR/kafkatos3 $CONFIG (log $STATE/daemon.log)"
t0=$(now_ms)
"$BIN_DIR/kafkatos3" "$CONFIG" >"$STATE/daemon.log" 2>&1 </dev/null &
DAEMON_PID=$!

if ! "${HELPER[@]}" wait "$BOOTSTRAP" "$GROUP" "$TOPIC" "$STATE/end-offsets.json" "${STORE_ARGS[@]}" "$TIMEOUT_S" "$DAEMON_PID"; then
  die "archive incomplete: objects missing in $STORE_NAME or offsets not committed (daemon log: $STATE/daemon.log)"
fi
log "all $RECORDS records archived and committed $(( ($(now_ms) - t0) / 1000 )) s after start"

log "SIGTERM to the daemon (pid $DAEMON_PID), waiting up to 60 s for it to exit"
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 600); do
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$DAEMON_PID" 2>/dev/null && die "the daemon did not exit within 60 s of SIGTERM"
daemon_rc=0
wait "$DAEMON_PID" || daemon_rc=$?
DAEMON_PID=""
[[ $daemon_rc == 0 ]] || die "the daemon exited with status $daemon_rc after SIGTERM"
log "daemon exited cleanly"

log "archived objects in $STORE_NAME:"
"${HELPER[@]}" list "${STORE_ARGS[@]}" | tee "$STATE/objects.txt"
# Prefer a MAK file (.mak, .mak.zst, .mak.gz, .mak.lz4) over anything else the daemon may have written.
KEY="$(awk '{print $2}' "$STATE/objects.txt" | grep -E '\.mak(\.zst|\.gz|\.lz4)?$' | head -n 1 || true)"
[[ -n "$KEY" ]] || KEY="$(awk 'NR == 1 {print $2}' "$STATE/objects.txt")"
[[ -n "$KEY" ]] || die "no objects in $STORE_NAME"
FILE="$STATE/$(basename "$KEY")"
"${HELPER[@]}" fetch "${STORE_ARGS[@]}" "$KEY" "$FILE"
log "downloaded $KEY -> $FILE; kafkatos3_parse says (first 20 lines):"
# Into a file first: piping into head would SIGPIPE the parser and, with pipefail, fail the demo.
"$BIN_DIR/kafkatos3_parse" "$FILE" >"$STATE/parsed.txt"
head -n 20 "$STATE/parsed.txt"
log "($(wc -l <"$STATE/parsed.txt") lines in all)"

log "kafkatos3 verify --deep (every record of every object checked; exit 0 = no gap, overlap or unreadable object):"
"$BIN_DIR/kafkatos3" verify --config "$CONFIG" --deep

log "kafkatos3 export: the archive as Parquet for query engines, into $STATE/parquet:"
"$BIN_DIR/kafkatos3" export --config "$CONFIG" --to "file://$STATE/parquet"
if python3 -c 'import duckdb' 2>/dev/null; then
  log "DuckDB reads it (records per partition and hour):"
  python3 - "$STATE/parquet" <<'PY'
import sys, duckdb
files = sys.argv[1] + "/**/*.parquet"
print(duckdb.sql(f"""SELECT topic, "partition", "date", "hour", count(*) AS records, min("offset"), max("offset")
                     FROM read_parquet('{files}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"""))
PY
else
  log "(pip install duckdb, then: SELECT * FROM read_parquet('$STATE/parquet/**/*.parquet', hive_partitioning = true))"
fi
