#!/usr/bin/env bash
# The run command: makes sure PostgreSQL answers, applies the schema, and runs
# the main job against the built-in Gmail emulator (a seeded synthetic mailbox).
# Extra arguments go to `mailingest backfill`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
ensure_postgres
cargo build --release --locked -p cli --bin mailingest
bin=target/release/mailingest
export MAILINGEST_STORE="${MAILINGEST_STORE:-$PWD/.cache/demo-store}"
"$bin" migrate
if "$bin" backfill --help >/dev/null 2>&1; then
  exec "$bin" backfill --demo --mailbox demo@example.com "$@"
fi
