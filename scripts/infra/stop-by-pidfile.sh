#!/usr/bin/env bash
# stop-by-pidfile.sh - stop the process whose pid is in PIDFILE: SIGTERM, wait, then SIGKILL.
#
# Usage:   scripts/infra/stop-by-pidfile.sh PIDFILE [TIMEOUT_S]     (TIMEOUT_S default 10)
# Removes PIDFILE. Exits 0 if nothing was running (so it is safe in cleanup traps).
# Only ever signals the one recorded pid: never pkill/killall, other engineers run the same services.
set -uo pipefail   # no -e: a process that exits between our checks must not abort the cleanup
PIDFILE="${1:?usage: stop-by-pidfile.sh PIDFILE [TIMEOUT_S]}"
TIMEOUT="${2:-10}"
[[ -f "$PIDFILE" ]] || { echo "[stop] no pid file $PIDFILE" >&2; exit 0; }
PID="$(cat "$PIDFILE")"
if [[ "$PID" =~ ^[0-9]+$ ]] && kill -0 "$PID" 2>/dev/null; then
  kill -TERM "$PID" 2>/dev/null
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PID" 2>/dev/null; then
    echo "[stop] pid $PID still alive after ${TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$PID" 2>/dev/null
  fi
  echo "[stop] stopped pid $PID ($PIDFILE)" >&2
else
  echo "[stop] pid ${PID:-?} from $PIDFILE not running" >&2
fi
rm -f "$PIDFILE"
