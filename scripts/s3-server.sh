#!/usr/bin/env bash
# shellcheck shell=bash
#
# S3-compatible test server for the store crate's S3 conformance tests (moto server, pinned).
#
# Source it and call the functions (this is what scripts/test.sh does):
#     source scripts/s3-server.sh
#     s3_server_start          # installs moto once (cached), starts it on a free loopback port
#     trap s3_server_stop EXIT
# s3_server_start exports AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION=us-east-1 and MAILINGEST_TEST_S3_BUCKET (already created).
# With S3_SERVER_CLOCK_FILE=PATH set, the server's clock is off by the seconds PATH
# holds (e.g. -172800: objects are stamped two days old); scripts/soak.sh uses it.
#
# Or run it directly: it starts the server, prints the exports, and stays in the foreground
# until interrupted.
#
# Why moto 5.2.5: verified to answer a second signed `PUT` with `If-None-Match: *` with 412 and
# to store/return x-amz-checksum-sha256; it installs from PyPI in ~35 s into a virtualenv under
# the git-ignored .cache/ (no compiler needed). Limits, verified: moto does NOT check
# credentials (so wrong credentials can only be tested against a real S3) and does NOT reject
# a PutObject whose x-amz-checksum-sha256 mismatches the body (real S3 answers 400 BadDigest).
#
# Safe under `set -euo pipefail` in the caller: every command that may fail is tested.

S3_SERVER_MOTO_VERSION="5.2.5"
_s3_server_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3_SERVER_VENV="${S3_SERVER_VENV:-$_s3_server_root/.cache/moto-venv}"
S3_SERVER_PID="${S3_SERVER_PID:-}"
S3_SERVER_LOG="${S3_SERVER_LOG:-}"

# Install moto[server] into the venv unless the pinned version is already there.
s3_server_install() {
    local venv="$S3_SERVER_VENV"
    if [[ -x "$venv/bin/python" ]] &&
        "$venv/bin/python" - "$S3_SERVER_MOTO_VERSION" >/dev/null 2>&1 <<'PY'
import sys, importlib.metadata as m
sys.exit(0 if m.version("moto") == sys.argv[1] else 1)
PY
    then
        return 0
    fi
    echo "s3-server: installing moto[server]==$S3_SERVER_MOTO_VERSION into $venv" >&2
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv"; then
        echo "s3-server: python3 -m venv failed (install python3-venv)" >&2
        return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$S3_SERVER_MOTO_VERSION"; then
        echo "s3-server: pip install moto[server]==$S3_SERVER_MOTO_VERSION failed" >&2
        return 1
    fi
}

# Start the server on a free loopback port, wait for it, create the test bucket, export the env.
s3_server_start() {
    s3_server_stop # a second start must not orphan the first server
    s3_server_install || return 1
    local py="$S3_SERVER_VENV/bin/python"
    local attempt port
    S3_SERVER_LOG="${S3_SERVER_LOG:-$_s3_server_root/.cache/moto-server.log}"
    for attempt in 1 2 3; do
        # Ask the kernel for a free port; another process may grab it before moto binds,
        # hence the retry loop.
        port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" || return 1
        if [[ -n "${S3_SERVER_CLOCK_FILE:-}" ]]; then
            # A store whose clock is off: LastModified is moto's time plus the
            # seconds in this file (read on every write, so it can change mid-run).
            "$py" - "$S3_SERVER_CLOCK_FILE" -H 127.0.0.1 -p "$port" >"$S3_SERVER_LOG" 2>&1 <<'PY' &
import datetime, sys
import moto.s3.models as s3_models
from moto.server import main
clock_file, base = sys.argv[1], s3_models.utcnow
def skewed():
    try:
        with open(clock_file) as f:
            offset = float(f.read().strip() or 0)
    except (OSError, ValueError):
        offset = 0.0
    return base() + datetime.timedelta(seconds=offset)
s3_models.utcnow = skewed
sys.exit(main(sys.argv[2:]))
PY
        else
            "$S3_SERVER_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_SERVER_LOG" 2>&1 &
        fi
        S3_SERVER_PID=$!
        if "$py" - "$port" "$S3_SERVER_PID" <<'PY'
import sys, time, socket, os
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 30
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)  # server died (port taken?)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
        then
            break
        fi
        kill "$S3_SERVER_PID" 2>/dev/null || true
        wait "$S3_SERVER_PID" 2>/dev/null || true
        S3_SERVER_PID=""
        echo "s3-server: attempt $attempt on port $port failed; log: $S3_SERVER_LOG" >&2
    done
    if [[ -z "$S3_SERVER_PID" ]]; then
        echo "s3-server: could not start moto_server" >&2
        return 1
    fi

    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    # Fixed dummy credentials: real ones from a developer's environment must never be sent
    # to a test server (moto accepts any).
    export AWS_ACCESS_KEY_ID="testing"
    export AWS_SECRET_ACCESS_KEY="testing"
    export AWS_REGION="us-east-1"
    export MAILINGEST_TEST_S3_BUCKET="${MAILINGEST_TEST_S3_BUCKET:-mailingest-test}"
    # Keep a developer's ~/.aws profile or service endpoint from redirecting the tests.
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 || true

    if ! "$py" - <<'PY'
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
bucket = os.environ["MAILINGEST_TEST_S3_BUCKET"]
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
PY
    then
        echo "s3-server: creating bucket $MAILINGEST_TEST_S3_BUCKET failed" >&2
        s3_server_stop
        return 1
    fi
    echo "s3-server: moto $S3_SERVER_MOTO_VERSION at $AWS_ENDPOINT_URL (pid $S3_SERVER_PID), bucket $MAILINGEST_TEST_S3_BUCKET" >&2
}

# Stop the server started by s3_server_start (idempotent; safe in an EXIT trap).
s3_server_stop() {
    if [[ -n "${S3_SERVER_PID:-}" ]]; then
        kill "$S3_SERVER_PID" 2>/dev/null || true
        wait "$S3_SERVER_PID" 2>/dev/null || true
        S3_SERVER_PID=""
    fi
    return 0
}

# Executed directly (not sourced): run in the foreground and print the environment.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    s3_server_start
    trap s3_server_stop EXIT
    trap 'exit 130' INT TERM
    echo "export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
    echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    echo "export AWS_REGION=$AWS_REGION"
    echo "export MAILINGEST_TEST_S3_BUCKET=$MAILINGEST_TEST_S3_BUCKET"
    wait "$S3_SERVER_PID"
fi
