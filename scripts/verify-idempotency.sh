#!/usr/bin/env bash
# Proves a re-run is idempotent: backs up the same mailbox and the same pinned
# window twice into a fresh database, and fails unless the second run inserted
# 0 threads, messages and attachments, stored 0 new blobs, fetched 0 messages,
# left every table count unchanged, and `mailingest verify` is clean.
# Prints the before/after counts.
#
# Source: by default a `gmail-emulator serve` process started here on a free
# loopback port (seeded synthetic mailbox). A real mailbox instead when
# MAILINGEST_VERIFY_MAILBOX is set; then MAILINGEST_VERIFY_AUTH (an --auth
# spec: installed:FILE, service-account:FILE, token-env:VAR) is required and
# GMAIL_ENDPOINT is honoured if set.
#
# Environment: DATABASE_URL (a server; a fresh database is created on it and
# dropped afterwards unless KEEP_DB=1), MAILINGEST_STORE (default: a temp dir),
# VERIFY_DAYS (window length, default 7), VERIFY_MESSAGES (emulator size,
# default 500), CARGO_PROFILE (dev|release, default dev).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
ensure_postgres

command -v psql >/dev/null || { echo "verify-idempotency: psql is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "verify-idempotency: python3 is required" >&2; exit 1; }

profile="${CARGO_PROFILE:-dev}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [ "$profile" = dev ]; then bindir="$target_dir/debug"; else bindir="$target_dir/$profile"; fi
echo "== building ($profile)" >&2
cargo build --profile "$profile" -p cli --bin mailingest >&2
mailingest="$bindir/mailingest"

work="$(mktemp -d)"
emulator_pid=""
db_name="mi_verify_$$_$(date +%s)"
admin_url="$DATABASE_URL"
cleanup() {
  if [ -n "$emulator_pid" ]; then kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  if [ "${KEEP_DB:-0}" != 1 ]; then
    psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

psql "$admin_url" -qtAc "CREATE DATABASE $db_name" >/dev/null
export DATABASE_URL="${admin_url%/*}/$db_name"
export MAILINGEST_STORE="${MAILINGEST_STORE:-$work/store}"
echo "== database $db_name, store $MAILINGEST_STORE" >&2

auth_args=()
if [ -n "${MAILINGEST_VERIFY_MAILBOX:-}" ]; then
  mailbox="$MAILINGEST_VERIFY_MAILBOX"
  [ -n "${MAILINGEST_VERIFY_AUTH:-}" ] || {
    echo "verify-idempotency: MAILINGEST_VERIFY_AUTH (an --auth spec) is required with MAILINGEST_VERIFY_MAILBOX" >&2
    exit 2
  }
  auth_args=(--auth "$MAILINGEST_VERIFY_AUTH")
  echo "== source: real mailbox $mailbox" >&2
else
  mailbox="verify@example.com"
  echo "== building gmail-emulator ($profile)" >&2
  cargo build --profile "$profile" -p gmail-emulator --bin gmail-emulator >&2
  "$bindir/gmail-emulator" serve --mailbox "$mailbox" --messages "${VERIFY_MESSAGES:-500}" \
    --days "$(( ${VERIFY_DAYS:-7} > 1 ? ${VERIFY_DAYS:-7} - 1 : 1 ))" >"$work/emulator.out" 2>"$work/emulator.err" &
  emulator_pid=$!
  for _ in $(seq 1 600); do
    [ -s "$work/emulator.out" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; exit 1; }
    sleep 0.1
  done
  GMAIL_ENDPOINT="$(head -n 1 "$work/emulator.out")"
  [ -n "$GMAIL_ENDPOINT" ] || { echo "verify-idempotency: the emulator printed no URL" >&2; exit 1; }
  export GMAIL_ENDPOINT
  echo "== source: gmail-emulator at $GMAIL_ENDPOINT" >&2
fi

# Pin the window once, so both runs ask for exactly the same thing.
until_s="$(date +%s)"
since_s="$(( until_s - ${VERIFY_DAYS:-7} * 86400 ))"
window=(--since "$since_s" --until "$until_s")

counts() {
  psql "$DATABASE_URL" -qtAF ' ' -c "SELECT
      (SELECT count(*) FROM mail_threads), (SELECT count(*) FROM mail_messages),
      (SELECT count(*) FROM mail_attachments), (SELECT count(*) FROM blobs),
      (SELECT count(*) FROM ledger_events WHERE event_type NOT LIKE 'sync.%')"
}

backfill() {
  local out="$1" code=0
  "$mailingest" "${auth_args[@]}" backfill --mailbox "$mailbox" "${window[@]}" --json >"$out" || code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
    echo "verify-idempotency: backfill exited $code" >&2
    exit 1
  fi
}

echo "== run 1" >&2
backfill "$work/run1.json"
before="$(counts)"
echo "== run 2 (same mailbox, same window)" >&2
backfill "$work/run2.json"
after="$(counts)"

verify_code=0
"$mailingest" "${auth_args[@]}" verify --mailbox "$mailbox" >"$work/verify.txt" || verify_code=$?

python3 - "$work/run1.json" "$work/run2.json" "$before" "$after" "$verify_code" "$work/verify.txt" <<'PY'
import json, sys
run1, run2 = (json.load(open(p)) for p in sys.argv[1:3])
before, after = sys.argv[3].split(), sys.argv[4].split()
verify_code = int(sys.argv[5])
names = ["threads", "messages", "attachments", "blobs", "ledger row events"]
print(f"{'table':<18} {'after run 1':>12} {'after run 2':>12}")
for n, b, a in zip(names, before, after):
    print(f"{n:<18} {b:>12} {a:>12}")
def calls(run, method):
    return run.get("api", {}).get("methods", {}).get(method, {}).get("calls", 0)
def fetched(run):
    return calls(run, "messages.get")
print(f"run 1: messages inserted {run1['messages']['inserted']}, blobs stored {run1['blobs']['stored']}, "
      f"messages.get calls {fetched(run1)}")
print(f"run 2: threads {run2['threads']}, messages {run2['messages']}, attachments {run2['attachments']}, "
      f"blobs {run2['blobs']}, messages fetched {run2['messages_fetched']}, messages.get calls {fetched(run2)}, "
      f"threads.get calls {calls(run2, 'threads.get')} (threads with mail outside the window or in spam/trash are re-read)")
problems = []
for entity in ("threads", "messages", "attachments"):
    if run2[entity]["inserted"] != 0:
        problems.append(f"run 2 inserted {run2[entity]['inserted']} {entity}")
    if run2[entity]["updated"] != 0:
        problems.append(f"run 2 updated {run2[entity]['updated']} {entity}")
if run2["blobs"]["stored"] != 0:
    problems.append(f"run 2 stored {run2['blobs']['stored']} new blobs")
if run2["messages_fetched"] != 0 or fetched(run2) != 0:
    problems.append(f"run 2 fetched messages ({run2['messages_fetched']}, {fetched(run2)} messages.get calls)")
if before != after:
    problems.append(f"table counts changed: {before} -> {after}")
if run1["messages"]["inserted"] == 0 and before[1] == "0":
    problems.append("run 1 stored nothing: the check would prove nothing")
if verify_code != 0:
    problems.append(f"mailingest verify exited {verify_code}:\n" + open(sys.argv[6]).read())
for p in problems:
    print("FAIL:", p)
print("idempotency: " + ("FAILED" if problems else "OK"))
sys.exit(1 if problems else 0)
PY
