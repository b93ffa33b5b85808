#!/usr/bin/env bash
# fuzz.sh - run the MAK fuzz targets (crates/mak/fuzz), one after the other, and print their figures.
#
# Usage:   scripts/fuzz.sh [SECONDS] [TARGET...]
#            SECONDS   how long each target runs (default 600)
#            TARGET    mak_read, mak_mutate_valid, mak_open_append, mak_v2_read, mak_v2_mutate_valid, mak_v3_read,
#                      mak_v3_mutate_valid, mak_layers_read (default: all)
# Env:     MAK_FUZZ_SANITIZER   address (default) or none; address falls back to none if it cannot be built
#          MAK_FUZZ_MAX_LEN     libFuzzer -max_len, largest input in bytes (default 65536)
#
# Not part of CI: the targets are their own cargo workspace, excluded from the root one. Only the stable
# toolchain is on the machine, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags to it. Each target runs
# as one libFuzzer process (no -jobs/-workers): the machine has 2 cores and other work runs beside it.
# Corpora are kept in crates/mak/fuzz/corpus/<target> between runs (the *_read targets are seeded with the golden files),
# crashes land in crates/mak/fuzz/artifacts/<target>, full logs in crates/mak/fuzz/logs/<target>.log.
# Exit code: 0 when every target ran its time without a finding, 1 otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAK_DIR="$ROOT/crates/mak"
FUZZ_DIR="$MAK_DIR/fuzz"
SECONDS_EACH="${1:-600}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(mak_read mak_mutate_valid mak_open_append mak_v2_read mak_v2_mutate_valid mak_v3_read mak_v3_mutate_valid
  mak_layers_read)
MAX_LEN="${MAK_FUZZ_MAX_LEN:-65536}"
SANITIZER="${MAK_FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

log() { echo "[fuzz] $*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo-fuzz missing: cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

cd "$MAK_DIR"
# -a: debug assertions, so an integer overflow in the reader is a finding rather than a silent wrap.
if ! cargo fuzz build -a --sanitizer "$SANITIZER" >"$FUZZ_DIR/build.log" 2>&1; then
  if [[ "$SANITIZER" == none ]]; then
    cat "$FUZZ_DIR/build.log" >&2
    exit 1
  fi
  log "building with --sanitizer $SANITIZER failed (see crates/mak/fuzz/build.log): falling back to --sanitizer none"
  SANITIZER=none
  cargo fuzz build -a --sanitizer none
fi
log "sanitizer: $SANITIZER, ${SECONDS_EACH}s per target, max_len $MAX_LEN"

mkdir -p "$FUZZ_DIR/logs"
failed=0
summary=()
for target in "${TARGETS[@]}"; do
  corpus="$FUZZ_DIR/corpus/$target"
  mkdir -p "$corpus"
  if [[ "$target" == mak_read || "$target" == mak_v2_read || "$target" == mak_v3_read ]]; then cp "$MAK_DIR"/tests/golden/*.mak "$corpus/"; fi
  # The writer fsyncs: its scratch files go to tmpfs when there is one, in a directory of this run only.
  scratch_base=/tmp
  [[ -d /dev/shm ]] && scratch_base=/dev/shm
  scratch="$(mktemp -d "$scratch_base/mak-fuzz.XXXXXX")"
  logfile="$FUZZ_DIR/logs/$target.log"
  log "$target: running ${SECONDS_EACH}s, log in ${logfile#"$ROOT"/}"
  rc=0
  MAK_FUZZ_SCRATCH="$scratch" MAK_FUZZ_REPORT_PEAK=1 \
    cargo fuzz run -a --sanitizer "$SANITIZER" "$target" "$corpus" -- \
      -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -timeout=10 -print_final_stats=1 \
      >"$logfile" 2>&1 || rc=$?
  rm -rf "$scratch"

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$logfile" | tail -1)
  last=$(grep -E '^#[0-9]+' "$logfile" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, ft \2, corpus \3/p' <<<"$last")
  heap=$(grep 'new max peak heap' "$logfile" | tail -1 | sed 's/^mak-fuzz peak: //' || true)
  share=$(grep 'new max share of bound' "$logfile" | tail -1 | sed 's/^mak-fuzz peak: //' || true)
  line="$target: ${SECONDS_EACH}s, ${execs:-?} execs, ${rate:-?} exec/s, ${cov:-coverage ?}, peak rss ${rss:-?} MB"
  if [[ $rc != 0 ]]; then
    line="$line; FAILED (exit $rc), see ${logfile#"$ROOT"/} and crates/mak/fuzz/artifacts/$target"
    failed=1
  fi
  summary+=("$line" "  heap: ${heap:-?}" "  heap: ${share:-?}")
  log "$line"
done

echo "== fuzz summary (sanitizer $SANITIZER)"
printf '%s\n' "${summary[@]}"
exit "$failed"
