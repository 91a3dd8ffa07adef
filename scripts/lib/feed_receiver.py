#!/usr/bin/env python3
"""A change-feed receiver for scripts/bench-feed.sh: checks each POST's
HMAC-SHA256 signature (MAILINGEST_WEBHOOK_SECRET), answers 200, and appends
one line per event to the file given: key, committed_at, run, arrival time
(Unix seconds). Prints its URL on the first line of stdout."""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["MAILINGEST_WEBHOOK_SECRET"].encode()
OUT = open(sys.argv[1], "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.time()
        want = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, self.headers.get("X-Mailingest-Signature", "")):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        lines = []
        for e in json.loads(body)["events"]:
            lines.append(f'{e["idempotency_key"]}\t{e["committed_at"]}\t{e["run"]}\t{arrived:.6f}\n')
        OUT.write("".join(lines))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"http://127.0.0.1:{server.server_address[1]}/hook", flush=True)
server.serve_forever()
