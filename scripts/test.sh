#!/usr/bin/env bash
# test.sh - THE command that runs every test of kafkatos3 (CI runs it through .ci/run).
#
# Usage:   scripts/test.sh [--no-lint] [RUNNER ARGS...]
#            --no-lint     skip cargo fmt --check, cargo clippy and cargo doc (quicker local iterations)
#            RUNNER ARGS   passed to `cargo nextest run` (or `cargo test` when nextest is missing), e.g.
#                          scripts/test.sh --no-lint -E 'test(e2e)'   or   scripts/test.sh ledger
# Env:     CI=true         also run every test after a failure (nextest --no-fail-fast)
#          KAFKATOS3_CHAOS=0        skip the short chaos run that follows the tests (scripts/chaos.py --short)
#          KAFKATOS3_CHAOS_SEED=N   run it with this seed (default 2: CI replays a known plan; `random` for a new one)
#          KAFKATOS3_KEEP_INFRA=1   keep the run's state dir (logs, S3 data) even when everything passed
#
# Steps: install-deps.sh; cargo fmt --check; cargo clippy -D warnings; cargo doc -D warnings; start a fresh Tansu broker and a fresh
# s3s-fs server on free loopback ports with a fresh state dir (mktemp -d) and one bucket; run the tests with the
# KAFKATOS3_TEST_* variables below; then, unless KAFKATOS3_CHAOS=0, the short chaos run (scripts/chaos.py --short,
# its own services); stop both services on exit, whatever happened (trap), printing their log tails if anything
# failed. Exit code = the first failing step's, else the chaos run's.
#
# What the tests see (exported):
#   KAFKATOS3_TEST_BOOTSTRAP      127.0.0.1:PORT of the broker (Tansu: give clients session.timeout.ms=6000, each
#                                 group join takes session.timeout/2; use a fresh topic and group id per test)
#   KAFKATOS3_TEST_S3_ENDPOINT    http://127.0.0.1:PORT (path-style addressing, SigV4 checked)
#   KAFKATOS3_TEST_S3_ACCESS_KEY, KAFKATOS3_TEST_S3_SECRET_KEY, KAFKATOS3_TEST_S3_REGION (us-east-1)
#   KAFKATOS3_TEST_S3_BUCKET      kafkatos3-test, already created (tests may create more buckets)
#   KAFKATOS3_TEST_INFRA_DIR      this run's state dir (pid files, kafka.log, s3.log, s3-data/)
#   KAFKATOS3_TEST_SCRIPTS        absolute path of scripts/infra (start-/stop-kafka.sh, start-/stop-s3.sh, ...)
#   KAFKATOS3_TEST_PYTHON         the python3 that has boto3, confluent-kafka and the original kafkatos3 0.2.0
#   KAFKATOS3_TEST_AZURITE        Azurite's azurite-blob (the az:// store test starts its own on a free port)
# plus the settings the infra scripts read, so that they act on this run's services when a test calls them:
#   KAFKATOS3_INFRA_DIR, KAFKA_PORT, S3_PORT, S3_ACCESS_KEY, S3_SECRET_KEY (the S3 data dir is derived from
#   KAFKATOS3_INFRA_DIR, so a private instance started with another KAFKATOS3_INFRA_DIR gets its own data).
#
# Simulating an S3 outage: a test runs `$KAFKATOS3_TEST_SCRIPTS/stop-s3.sh`, then `$KAFKATOS3_TEST_SCRIPTS/start-s3.sh`
# with the same env (same port, keys and data dir: the buckets and objects are still there). Tests run in parallel
# and share this server, so a test that takes S3 down should first start its own instance - the same two scripts
# with KAFKATOS3_INFRA_DIR set to its own temp dir and S3_PORT to a free port - and stop/start that one instead.
# The same goes for the broker (stop-kafka.sh/start-kafka.sh; KAFKA_STORAGE=s3://BUCKET/ keeps data across
# a broker restart, see start-kafka.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOG_TAG="test"
# shellcheck source=SCRIPTDIR/infra/common.sh
source "$ROOT/scripts/infra/common.sh"

LINT=1
if [[ "${1:-}" == --no-lint ]]; then LINT=0; shift; fi
T_ALL=$(now_ms)
STATE=""
RUNNER_PID=""

