#!/usr/bin/env bash
# Fault soak (issue 15): production faults at once, then proof that nothing was
# lost or doubled. Not a test (it takes minutes and restarts the local
# PostgreSQL cluster): run it by hand and report its figures.
#
#   Two orgs share one database and one bucket: `acme` archives soak01..07,
#   `globex` soak06..12 (soak06 and soak07 are archived by both, one address
#   in two orgs). 3 `mailingest worker` processes (2 for acme, 1 for globex)
#   serve them from a `gmail-emulator serve` process (SOAK_MESSAGES each,
#   default 300) into a fresh database and an S3 store (moto, reached through
#   a TCP proxy that the soak takes down; its clock starts two days behind, so
#   everything written before the gc pass looks two days old to gc).
#   During SOAK_SECONDS (default 150):
#     - Gmail: 5% 500s, a per-mailbox quota below the client's pace (429s);
#     - poison messages in 2 mailboxes (a persistent 500 and a 400 on one id);
#     - mail arriving, moved into and out of SPAM, and deleted, every few seconds;
#     - one PostgreSQL restart (fast mode: every connection cut);
#     - one S3 outage of 20 s (connections refused);
#     - a gc pass per org while the workers run: the store's clock is put
#       right, so every object written so far is past the grace period, and
#       the bytes of mail deleted so far are purged (--purge-deleted-older-than 1s);
#     - one worker killed with SIGKILL and restarted.
#   Then the faults stop (the poison stays), the workers catch up and stop.
# Checks, each printed with its figure; exit 1 if any fails:
#   `verify --full --deep` clean for every mailbox of each org; no duplicate
#   natural key; every poison message quarantined and named by
#   `status --quarantined`; no two runs of one mailbox committed in overlapping
#   time (by ledger order); no object under one org's prefix that only another
#   org records; nothing in an org's trash that one of its rows records.
# Environment: DATABASE_URL, SOAK_MESSAGES, SOAK_SECONDS; SOAK_PG_RESTART=0 skips the
# restart (when other work shares the server; the soak then proves less).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/s3-server.sh
source scripts/s3-server.sh
ensure_postgres
command -v psql >/dev/null || { echo "soak: psql is required" >&2; exit 1; }
command -v curl >/dev/null || { echo "soak: curl is required" >&2; exit 1; }
command -v pg_ctlcluster >/dev/null || { echo "soak: needs the local cluster (pg_ctlcluster)" >&2; exit 1; }

messages="${SOAK_MESSAGES:-300}"
seconds="${SOAK_SECONDS:-150}"
echo "== release build" >&2
cargo build --release -p cli --bin mailingest -p gmail-emulator --bin gmail-emulator >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
mailingest="$target_dir/release/mailingest"
emulator="$target_dir/release/gmail-emulator"

