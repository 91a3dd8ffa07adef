#!/usr/bin/env bash
# Large-message benchmark (issue 15): BENCH_LARGE_COUNT (default 40) messages of
# 25-35 MB each (Gmail's maximum is about 35 MB with its encoding), imported into
# a `gmail-emulator serve` process on loopback, backed up by the release binary
# into a fresh PostgreSQL database and an fs store in a temp dir.
# Prints: messages stored, wall seconds, MB/s, peak RSS (target: < 600 MB).
# Environment: DATABASE_URL, BENCH_LARGE_COUNT, MAILINGEST_MAX_INFLIGHT_MB (the
# in-flight budget under test; default the binary's own).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
ensure_postgres
command -v psql >/dev/null || { echo "bench-large: psql is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-large: /usr/bin/time is required (apt-get install time)" >&2; exit 1; }

count="${BENCH_LARGE_COUNT:-40}"
echo "== release build" >&2
cargo build --release -p cli --bin mailingest >&2
cargo build --release -p gmail-emulator --bin gmail-emulator >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
mailingest="$target_dir/release/mailingest"
emulator="$target_dir/release/gmail-emulator"

work="$(mktemp -d)"
emu_pid=""
db_name="mi_bench_large_$$_$(date +%s)"
admin_url="$DATABASE_URL"
cleanup() {
  [ -n "$emu_pid" ] && { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
  psql "$admin_url" -qtAc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $count messages of 25-35 MB" >&2
mkdir -p "$work/mail"
python3 - "$work/mail" "$count" <<'PY'
import base64, email.utils, os, random, sys, time
out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(15)
now = time.time()
for i in range(count):
    # Raw size target 25-35 MB; base64 adds a third, so the attachment is 3/4 of it.
    raw_target = rng.randint(25_000_000, 35_000_000)
    payload = os.urandom(raw_target * 3 // 4 - 2000)
    body = base64.encodebytes(payload).decode()
    date = email.utils.formatdate(now - 3600 * (i + 1))
    msg = (
        f"From: Big Sender <big{i}@example.org>\r\nTo: ann@example.com\r\n"
        f"Subject: large message {i}\r\nDate: {date}\r\nMessage-ID: <large-{i}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\n"
        "Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + body.replace("\n", "\r\n") + "--b--\r\n"
    )
    with open(os.path.join(out, f"{i:03}.eml"), "w") as f:
        f.write(msg)
PY
du -sh "$work/mail" >&2

"$emulator" serve --warm --messages 0 --mailbox ann@example.com --import "$work/mail" >"$work/emu.out" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 1 3000); do
  [ -s "$work/emu.out" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emu.err" >&2; exit 1; }
  sleep 0.1
done
url="$(head -n 1 "$work/emu.out")"
[ -n "$url" ] || { echo "bench-large: the emulator printed no URL" >&2; exit 1; }
mailbox="ann@example.com"

psql "$admin_url" -qtAc "CREATE DATABASE $db_name" >/dev/null
export DATABASE_URL="${admin_url%/*}/$db_name"
export MAILINGEST_STORE="$work/store"
export GMAIL_ENDPOINT="$url"
export RUST_LOG="${RUST_LOG:-warn}"
"$mailingest" migrate >/dev/null

echo "== backfill" >&2
start="$(date +%s.%N)"
/usr/bin/time -v -o "$work/time" "$mailingest" backfill --mailbox "$mailbox" --quota-units-per-sec 100000 --json \
  >"$work/run.json" 2>"$work/run.err" || { cat "$work/run.err" >&2; cat "$work/run.json" >&2; exit 1; }
end="$(date +%s.%N)"
rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")"
bytes="$(du -sb "$work/mail" | cut -f1)"
python3 - "$work/run.json" "$start" "$end" "$rss_kb" "$bytes" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
rss_mb = int(sys.argv[4]) / 1024
mb = int(sys.argv[5]) / 1e6
stored = s["messages"]["inserted"]
print(f"messages stored   {stored}")
print(f"raw MB            {mb:,.0f}")
print(f"wall              {wall:.1f} s   ({mb / wall:,.1f} MB/s)")
print(f"peak RSS          {rss_mb:,.0f} MB   (target < 600 MB)")
PY
