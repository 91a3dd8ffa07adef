#!/usr/bin/env bash
# Quota benchmark (issue 25), not a timed test: mailingest at its defaults
# against a `gmail-emulator serve` that enforces Gmail's per-user limit as a
# sliding 60-second window, on the embedded SQLite database and an fs store.
#   A. 2026 table (6,000 units/min, messages.get 20): first backfill of a 7-day
#      window, then an unchanged re-run.
#      Targets: <= 20.05 units per stored message; 0 rate-limit answers; wall
#      <= 1.03 x the window's best schedule + process start; re-run 0 gets and
#      <= 1% of the first run's units.
#   B. the same on the 2025 table (15,000 units/min, get 5): <= 5.05 units per
#      message, 0 rate-limit answers, wall <= 1.03 x best + start.
#   C. a short sync: 100 new messages after a small backfill, 2026 table:
#      wall far below a minute, 0 rate-limit answers.
#   D. a 2025-table client against a 2026-table Gmail (the mismatch a user on
#      a new project makes): rate-limit answers until it learns the limit, and
#      the one line it prints.
#
# The best schedule a sliding window allows for U units at L units/min: the
# first L go at once, and each later L only when the earlier ones leave the
# window, so U needs ceil(U/L) - 1 full minutes plus the time to spend the
# last share unthrottled: best = (ceil(U/L) - 1) x 60 + T x (U_last / U),
# where T is the same backfill's wall without any quota (measured here too)
# minus process start (the unpaced runs: no quota at the emulator, the client
# paced far above it). U is what the emulator charged.
#
# Environment: BENCH_QUOTA_MESSAGES (default 1000 generated; spam and trash are
# not backed up), BENCH_PROFILE (release | dev, default release).
set -euo pipefail
cd "$(dirname "$0")/.."

n="${BENCH_QUOTA_MESSAGES:-1000}"
profile="${BENCH_PROFILE:-release}"
echo "== $profile build" >&2
cargo build --profile "$profile" -p cli --bin mailingest >&2
cargo build --profile "$profile" -p gmail-emulator --bin gmail-emulator >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
dir="$profile"; [ "$profile" = dev ] && dir=debug
mailingest="$target_dir/$dir/mailingest"
emulator="$target_dir/$dir/gmail-emulator"

work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
export RUST_LOG="${RUST_LOG:-warn}"
unset MAILINGEST_QUOTA_UNITS_PER_SEC MAILINGEST_QUOTA_UNITS_PER_MIN MAILINGEST_QUOTA_TABLE DATABASE_URL MAILINGEST_STORE

