#!/usr/bin/env bash
# Checks the deployment examples in deploy/ the way their tools would:
#   - deploy/systemd: `systemd-analyze verify` (unit syntax, known options, the timer's unit), with
#     ExecStart pointed at an executable that exists here (the units name /usr/local/bin/kafkatos3).
#   - deploy/prometheus: `promtool check rules` and `promtool test rules` (the alerts fire, and stop,
#     on recorded series of an outage); promtool is required (scripts/install-deps.sh installs it).
# Run by scripts/test.sh with the lints. Skips the systemd check, saying so, when systemd-analyze is
# not installed (a container without systemd).
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

command -v promtool >/dev/null || { log "promtool missing (scripts/install-deps.sh installs Debian's prometheus)"; exit 1; }
(
  cd "$ROOT/deploy/prometheus"
  promtool check rules kafkatos3-alerts.yml >&2
  promtool test rules kafkatos3-alerts.test.yml >&2
) || { log "prometheus rules: FAILED"; exit 1; }
log "prometheus rules: ok (checked, and their unit tests pass)"

# The dashboard's queries, with Grafana's variables filled in, parsed by promtool as recording rules.
dash="$(mktemp)"
python3 - "$ROOT/deploy/grafana/kafkatos3-dashboard.json" > "$dash" <<'PY'
import json, sys
board = json.load(open(sys.argv[1]))
fill = {"$__rate_interval": "5m", "$job": "kafkatos3", "$instance": ".*", "$topic": ".*"}
print("groups:\n  - name: dashboard\n    rules:")
for panel in board["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"]
        for var, value in fill.items():
            expr = expr.replace(var, value)
        print(f"      - record: dashboard:panel_{panel['id']}_{target['refId']}\n        expr: {json.dumps(expr)}")
PY
promtool check rules "$dash" >/dev/null 2>"$dash.err" || { cat "$dash.err" >&2; log "grafana dashboard: FAILED (a query does not parse)"; exit 1; }
rm -f "$dash" "$dash.err"
log "grafana dashboard: ok (every query parses)"
