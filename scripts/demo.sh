#!/usr/bin/env bash
# The run command: backs up a seeded synthetic mailbox, served by the built-in
# Gmail emulator, into the embedded database (SQLite) and a local store under
# .cache/demo, then verifies it. Needs no server. Set DATABASE_URL (postgres://…)
# and MAILINGEST_STORE to use PostgreSQL or S3 instead. Extra arguments go to
# `mailingest backfill`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p cli --bin mailingest
bin=target/release/mailingest
export DATABASE_URL="${DATABASE_URL:-sqlite:$PWD/.cache/demo/mailingest.db}"
export MAILINGEST_STORE="${MAILINGEST_STORE:-$PWD/.cache/demo/store}"
"$bin" backfill --demo --mailbox demo@example.com "$@"
"$bin" verify --offline --deep --mailbox demo@example.com
