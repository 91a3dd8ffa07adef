#!/usr/bin/env bash
# The test command: brings up the test bed (PostgreSQL, an S3-compatible server
# on loopback), then runs the formatting and lint gates and the whole suite.
# Works on a clean machine: whatever is missing is installed or started here.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/s3-server.sh
source scripts/s3-server.sh

ensure_postgres
s3_server_start
trap s3_server_stop EXIT

started=$(date +%s)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
echo "== test bed done in $(( $(date +%s) - started ))s"
