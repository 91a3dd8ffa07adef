#!/usr/bin/env bash
# Import throughput A/B (issue 28): the import step of scripts/bench-import.sh
# only, for two or more mailingest binaries run in turn on one machine, so a
# change is compared with its base within one session (these machines vary 2x
# from one hour to the next; figures from different sessions do not compare).
#
#   scripts/bench-import-ab.sh base=/path/to/old/mailingest new=target/release/mailingest
#
# One `gmail-emulator serve` (release build of this checkout, 2026 quota
# table) and its Takeout file, downloaded once. Each run: a fresh PostgreSQL
# database and fs store, `sync` first (else the last run's writeback lands in
# this one), then `import` under /usr/bin/time. One line per run: messages,
# wall, msg/s, the process's user and sys CPU, PostgreSQL's CPU (its server
# processes' and reaped backends'), peak RSS, voluntary context switches.
# Environment: DATABASE_URL (an admin URL; default the local postgres),
# ROUNDS (3), BENCH_MESSAGES (10000), COLD=1 to drop the page cache before
# each run (root only; steadier figures), KEEP_WORK=1.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$#" -ge 1 ] || { echo "usage: $0 NAME=BINARY [NAME=BINARY...]" >&2; exit 2; }
for arg in "$@"; do
  [ -x "${arg#*=}" ] || { echo "bench-import-ab: ${arg#*=} is not an executable" >&2; exit 2; }
done
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
ensure_postgres
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
rounds="${ROUNDS:-3}"
messages="${BENCH_MESSAGES:-10000}"

echo "== release build of the emulator" >&2
cargo build --release -p gmail-emulator --bin gmail-emulator >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
emulator="$target_dir/release/gmail-emulator"

work="$(mktemp -d)"
emu_pid=""
dbs=()
cleanup() {
  [ -n "$emu_pid" ] && { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
  for d in "${dbs[@]}"; do
    psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
export RUST_LOG="${RUST_LOG:-warn}"
export MAILINGEST_QUOTA_TABLE=2026 MAILINGEST_QUOTA_UNITS_PER_SEC=1000000 MAILINGEST_MAX_CONCURRENT_REQUESTS=32

"$emulator" serve --warm --mailbox bench@example.com --messages "$messages" --days 7 --seed 42 \
  --quota-table 2026 >"$work/emu.out" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 1 1200); do [ -s "$work/emu.out" ] && break; sleep 0.1; done
url="$(head -n 1 "$work/emu.out")"
url="${url%/}"
[ -n "$url" ] || { cat "$work/emu.err" >&2; exit 1; }
export GMAIL_ENDPOINT="$url"
curl -sf "$url/_emulator/mailboxes/bench@example.com/takeout" -o "$work/takeout.mbox"
ls -l "$work/takeout.mbox" >&2

# PostgreSQL's CPU in clock ticks: every server process's own, plus what the
# postmaster collected from backends that exited (each run's connections).
postmaster="$(pgrep -o -x postgres || true)"
pg_ticks() {
  {
    [ -n "$postmaster" ] && awk '{print $16 + $17}' "/proc/$postmaster/stat" 2>/dev/null
    for p in $(pgrep -u postgres 2>/dev/null); do
      awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null
    done
  } | awk '{s += $1} END {print s + 0}'
}
hz="$(getconf CLK_TCK)"

run=0
for round in $(seq 1 "$rounds"); do
  for arg in "$@"; do
    name="${arg%%=*}"; bin="${arg#*=}"; run=$((run + 1))
    d="mi_bench_ab_${run}_$$"
    psql "$admin_url" -qtAc "CREATE DATABASE $d" >/dev/null
    dbs+=("$d")
    export DATABASE_URL="${admin_url%/*}/$d" MAILINGEST_STORE="$work/store-$run"
    sync
    if [ "${COLD:-0}" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
    sleep 1
    before="$(pg_ticks)"
    code=0
    /usr/bin/time -f "%e %U %S %M %w" -o "$work/time" \
      "$bin" import --mailbox bench@example.com "$work/takeout.mbox" --json >"$work/run.json" 2>"$work/run.err" || code=$?
    sleep 0.3
    after="$(pg_ticks)"
    if [ "$code" -ne 0 ]; then
      echo "bench-import-ab: $name exited $code" >&2
      tail -n 20 "$work/run.err" >&2
      exit 1
    fi
    read -r wall user sys rss vcs <"$work/time"
    python3 - "$work/run.json" "$round" "$name" "$wall" "$user" "$sys" "$rss" "$vcs" "$before" "$after" "$hz" <<'PY'
import json, sys
path, rnd, name, wall, user, sys_, rss, vcs, before, after, hz = sys.argv[1:]
n = json.load(open(path))["run"]["messages"]["inserted"]
wall = float(wall)
pg = (float(after) - float(before)) / float(hz)
print(f"round {rnd} {name:10s} {n} msgs {wall:6.2f} s {n / wall:7,.0f} msg/s  "
      f"user {float(user):.2f} s sys {float(sys_):.2f} s pg {pg:.2f} s  "
      f"peak RSS {int(rss) // 1024} MB  voluntary cs {vcs}")
PY
    # Stores stay until the end: removing 500 MB of files just before the
    # next run slowed its file creation.
    psql "$admin_url" -qtAc "DROP DATABASE $d WITH (FORCE)" >/dev/null
  done
done
