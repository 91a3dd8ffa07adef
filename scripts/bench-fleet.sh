#!/usr/bin/env bash
# Fleet benchmark (issue 25), not a timed test: three `mailingest worker`
# processes share one PostgreSQL database and serve BENCH_FLEET_MAILBOXES
# (default 20) mailboxes of one Cloud project on the 2026 quota table, under
# a project budget of BENCH_FLEET_BUDGET units a minute (default 4,000) that
# the emulator enforces as a sliding minute across all mailboxes
# (--project-quota-per-min), while each mailbox keeps its own 6,000 a minute.
# Target: 0 project rate-limit answers, every mailbox synced, and the fleet's
# spend per minute close to the budget (the bucket runs at 95% of it).
# Environment: DATABASE_URL (admin URL), BENCH_PROFILE (release | dev).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
ensure_postgres

n="${BENCH_FLEET_MAILBOXES:-20}"
budget="${BENCH_FLEET_BUDGET:-4000}"
messages="${BENCH_FLEET_MESSAGES:-15}"
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
db_name="mi_fleet_$$_$(date +%s)"
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
psql "$admin_url" -qtAc "CREATE DATABASE $db_name" >/dev/null
export DATABASE_URL="${admin_url%/*}/$db_name"
export MAILINGEST_STORE="$work/store"
export RUST_LOG="${RUST_LOG:-warn}"
unset MAILINGEST_QUOTA_UNITS_PER_SEC MAILINGEST_QUOTA_UNITS_PER_MIN MAILINGEST_QUOTA_TABLE

mailboxes=()
for i in $(seq -w 1 "$n"); do mailboxes+=("fleet$i@example.com"); done
mb_args=()
for m in "${mailboxes[@]}"; do mb_args+=(--mailbox "$m"); done
"$emulator" serve --warm --messages "$messages" --days 6 --seed 16 --quota-table 2026 \
  --quota-per-min 6000 --project-quota-per-min "$budget" "${mb_args[@]}" >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/emu.out" ] && break; sleep 0.1; done
url="$(head -n 1 "$work/emu.out")"
export GMAIL_ENDPOINT="$url"
for m in "${mailboxes[@]}"; do "$mailingest" mailbox add "$m" >/dev/null; done

echo "== 3 workers, $n mailboxes x $messages messages, project budget $budget units/min" >&2
start="$(date +%s.%N)"
for w in 1 2 3; do
  "$mailingest" --project-quota-units-per-min "$budget" worker --interval 1h --poll 1s \
    --concurrency 4 --verify-every off >"$work/w$w.out" 2>"$work/w$w.err" &
  pids+=($!)
done
for _ in $(seq 1 1200); do
  done_count="$(psql "$DATABASE_URL" -qtAc "SELECT count(DISTINCT mailbox_id) FROM sync_runs WHERE status = 'completed'")"
  [ "$done_count" -ge "$n" ] && break
  sleep 0.5
done
end="$(date +%s.%N)"
curl -fsS "${url%/}/_emulator/stats" >"$work/stats.json"
python3 - "$work/stats.json" "$start" "$end" "$budget" "$n" "$done_count" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
start, end, budget, n, done = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
units = sum(v.get("quotaUnits", 0) for mb in stats["mailboxes"].values() for v in mb.values())
wall = end - start
refusals = stats.get("refusals", {})
print(f"mailboxes synced {done}/{n} in {wall:.1f}s; units charged {units}; "
      f"{units / wall * 60:.0f} units/min against a budget of {budget:.0f}")
print(f"refusals by reason: {refusals or 'none'} (target: no projectRateLimitExceeded)")
PY
