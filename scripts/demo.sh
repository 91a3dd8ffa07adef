#!/usr/bin/env bash
# The run command: makes sure PostgreSQL answers, applies the schema, and runs
# the main job against the built-in Gmail emulator (a seeded synthetic mailbox).
# Extra arguments go to `mailingest backfill`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
user_database="${DATABASE_URL:-}"
ensure_postgres
# Unless told otherwise, a database of its own, so the demo never writes into `postgres`.
if [ -z "$user_database" ] && command -v psql >/dev/null 2>&1; then
  demo_db=mailingest_demo
  if [ "$(psql "$DATABASE_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$demo_db'")" != 1 ]; then
    psql "$DATABASE_URL" -qc "CREATE DATABASE $demo_db"
  fi
  export DATABASE_URL="${DATABASE_URL%/*}/$demo_db"
fi
cargo build --release --locked -p cli --bin mailingest
bin=target/release/mailingest
export MAILINGEST_STORE="${MAILINGEST_STORE:-$PWD/.cache/demo-store}"
"$bin" migrate
"$bin" backfill --demo --mailbox demo@example.com "$@"
"$bin" verify --offline --deep --mailbox demo@example.com
