#!/usr/bin/env bash
# install-azurite.sh - make sure Azurite (Microsoft's Azure Storage emulator) is available; print the path of
# its blob server, azurite-blob.
#
# Usage:   BIN="$(scripts/infra/install-azurite.sh)"
# Env:     AZURITE_BIN           use this azurite-blob, download nothing
#          AZURITE_VERSION       npm version (default 3.35.0)
#          KAFKATOS3_CACHE_DIR   where it is cached (default $HOME/.cache/kafkatos3-infra)
#
# Why: the az:// store is tested end to end (crates/kafkatos3/tests/e2e_azure.rs) against Azurite, which serves
# the Blob REST API with Shared Key authentication and honours If-None-Match: * on Put Blob (the fence). It
# is an npm package (Node.js >= 18); ~15 s and ~190 MB the first time, instant afterwards.
set -euo pipefail
LOG_TAG=install-azurite
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ -n "${AZURITE_BIN:-}" ]]; then
  [[ -x "$AZURITE_BIN" ]] || die "AZURITE_BIN=$AZURITE_BIN is not executable"
  echo "$AZURITE_BIN"; exit 0
fi
VERSION="${AZURITE_VERSION:-3.35.0}"
DIR="$KAFKATOS3_CACHE_DIR/azurite-$VERSION"
BIN="$DIR/node_modules/.bin/azurite-blob"

fetch() {
  [[ -x "$BIN" ]] && return 0   # another process may have installed it while we waited for the lock
  command -v npm >/dev/null || die "npm (Node.js) is needed to install Azurite"
  local t0 tmp
  t0=$(now_ms)
  log "npm install azurite@$VERSION (~190 MB)"
  tmp="$DIR.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "azurite@$VERSION" >&2
  # Installed aside, then renamed: a half-installed copy is never found under the final name.
  rm -rf "$DIR" && mv "$tmp" "$DIR"
  [[ -x "$BIN" ]] || die "azurite@$VERSION installed no $BIN"
  log "azurite cached at $DIR ($(( $(now_ms) - t0 )) ms)"
}

[[ -x "$BIN" ]] || with_lock "$KAFKATOS3_CACHE_DIR/azurite.lock" fetch
echo "$BIN"
