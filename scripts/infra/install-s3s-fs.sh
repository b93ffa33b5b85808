#!/usr/bin/env bash
# install-s3s-fs.sh - make sure the s3s-fs S3 server (0.14.1) is available; print its path.
#
# Usage:   BIN="$(scripts/infra/install-s3s-fs.sh)"
# Env:     S3S_FS_BIN    use this binary, build nothing
#          CARGO_HOME    cargo's home; the binary goes to $CARGO_HOME/bin (default ~/.cargo/bin)
#
# Looks in S3S_FS_BIN, then PATH, then $CARGO_HOME/bin. If absent it runs
# `cargo install s3s-fs@0.14.1 --locked --features binary` (~7 min on 2 cores; 0.17 needs a newer
# rustc). Installing into cargo's default bin dir, not a per-run dir, lets later runs reuse it.
set -euo pipefail
LOG_TAG=install-s3s-fs
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CARGO_BIN_DIR="${CARGO_HOME:-$HOME/.cargo}/bin"

find_bin() {
  if [[ -n "${S3S_FS_BIN:-}" ]]; then
    [[ -x "$S3S_FS_BIN" ]] || die "S3S_FS_BIN=$S3S_FS_BIN is not executable"
    echo "$S3S_FS_BIN"; return 0
  fi
  command -v s3s-fs 2>/dev/null && return 0
  [[ -x "$CARGO_BIN_DIR/s3s-fs" ]] && { echo "$CARGO_BIN_DIR/s3s-fs"; return 0; }
  return 1
}

build() {
  find_bin >/dev/null && return 0   # built by another process while we waited for the lock
  local t0
  t0=$(now_ms)
  log "s3s-fs not found; cargo install s3s-fs@$S3S_FS_VERSION (~7 min on 2 cores, once per machine)"
  cargo install "s3s-fs@$S3S_FS_VERSION" --locked --features binary >&2
  log "s3s-fs built in $(( ($(now_ms) - t0) / 1000 )) s"
}

if ! find_bin >/dev/null; then
  # Lock so two concurrent first runs do not both spend 7 minutes compiling the same thing.
  with_lock "$KAFKATOS3_CACHE_DIR/s3s-fs.lock" build
fi
find_bin || die "s3s-fs still not found after cargo install (is $CARGO_BIN_DIR writable?)"
