#!/usr/bin/env bash
# Change-feed benchmark (issue 27): a `gmail-emulator serve` process on
# loopback, local PostgreSQL (a fresh database) or SQLite, and a small HTTP
# receiver (scripts/lib/feed_receiver.py) that records when each event arrives.
#   1. throughput: a backfill of BENCH_MESSAGES (default 3,000) messages
#      leaves its ledger events; `changes --consumer bench --post URL
#      --batch-size BENCH_BATCH` (default 500) delivers them all and exits:
#      events/s over the command's wall time   (target: >= 5,000 events/s)
#   2. latency: `changes --consumer follow --post URL --follow` runs while
#      BENCH_SYNCS (default 1,000) syncs each add one message in Gmail and
#      commit it; per sync, commit-to-POST latency = the receiver's arrival
#      time minus the event's committed_at (one host, one clock), at its
#      worst over the sync's events: p50 / p99 / max   (target: p99 <= 1 s)
# Environment: DATABASE_URL, BENCH_BACKEND=postgres|sqlite, BENCH_MESSAGES,
# BENCH_BATCH, BENCH_SYNCS, BENCH_PROFILE=release|debug (default release),
# KEEP_DB=1, KEEP_WORK=1.
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${BENCH_BACKEND:-postgres}"
case "$backend" in
  postgres)
    # shellcheck source=scripts/lib/postgres.sh
    source scripts/lib/postgres.sh
    ensure_postgres
    command -v psql >/dev/null || { echo "bench-feed: psql is required" >&2; exit 1; }
    ;;
  sqlite) ;;
  *) echo "bench-feed: BENCH_BACKEND is postgres or sqlite" >&2; exit 2 ;;
esac
messages="${BENCH_MESSAGES:-3000}"
batch="${BENCH_BATCH:-500}"
syncs="${BENCH_SYNCS:-1000}"
profile="${BENCH_PROFILE:-release}"

echo "== $profile build" >&2
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" -p cli --bin mailingest >&2
cargo build "${flag[@]}" -p gmail-emulator --bin gmail-emulator >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
mailingest="$target_dir/$profile/mailingest"
emulator="$target_dir/$profile/gmail-emulator"

work="$(mktemp -d)"
pids=()
db_name="mi_bench_feed_$$_$(date +%s)"
admin_url="${DATABASE_URL:-}"
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "$backend" = postgres ] && [ "${KEEP_DB:-0}" != 1 ]; then
    psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
if [ "$backend" = postgres ]; then
  psql "$admin_url" -qtAc "CREATE DATABASE $db_name" >/dev/null
  export DATABASE_URL="${admin_url%/*}/$db_name"
else
  export DATABASE_URL="sqlite:$work/mailingest.db"
fi
export MAILINGEST_STORE="$work/store"
export MAILINGEST_WEBHOOK_SECRET="bench-secret"
export MAILINGEST_QUOTA_UNITS_PER_SEC=1000000
export RUST_LOG="${RUST_LOG:-warn}"

wait_for_line() { # FILE PID
  local _
  for _ in $(seq 1 1200); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

"$emulator" serve --warm --mailbox bench@example.com --messages "$messages" --days 7 --seed 42 \
  >"$work/emulator.out" 2>"$work/emulator.err" &
pids+=("$!")
wait_for_line "$work/emulator.out" "$!" || { cat "$work/emulator.err" >&2; exit 1; }
export GMAIL_ENDPOINT; GMAIL_ENDPOINT="$(head -n 1 "$work/emulator.out")"

python3 scripts/lib/feed_receiver.py "$work/arrivals.tsv" >"$work/receiver.out" 2>"$work/receiver.err" &
pids+=("$!")
wait_for_line "$work/receiver.out" "$!" || { cat "$work/receiver.err" >&2; exit 1; }
receiver="$(head -n 1 "$work/receiver.out")"

echo "== backfill of $messages messages" >&2
"$mailingest" backfill --mailbox bench@example.com --json >"$work/backfill.json"

echo "== 1. throughput" >&2
start="$(date +%s.%N)"
"$mailingest" changes --consumer bench --post "$receiver" --batch-size "$batch"
end="$(date +%s.%N)"
delivered="$(wc -l <"$work/arrivals.tsv")"
python3 - "$delivered" "$start" "$end" "$batch" <<'PY'
import sys
n, start, end, batch = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
wall = end - start
print(f"throughput: {n} events in {wall:.2f} s = {n / wall:,.0f} events/s (batches of {batch}; target >= 5,000)")
PY

echo "== 2. latency over $syncs syncs" >&2
# The follower first delivers the backlog (a new consumer starts from the
# first event); the measurement starts once it has caught up.
"$mailingest" changes --consumer follow --post "$receiver" --batch-size "$batch" --follow \
  2>"$work/follow.err" &
pids+=("$!")
for _ in $(seq 1 600); do
  lag="$("$mailingest" status --json | python3 -c '
import json, sys
lags = [c["lag_events"] for m in json.load(sys.stdin) for c in m.get("consumers", []) if c["consumer"] == "follow"]
print(lags[0] if lags else -1)')"
  [ "$lag" = 0 ] && break
  sleep 0.5
done
[ "$lag" = 0 ] || { echo "bench-feed: the follower never caught up" >&2; cat "$work/follow.err" >&2; exit 1; }
measure_from="$(python3 -c 'import time; print(time.time())')"
control="${GMAIL_ENDPOINT%/}/_emulator/mailboxes/bench@example.com/messages?labels=INBOX"
for i in $(seq 1 "$syncs"); do
  printf 'From: bench <b@example.org>\r\nTo: bench@example.com\r\nSubject: feed %s\r\nMessage-ID: <feed-%s@example.org>\r\n\r\nbody %s\r\n' "$i" "$i" "$i" \
    | curl -fsS -o /dev/null --data-binary @- "$control"
  "$mailingest" sync --mailbox bench@example.com >/dev/null
done
sleep 2
python3 - "$work/arrivals.tsv" "$measure_from" "$syncs" <<'PY'
import sys
from datetime import datetime
path, since, syncs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
worst = {}
for line in open(path):
    key, committed, run, arrived = line.rstrip("\n").split("\t")
    c = datetime.fromisoformat(committed.replace("Z", "+00:00")).timestamp()
    if c < since:
        continue
    worst[run] = max(worst.get(run, 0.0), float(arrived) - c)
lat = sorted(worst.values())
if not lat:
    sys.exit("bench-feed: no sync's events arrived")
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"latency: {len(lat)} syncs (of {syncs}) delivered; commit-to-POST p50 {pick(0.5)*1000:.0f} ms, "
      f"p99 {pick(0.99)*1000:.0f} ms, max {lat[-1]*1000:.0f} ms (target p99 <= 1000 ms)")
PY