work="$(mktemp -d)"
pids=()
workers=()
proxy_pid=""
db_name="mi_soak_$$_$(date +%s)"
admin_url="$DATABASE_URL"
cleanup() {
  local p
  for p in "${workers[@]}" "${pids[@]}" $proxy_pid; do kill "$p" 2>/dev/null || true; done
  # Wait for what was just killed, not for every child: the S3 test server is
  # a child of this shell too, and a bare `wait` waited for it forever.
  for p in "${workers[@]}" "${pids[@]}" $proxy_pid; do wait "$p" 2>/dev/null || true; done
  s3_server_stop
  psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# The store's clock starts two days behind (see s3-server.sh); the gc pass puts it right.
export S3_SERVER_CLOCK_FILE="$work/s3-clock"
echo -172800 >"$S3_SERVER_CLOCK_FILE"
s3_server_start
moto_port="${AWS_ENDPOINT_URL##*:}"
proxy_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/proxy.py" <<'PY'
# A loopback TCP proxy: killing it is an S3 outage (connection refused).
import asyncio, sys
listen, target = int(sys.argv[1]), int(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", target)
    except Exception:
        cw.close(); return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
start_proxy() {
  python3 "$work/proxy.py" "$proxy_port" "$moto_port" &
  proxy_pid=$!
  sleep 0.3
}
start_proxy

mailboxes=()
for i in $(seq -w 1 12); do mailboxes+=("soak$i@example.com"); done
orgs=(acme globex)
# org → its mailboxes; soak06 and soak07 are in both.
declare -A org_mailboxes=(
  [acme]="${mailboxes[*]:0:7}"
  [globex]="${mailboxes[*]:5:7}"
)
mb_args=()
for m in "${mailboxes[@]}"; do mb_args+=(--mailbox "$m"); done
# The 2025 quota table (5-unit gets) keeps the soak's pace: 150 units/s is 30 gets/s.
"$emulator" serve --warm --messages "$messages" --days 6 --seed 15 --quota-table 2025 --quota-per-sec 150 "${mb_args[@]}" \
  >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/emu.out" ] && break; sleep 0.1; done
url="$(head -n 1 "$work/emu.out")"
[ -n "$url" ] || { cat "$work/emu.err" >&2; exit 1; }
control="${url}_emulator"

psql "$admin_url" -qtAc "CREATE DATABASE $db_name" >/dev/null
export DATABASE_URL="${admin_url%/*}/$db_name"
export MAILINGEST_STORE="s3://$MAILINGEST_TEST_S3_BUCKET/soak-$$"
export AWS_ENDPOINT_URL="http://127.0.0.1:$proxy_port"
export AWS_EC2_METADATA_DISABLED=true
export GMAIL_ENDPOINT="$url"
export MAILINGEST_QUOTA_UNITS_PER_SEC=250
export MAILINGEST_QUOTA_TABLE=2025
export MAILINGEST_GMAIL_MAX_ATTEMPTS=4
export RUST_LOG="${RUST_LOG:-warn}"
for o in "${orgs[@]}"; do
  for m in ${org_mailboxes[$o]}; do
    "$mailingest" --org "$o" mailbox add "$m" --interval-minutes 1 >/dev/null
  done
done

# Poison: one id answering 500 forever, one answering 400, in two mailboxes.
ids_of() { curl -fsS "$control/mailboxes/$1/messages" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["ids"]))'; }
poison_500="$(ids_of "${mailboxes[0]}" | sed -n 7p)"
poison_400="$(ids_of "${mailboxes[1]}" | sed -n 9p)"
faults() {
  curl -fsS -X PUT -H 'content-type: application/json' "$control/faults" \
    -d "{\"errorRate\": $1, \"failingMessages\": {\"$poison_500\": 500, \"$poison_400\": 400}}" >/dev/null
}
faults 0.05

worker_org=(acme acme globex)
start_worker() {
  "$mailingest" --org "${worker_org[$1]}" worker --interval 3s --poll 1s --concurrency 4 \
    >>"$work/worker$1.log" 2>&1 &
  workers[$1]=$!
}
for w in 0 1 2; do start_worker "$w"; done

# Mail keeps arriving and moving in and out of SPAM.
churn() {
  local n=0 m id
  while :; do
    n=$((n + 1))
    m="${mailboxes[$((n % 12))]}"
    printf 'From: churn@example.org\r\nSubject: churn %s\r\n\r\nbody %s\r\n' "$n" "$n" |
      curl -fsS -X POST --data-binary @- "$control/mailboxes/$m/messages?labels=INBOX" >/dev/null || true
    id="$(ids_of "$m" | sed -n "$(( (n * 7) % 50 + 1 ))p")"
    if [ $((n % 5)) -eq 0 ]; then
      curl -fsS -X DELETE "$control/mailboxes/$m/messages/$id" >/dev/null || true
    elif [ $((n % 2)) -eq 0 ]; then
      curl -fsS -X POST -H 'content-type: application/json' "$control/mailboxes/$m/messages/$id/modify" \
        -d '{"addLabelIds":["SPAM"],"removeLabelIds":["INBOX"]}' >/dev/null || true
    else
      curl -fsS -X POST -H 'content-type: application/json' "$control/mailboxes/$m/messages/$id/modify" \
        -d '{"addLabelIds":["INBOX"],"removeLabelIds":["SPAM"]}' >/dev/null || true
    fi
    sleep 2
  done
}
churn &
churn_pid=$!
pids+=("$churn_pid")

started=$(date +%s)
at() { while [ $(( $(date +%s) - started )) -lt "$1" ]; do sleep 1; done; }
at $((seconds * 25 / 100))
if [ "${SOAK_PG_RESTART:-1}" = 1 ]; then
  echo "== t=$(( $(date +%s) - started ))s: PostgreSQL restart" >&2
  pg_ctlcluster --skip-systemctl-redirect -m fast "$(ls /etc/postgresql | sort -V | tail -n 1)" main restart
else
  echo "== t=$(( $(date +%s) - started ))s: PostgreSQL restart skipped (SOAK_PG_RESTART=0)" >&2
fi
at $((seconds * 45 / 100))
echo "== t=$(( $(date +%s) - started ))s: S3 outage, 20 s" >&2
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
sleep 20
start_proxy
at $((seconds * 55 / 100))
echo "== t=$(( $(date +%s) - started ))s: store clock put right; gc pass per org beside the workers" >&2
echo 0 >"$S3_SERVER_CLOCK_FILE"
gc_removed=0
for o in "${orgs[@]}"; do
  rc=0
  "$mailingest" --org "$o" gc --purge-deleted-older-than 1s --json >"$work/gc-$o.json" 2>"$work/gc-$o.err" || rc=$?
  # 75: a mailbox was busy with a run and skipped; anything else is a failure.
  if [ "$rc" != 0 ] && [ "$rc" != 75 ]; then
    echo "gc for $o exited $rc:" >&2; cat "$work/gc-$o.err" >&2
    gc_failed=1
  fi
  echo "   gc $o: rc=$rc $(head -c 400 "$work/gc-$o.json")" >&2
done
at $((seconds * 65 / 100))
echo "== t=$(( $(date +%s) - started ))s: SIGKILL worker 1, restart it" >&2
kill -9 "${workers[1]}"; wait "${workers[1]}" 2>/dev/null || true
start_worker 1
at "$seconds"
echo "== t=$(( $(date +%s) - started ))s: faults off (poison stays), churn stops; catching up" >&2
kill "$churn_pid"; wait "$churn_pid" 2>/dev/null || true
faults 0
# Two full rounds of syncs after the last change: every mailbox completes a
# run that started after this point, twice.
mark="$(psql "$DATABASE_URL" -qtAc "SELECT now()")"
for _ in $(seq 1 240); do
  behind="$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM mailboxes m WHERE (SELECT count(*) FROM sync_runs r
     WHERE r.mailbox_id = m.id AND r.status = 'completed' AND r.started_at > '$mark') < 2")"
  [ "$behind" = 0 ] && break
  sleep 1