# start_emulator NAME ARGS... : sets URL_<NAME>.
start_emulator() {
  local name="$1"; shift
  "$emulator" serve --warm "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  local _
  for _ in $(seq 1 1200); do
    [ -s "$work/$name.out" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  printf -v "URL_$name" '%s' "$(head -n 1 "$work/$name.out")"
}

# run NAME DB ENDPOINT ARGS... : a mailingest command with --json; writes
# NAME.json, NAME.err, NAME.wall.
run() {
  local name="$1" db="$2" endpoint="$3"; shift 3
  local start end code=0
  start="$(date +%s.%N)"
  DATABASE_URL="sqlite:$work/$db.db" MAILINGEST_STORE="$work/$db.store" GMAIL_ENDPOINT="$endpoint" \
    "$mailingest" "$@" --json >"$work/$name.json" 2>"$work/$name.err" || code=$?
  end="$(date +%s.%N)"
  python3 -c "print(f'{$end - $start:.3f}')" >"$work/$name.wall"
  if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
    echo "bench-quota: $name exited $code" >&2; tail -n 20 "$work/$name.err" >&2
    KEEP_WORK=1; exit 1
  fi
}

stats() { curl -fsS "${1%/}/_emulator/stats" >"$work/$2.stats"; }

echo "== A: 2026 table, $n messages, emulator 6,000 units/min sliding" >&2
start_emulator free --mailbox a@example.com --messages "$n" --days 7 --seed 42 --quota-table 2026
start_emulator a --mailbox a@example.com --messages "$n" --days 7 --seed 42 --quota-table 2026 --quota-per-min 6000
MAILINGEST_QUOTA_UNITS_PER_SEC=1000000 run a_free free "$URL_free" backfill --mailbox a@example.com --days 8
run a_first a "$URL_a" backfill --mailbox a@example.com --days 8
stats "$URL_a" a_first
run a_rerun a "$URL_a" backfill --mailbox a@example.com --days 8
stats "$URL_a" a_rerun
for i in 1 2 3; do
  s="$(date +%s.%N)"; DATABASE_URL="sqlite:$work/a.db" MAILINGEST_STORE="$work/a.store" "$mailingest" status --json >/dev/null
  e="$(date +%s.%N)"; python3 -c "print($e - $s)" >>"$work/startup"
done

echo "== B: 2025 table, $n messages, emulator 15,000 units/min sliding" >&2
start_emulator bfree --mailbox b@example.com --messages "$n" --days 7 --seed 42 --quota-table 2025
start_emulator b --mailbox b@example.com --messages "$n" --days 7 --seed 42 --quota-table 2025 --quota-per-min 15000
MAILINGEST_QUOTA_TABLE=2025 MAILINGEST_QUOTA_UNITS_PER_SEC=1000000 run b_free bfree "$URL_bfree" backfill --mailbox b@example.com --days 8
MAILINGEST_QUOTA_TABLE=2025 run b_first b "$URL_b" backfill --mailbox b@example.com --days 8
stats "$URL_b" b_first

echo "== C: 2026 table, a sync of 100 new messages" >&2
start_emulator c --mailbox c@example.com --messages 60 --days 7 --seed 5 --quota-table 2026 --quota-per-min 6000
run c_first c "$URL_c" backfill --mailbox c@example.com --days 8
for i in $(seq 1 100); do
  printf 'From: sender%s@example.org\r\nTo: c@example.com\r\nSubject: new %s\r\nDate: %s\r\nMessage-ID: <new-%s@example.org>\r\n\r\nbody %s\r\n' \
    "$i" "$i" "$(date -R)" "$i" "$i" \
    | curl -fsS -X POST --data-binary @- "${URL_c%/}/_emulator/mailboxes/c@example.com/messages?labels=INBOX" >/dev/null
done
curl -fsS -X POST "${URL_c%/}/_emulator/stats/reset" >/dev/null
run c_sync c "$URL_c" sync --mailbox c@example.com
stats "$URL_c" c_sync

echo "== D: a 2025-table client against a 2026-table Gmail (6,000 units/min)" >&2
start_emulator d --mailbox d@example.com --messages "$n" --days 7 --seed 42 --quota-table 2026 --quota-per-min 6000
MAILINGEST_QUOTA_TABLE=2025 run d_first d "$URL_d" backfill --mailbox d@example.com --days 8
stats "$URL_d" d_first

python3 - "$work" <<'PY'
import json, math, statistics, sys
work = sys.argv[1]
def j(name): return json.load(open(f"{work}/{name}.json"))
def wall(name): return float(open(f"{work}/{name}.wall").read())
def st(name): return json.load(open(f"{work}/{name}.stats"))
def charged(s):
    return sum(v.get("quotaUnits", 0) for mb in s["mailboxes"].values() for v in mb.values())
def refused(s): return sum(s.get("refusals", {}).values())
def gets(s): return s["api"]["methods"].get("messages.get", {}).get("calls", 0)
startup = statistics.median(float(x) for x in open(f"{work}/startup"))
def best(units, limit, free_wall):
    full = math.ceil(units / limit) - 1
    last = units - full * limit
    return full * 60 + max(free_wall - startup, 0) * last / units
rows = [("run", "stored", "wall s", "units (emulator)", "units/msg", "429/403", "best s", "wall/best", "note")]
def row(label, name, free, limit, note):
    s, w, e = j(name), wall(name), st(name)
    u = charged(e); m = s["messages"]["inserted"]
    b = best(u, limit, wall(free)) if free else None
    rows.append((label, m, f"{w:.1f}", u, f"{u/m:.3f}" if m else "-", refused(e),
                 f"{b:.1f}" if b else "-", f"{(w - startup)/b:.3f}" if b else "-", note))
    return s, u
a, ua = row("A 2026 first", "a_first", "a_free", 6000, "target <= 20.05 units/msg, 0 refusals, wall-start <= 1.03 x best")
r = j("a_rerun"); er = st("a_rerun"); ur = charged(er) - ua
rows.append(("A 2026 re-run", r["messages"]["inserted"], f"{wall('a_rerun'):.1f}", ur, "-", refused(er) - refused(st("a_first")),
             "-", "-", f"gets {gets(r)}, units {100*ur/ua:.2f}% of first (target 0 gets, <= 1%)"))
row("B 2025 first", "b_first", "b_free", 15000, "target <= 5.05 units/msg, 0 refusals, <= 1.03 x best")
c = j("c_sync"); ec = st("c_sync")
rows.append(("C 2026 sync +100", c["messages"]["inserted"], f"{wall('c_sync'):.1f}", charged(ec), "-", refused(ec), "-", "-",
             "target: no minute's wait"))
row("D 2025 client, 2026 Gmail", "d_first", None, 6000, f"learned; client rate-limited {j('d_first')['api']['total'].get('rate_limited', 0)}")
widths = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
for x in rows:
    print("  ".join(str(c).ljust(w) for c, w in zip(x, widths)))
print(f"\nprocess start (status --json, median of 3): {startup:.2f}s; no-quota walls: 2026 {wall('a_free'):.1f}s, 2025 {wall('b_free'):.1f}s")
told = [l.strip() for l in open(f"{work}/d_first.err") if "Gmail refuses above" in l]
print(f"D said ({len(told)} line(s)): {told[0] if told else '(nothing)'}")
PY
