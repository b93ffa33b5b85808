#!/usr/bin/env bash
# run.sh - install what the benchmark needs (scripts/install-deps.sh: Tansu, s3s-fs, confluent-kafka, boto3,
# the original kafkatos3 0.2.0), then run bench/run.py with the given arguments (see bench/run.py --help).
#
# Usage:   bench/run.sh [--total-bytes 50MiB] [--codecs gzip] [--skip-original] [--keep] ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
exec python3 "$ROOT/bench/run.py" "$@"
