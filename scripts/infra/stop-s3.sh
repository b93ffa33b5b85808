#!/usr/bin/env bash
# stop-s3.sh - stop the S3 server started by start-s3.sh, by its pid file only (never by process name).
#
# Usage:   scripts/infra/stop-s3.sh
# Env:     KAFKATOS3_INFRA_DIR  the state dir start-s3.sh used (default /tmp/kafkatos3-infra)
# The data dir is kept: start-s3.sh with the same env serves the same buckets and objects again
# (that is how tests simulate an S3 outage). Delete $S3_DATA_DIR yourself for a clean slate.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/stop-by-pidfile.sh" "${KAFKATOS3_INFRA_DIR:-/tmp/kafkatos3-infra}/s3.pid"
