"""A counting stand-in for the Conversions API, so throughput runs measure the contender.

    python benchmarks/counting_server.py [--port 0] [--latency-ms 0]

The sandbox (`openai-capi-sandbox`) checks every event against the contract and stores it in
SQLite: 100-180 µs of CPU an event, which on a 2-core machine is slower than the fastest
contenders, and taken from the cores the contender runs on (the real API's work is done on its
own machines), so runs would time the sandbox. This server only parses each body (orjson),
counts the events and answers 200, after `--latency-ms` (the concurrency runs set 100);
`GET /sandbox/stats` reports the counts in the sandbox's shape (accepted, requests,
max_in_flight). Whether the events are right is checked elsewhere: the test suite runs
the target against the sandbox, and benchmarks/agree.py checks the floors send the target's events.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted = self.requests = self.in_flight = self.max_in_flight = 0


COUNTS = _Counts()
LATENCY_S = 0.0  # --latency-ms: how long each POST waits before it is answered


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (~40 ms a request), which one request at a time would pay each
    # time. The sandbox turns it off too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, payload: object) -> None:
        body = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        with COUNTS.lock:
            COUNTS.in_flight += 1
            COUNTS.max_in_flight = max(COUNTS.max_in_flight, COUNTS.in_flight)
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if LATENCY_S:
                time.sleep(LATENCY_S)
            events = orjson.loads(body).get("events") or []
            with COUNTS.lock:
                COUNTS.requests += 1
                COUNTS.accepted += len(events)
            self._answer(200, {"received": len(events)})
        finally:
            with COUNTS.lock:
                COUNTS.in_flight -= 1

    def do_GET(self) -> None:
        with COUNTS.lock:
            stats = {
                "accepted": COUNTS.accepted,
                "requests": COUNTS.requests,
                "max_in_flight": COUNTS.max_in_flight,
            }
        self._answer(200, stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0, help="wait before each answer")
    args = parser.parse_args()
    global LATENCY_S
    LATENCY_S = args.latency_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"counting server: listening on http://{host}:{port}/v1/events", file=sys.stderr)
    sys.stderr.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