done
for w in 0 1 2; do kill -TERM "${workers[$w]}" 2>/dev/null || true; done
for w in 0 1 2; do wait "${workers[$w]}" 2>/dev/null || true; done
workers=()

echo "== checks" >&2
fail=0
check() { if [ "$1" = ok ]; then printf '  ok    %s\n' "$2"; else printf '  FAIL  %s\n' "$2"; fail=1; fi; }
[ "$behind" = 0 ] && check ok "every mailbox caught up (2 completed runs after the faults)" \
  || check fail "$behind mailbox(es) did not catch up"
[ "${gc_failed:-0}" = 0 ] && check ok "gc pass per org beside the workers (exit 0 or 75)" \
  || check fail "a gc pass failed (see above)"
for o in "${orgs[@]}"; do
  clean=0 total=0
  for m in ${org_mailboxes[$o]}; do
    total=$((total + 1))
    if "$mailingest" --org "$o" verify --full --deep --mailbox "$m" >"$work/verify-$o-$m.out" 2>&1; then
      clean=$((clean + 1))
    else
      echo "verify $o $m:" >&2; tail -n 20 "$work/verify-$o-$m.out" >&2
    fi
  done
  [ "$clean" = "$total" ] && check ok "$o: verify --full --deep clean for $clean/$total mailboxes" \
    || check fail "$o: verify --full --deep clean for $clean/$total mailboxes"