# run_group CMD...: run CMD in its own process group and wait for it. bash defers traps while a foreground
# command runs, so a SIGTERM to this script would wait for the whole test suite; `wait` is interrupted at once,
# and the own group lets cleanup stop the runner with everything it spawned (test binaries, servers of tests).
run_group() {
  set -m   # job control on: the background job gets its own process group, whose id is its pid
  "$@" &
  RUNNER_PID=$!
  set +m
  local rc=0
  wait "$RUNNER_PID" || rc=$?
  RUNNER_PID=""
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$RUNNER_PID" ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    log "interrupted: stopping the test runner (process group $RUNNER_PID)"
    kill -TERM -- "-$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$RUNNER_PID" 2>/dev/null || true
  fi
  [[ -n "$STATE" ]] || exit "$rc"
  if [[ $rc == 0 ]]; then
    # Quiet on success: the test runner's summary must stay the last lines of the output (CI reads them).
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-kafka.sh" 2>/dev/null || true
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-s3.sh" 2>/dev/null || true
    [[ "${KAFKATOS3_KEEP_INFRA:-0}" == 1 ]] || rm -rf "$STATE"
  else
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-kafka.sh" || true
    KAFKATOS3_INFRA_DIR="$STATE" "$ROOT/scripts/infra/stop-s3.sh" || true
    for f in "$STATE/kafka.log" "$STATE/s3.log"; do
      [[ -f "$f" ]] || continue
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2
    done
    log "FAILED (exit $rc) after $(( ($(now_ms) - T_ALL) / 1000 )) s; state kept in $STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
# Ctrl-C / kill: exit through the EXIT trap so the services are stopped (128+signal, like bash would).
trap 'exit 130' INT
trap 'exit 143' TERM

# timed NAME CMD...: run a step, log its duration; with set -e a failing step ends the run (and the trap cleans up).
timed() {
  local name="$1" t0; shift
  t0=$(now_ms)
  log "== $name"
  "$@"
  log "== $name: ok ($(( ($(now_ms) - t0) / 1000 )) s)"
}

timed "install-deps" "$ROOT/scripts/install-deps.sh"

if [[ $LINT == 1 ]]; then
  timed "cargo fmt --check" cargo fmt --all -- --check
  timed "cargo clippy" cargo clippy --locked --workspace --release --all-targets -- -D warnings
  # The docs are the component map (src/lib.rs) and the design's entry points: a broken link fails like a lint.
  RUSTDOCFLAGS="-D warnings" timed "cargo doc" cargo doc --locked --no-deps --workspace --release
  timed "deploy files" "$ROOT/scripts/check-deploy.sh"
fi

# --- fresh services for this run -------------------------------------------------------------------------
STATE="$(mktemp -d /tmp/kafkatos3-test.XXXXXX)"
export KAFKATOS3_INFRA_DIR="$STATE"
KAFKA_PORT="$(free_port)"
S3_PORT="$(free_port)"
while [[ "$S3_PORT" == "$KAFKA_PORT" ]]; do S3_PORT="$(free_port)"; done
export KAFKA_PORT S3_PORT
export S3_ACCESS_KEY="kafkatos3-test-access"
export S3_SECRET_KEY="kafkatos3-test-secret-$RANDOM$RANDOM"
BUCKET="kafkatos3-test"

timed "start broker" "$ROOT/scripts/infra/start-kafka.sh" >/dev/null
S3_BUCKETS="$BUCKET" timed "start s3" "$ROOT/scripts/infra/start-s3.sh" >/dev/null

export KAFKATOS3_TEST_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export KAFKATOS3_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export KAFKATOS3_TEST_S3_ACCESS_KEY="$S3_ACCESS_KEY"
export KAFKATOS3_TEST_S3_SECRET_KEY="$S3_SECRET_KEY"
export KAFKATOS3_TEST_S3_REGION="us-east-1"
export KAFKATOS3_TEST_S3_BUCKET="$BUCKET"
export KAFKATOS3_TEST_INFRA_DIR="$STATE"
export KAFKATOS3_TEST_SCRIPTS="$ROOT/scripts/infra"
KAFKATOS3_TEST_PYTHON="$(command -v python3)"
export KAFKATOS3_TEST_PYTHON
KAFKATOS3_TEST_AZURITE="$("$ROOT/scripts/infra/install-azurite.sh")"
export KAFKATOS3_TEST_AZURITE
log "broker $KAFKATOS3_TEST_BOOTSTRAP, s3 $KAFKATOS3_TEST_S3_ENDPOINT (bucket $BUCKET), state $STATE"

# --- tests -------------------------------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests: run them first with cargo test, so nextest's summary line stays last.
  # Skipped when args are given: those are nextest filters/flags that cargo test would not understand.
  if [[ $# == 0 ]]; then
    timed "doctests" run_group cargo test --release --workspace --doc
  fi
  args=(--locked --release --workspace --tool-config-file "kafkatos3:$ROOT/scripts/nextest-defaults.toml")
  [[ "${CI:-}" == true ]] && args+=(--no-fail-fast)   # CI: report every failure, not only the first
  log "== cargo nextest run ${args[*]} $*"
  run_group cargo nextest run "${args[@]}" "$@"
else
  args=(--locked --release --workspace)
  [[ "${CI:-}" == true ]] && args+=(--no-fail-fast)
  log "== cargo test ${args[*]} $* (cargo-nextest not installed)"
  run_group cargo test "${args[@]}" "$@"
fi

# --- chaos (short form) ------------------------------------------------------------------------------------------
# Exactly-once under faults: kill -9 (some on an empty working dir), SIGTERM restarts, instances joining and
# leaving the group, the archive S3 server stopped or frozen, the broker restarted; then `verify --deep` and an
# independent reader must find every sequence number exactly once. ~2-3 min, with its own broker and S3 servers
# (the ones above are not touched). It tests the binary the test runner just built.
if [[ "${KAFKATOS3_CHAOS:-1}" != 0 ]]; then
  chaos_args=(--short --daemon "$ROOT/target/release/kafkatos3")
  # A fixed plan by default keeps CI's verdict about the code, not about the dice; timing still varies.
  seed="${KAFKATOS3_CHAOS_SEED:-2}"
  [[ "$seed" != random ]] && chaos_args+=(--seed "$seed")
  timed "chaos --short" run_group python3 "$ROOT/scripts/chaos.py" "${chaos_args[@]}"
fi
