#!/usr/bin/env bash
# Checks the deployment examples in deploy/ the way their tools would:
#   - deploy/systemd: `systemd-analyze verify` (unit syntax, known options, the timer's unit), with
#     ExecStart pointed at an executable that exists here (the units name /usr/local/bin/kafkatos3).
# Run by scripts/test.sh with the lints. Skips a check, saying so, when its tool is not installed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
log() { echo "[check-deploy] $*" >&2; }

if command -v systemd-analyze >/dev/null; then
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
  for unit in "$ROOT"/deploy/systemd/*; do
    sed "s#/usr/local/bin/kafkatos3#$(command -v true)#" "$unit" > "$dir/$(basename "$unit")"
  done
  # verify exits 0 on an unknown key or a bad value ("ignoring"): any line it prints about our
  # files fails the check; lines about this machine's own units do not.
  status=0
  out="$(systemd-analyze verify "$dir"/* 2>&1)" || status=$?
  if [[ $status != 0 ]] || grep -q "$dir/" <<<"$out"; then
    echo "$out" | sed "s#$dir/#deploy/systemd/#g" >&2
    log "systemd units: FAILED"
    exit 1
  fi
  log "systemd units: ok ($(ls "$ROOT"/deploy/systemd | tr '\n' ' '))"
else
  log "systemd-analyze not installed: systemd units not checked"
fi