done
# Every object key under the bucket's soak prefix, as "<org> <area> <sha256>"
# (area: live or trash).
"$S3_SERVER_VENV/bin/python" - "$MAILINGEST_TEST_S3_BUCKET" "soak-$$" >"$work/objects" <<'PY'
import os, re, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
bucket, root = sys.argv[1], sys.argv[2]
pat = re.compile(r"^" + re.escape(root) + r"/([^/]+)/(\.trash/)?sha256/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root + "/"):
    for o in page.get("Contents", []):
        m = pat.match(o["Key"])
        if m:
            print(m.group(1), "trash" if m.group(2) else "live", m.group(3))
PY
# What each org's rows record: raw and attachment blobs of its mailboxes whose
# bytes were not purged on purpose.
recorded() {
  psql "$DATABASE_URL" -qtAc "
    SELECT DISTINCT s FROM (
      SELECT m.raw_sha256 s, mb.org_id o FROM mail_messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
      UNION ALL
      SELECT a.sha256, mb.org_id FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id
        JOIN mailboxes mb ON mb.id = m.mailbox_id) r
    WHERE r.o = '$1' AND NOT EXISTS (SELECT 1 FROM blob_copies c
                                       WHERE c.org_id = r.o AND c.sha256 = r.s AND c.state = 'purged')" | sort -u
}
for o in "${orgs[@]}"; do recorded "$o" >"$work/recorded-$o"; done
misplaced=0 trashed_recorded=0
for o in "${orgs[@]}"; do
  awk -v o="$o" '$1 == o && $2 == "live" { print $3 }' "$work/objects" | sort -u >"$work/live-$o"
  awk -v o="$o" '$1 == o && $2 == "trash" { print $3 }' "$work/objects" | sort -u >"$work/trash-$o"
  for other in "${orgs[@]}"; do
    [ "$other" = "$o" ] && continue
    # under o's prefix, recorded by the other org and not by o
    n="$(comm -12 "$work/live-$o" "$work/recorded-$other" | comm -23 - "$work/recorded-$o" | wc -l)"
    misplaced=$((misplaced + n))
  done
  # in o's trash (and not live), while one of o's rows records it
  n="$(comm -23 "$work/trash-$o" "$work/live-$o" | comm -12 - "$work/recorded-$o" | wc -l)"
  trashed_recorded=$((trashed_recorded + n))
  echo "   $o: $(wc -l <"$work/live-$o") objects, $(wc -l <"$work/trash-$o") in trash, $(wc -l <"$work/recorded-$o") recorded" >&2
done
[ "$misplaced" = 0 ] && check ok "no object under one org's prefix that only another org records" \
  || check fail "$misplaced object(s) under one org's prefix that only another org records"
[ "$trashed_recorded" = 0 ] && check ok "nothing in trash that a row of its org records" \
  || check fail "$trashed_recorded object(s) in trash that a row of its org records"
quarantined="$(MAILINGEST_ORG=acme "$mailingest" status --quarantined --json)"
for id in "$poison_500" "$poison_400"; do
  if grep -q "\"$id\"" <<<"$quarantined"; then check ok "poison $id quarantined and named"
  else check fail "poison $id not in status --quarantined"; fi
done
overlap="$(psql "$DATABASE_URL" -qtAc "
  WITH r AS (SELECT mailbox_id, run_id, min(seq) lo, max(seq) hi FROM ledger_events
             WHERE event_type <> 'sync.interrupted' GROUP BY mailbox_id, run_id)
  SELECT count(*) FROM r a JOIN r b ON a.mailbox_id = b.mailbox_id AND a.run_id < b.run_id
   AND a.lo < b.hi AND b.lo < a.hi")"
[ "$overlap" = 0 ] && check ok "no two runs of a mailbox committed in overlapping time" \
  || check fail "$overlap pair(s) of runs of one mailbox committed interleaved"

psql "$DATABASE_URL" -qtAc "
  SELECT 'runs: ' || sum(n) || ' (' || string_agg(status || ' ' || n, ', ') || ')' FROM
    (SELECT status, count(*) n FROM sync_runs GROUP BY status) s
  UNION ALL SELECT '  failed: ' || n || ' x ' || e FROM
    (SELECT left(regexp_replace(error, '[0-9]+', 'N', 'g'), 110) e, count(*) n FROM sync_runs
     WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC LIMIT 6) f
  UNION ALL SELECT 'messages stored: ' || count(*) || ', deleted: ' || count(deleted_at) FROM mail_messages
  UNION ALL SELECT 'quarantined now: ' || count(*) FROM quarantined_messages
  UNION ALL SELECT 'ledger events: ' || count(*) FROM ledger_events"
curl -fsS "$control/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
calls = sum(m["calls"] for mb in s["mailboxes"].values() for m in mb.values())
throttled = sum(m["throttled"] for mb in s["mailboxes"].values() for m in mb.values())
faults = s["faultsInjected"]
print(f"gmail requests: {calls}, answered 429: {throttled}, faults injected: {faults}")'
echo "soak: ${seconds}s of faults, 2 orgs, 14 mailbox rows, $((12 * messages)) messages generated"
exit "$fail"
