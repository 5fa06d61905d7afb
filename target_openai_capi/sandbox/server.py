"""The sandbox's HTTP server: the Conversions API's POST /v1/events plus inspection endpoints.

HTTP only (parsing requests, writing replies, keep-alive, stopping); what each request is answered
with is app.py's.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from target_openai_capi.sandbox.app import (
    MAX_SHOWN_EVENTS,
    Reply,
    SandboxApp,
    error_reply,
    wall_clock_ms,
)
from target_openai_capi.sandbox.faults import Fault, FaultConfig
from target_openai_capi.sandbox.page import render_page
from target_openai_capi.sandbox.store import StoreClosed

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType

logger = logging.getLogger("target_openai_capi.sandbox")

EVENTS_PATH = "/v1/events"
# The real API's maximum body size is unknown; 4 MiB holds 1,000 events of ~4 KB each.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# A body over the limit is read and thrown away, so the client sees the 413 rather than a reset
# connection; past this much the sandbox stops reading and closes the connection instead.
_MAX_DRAIN_BYTES = 256 * 1024 * 1024
_CHUNK = 64 * 1024
# How often the serving loop checks for stop(); the stdlib's 0.5 s made every stop take that long.
_POLL_INTERVAL_S = 0.02


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its app and its open connections."""

    daemon_threads = True  # an idle keep-alive connection must not keep the process alive

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        """Bind and listen at address."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is normal; anything else is logged, never raised."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        logger.exception("sandbox: error while handling a request from %s", client_address)

    def close_connections(self) -> None:
        """Shut the open client connections so their handler threads end."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """One client connection; HTTP/1.1 keep-alive, so every answer has a Content-Length."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive answers wait ~40 ms for
    # the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        """Register the connection so stop() can close it."""
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client closed first
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request log: it would print the raw request line."""

    def _log(self, status: int | str, events: int | None = None) -> None:
        """One line per request; never headers (the API key), bodies (personal data) nor a
        query string but its pid (a client may put anything there: a key, an email), every
        character a terminal would act on escaped."""
        suffix = "" if events is None else f" events={events}"
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        pid = query.pop("pid", None)
        shown = url.path + (f"?pid={pid[0]}" if pid else "") + (" (query cut)" if query else "")
        shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in shown[:200])
        logger.info("%s %s %s%s", self.command, shown, status, suffix)

    def _send(self, reply: Reply) -> None:
        """Write reply as JSON with a Content-Length."""
        body = orjson.dumps(reply.payload)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_html(self, page: str) -> None:
        body = page.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> tuple[bytes | None, int] | Reply:
        """(body, size); body None when over the limit; a Reply when the length is unusable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return error_reply(411, "Send the body with a Content-Length header")
        try:
            size = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            return error_reply(400, "Invalid Content-Length header")
        if size <= self.server.app.max_body_bytes:
            return self.rfile.read(size), size
        if size > _MAX_DRAIN_BYTES:
            self.close_connection = True
        else:
            left = size
            while left > 0:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
        return None, size

    def do_POST(self) -> None:
        """POST /v1/events and POST /sandbox/reset."""
        url = urlsplit(self.path)
        if url.path == "/sandbox/reset":
            self._read_body()
            self.server.app.reset()
            self._send(Reply(200, {"reset": True}))
            self._log(200)
        elif url.path == EVENTS_PATH:
            self._post_events(parse_qs(url.query).get("pid", [None])[0])
        else:
            self._read_body()
            self._not_found(url.path)

    def _post_events(self, pixel_id: str | None) -> None:
        """Handle one POST /v1/events, counted as in flight until its answer is decided."""
        stats = self.server.app.stats
        stats.request_started()
        in_flight = True
        try:
            reply, fault = self._decide(pixel_id)
            # Count before writing: a client that reads /sandbox/stats after its answer sees it.
            if fault not in (Fault.DROP, Fault.DROP_AFTER):
                stats.answered(reply.status)
            stats.request_ended()
            in_flight = False
            if fault in (Fault.DROP, Fault.DROP_AFTER):
                self.close_connection = True  # hang up without a word
                self._log(f"dropped({fault.value})", reply.events)
            else:
                self._log(reply.status, reply.events)  # first: the client may read logs next
                self._send(reply)
        except StoreClosed:
            self.close_connection = True  # stopped mid-request: hang up like a dying server
        finally:
            if in_flight:
                stats.request_ended()

    def _decide(self, pixel_id: str | None) -> tuple[Reply, Fault | None]:
        """Read the body, wait the injected latency, then fault or process (in that order)."""
        app = self.server.app
        read = self._read_body()
        if isinstance(read, Reply):
            return read, None
        body, size = read
        fault = app.faults.draw()
        latency_ms = app.faults.config.latency_ms
        if latency_ms:
            app.stopping.wait(latency_ms / 1000)
        if fault is not None:
            app.stats.fault(fault.value)
        if fault is Fault.DROP:
            return Reply(0, {}), fault  # nothing processed, nothing stored
        reply = app.fault_reply(fault) if fault is not None else None
        return reply or self._process(pixel_id, body, size), fault

    def _process(self, pixel_id: str | None, body: bytes | None, size: int) -> Reply:
        """The app's answer; a bug in the sandbox answers 500 rather than hanging up."""
        try:
            return self.server.app.post_events(
                self.headers.get("Authorization"), pixel_id, body, size
            )
        except StoreClosed:
            raise
        except Exception as exc:
            logger.exception("sandbox: internal error on POST %s", EVENTS_PATH)
            return error_reply(500, f"Internal sandbox error: {type(exc).__name__}")

    def do_GET(self) -> None:
        """GET / (the event stream page), /sandbox/events?pid=... and /sandbox/stats."""
        url = urlsplit(self.path)
        app = self.server.app
        if url.path == "/":
            try:
                latest = app.store.latest(MAX_SHOWN_EVENTS)
            except StoreClosed:
                self.close_connection = True
                return
            page = render_page(app.stats.snapshot(), latest, list(app.rejections))
            self._send_html(page)
        elif url.path == "/sandbox/events":
            pixel_id = parse_qs(url.query).get("pid", [None])[0]
            try:
                events = app.store.events(pixel_id)
            except StoreClosed:
                self.close_connection = True
                return
            self._send(Reply(200, {"events": events}))
        elif url.path == "/sandbox/stats":
            self._send(Reply(200, app.stats.snapshot()))
        else:
            self._not_found(url.path)
            return
        self._log(200)

    def _not_found(self, path: str) -> None:
        """404 for any other path, listing the ones that exist."""
        known = (
            f"POST {EVENTS_PATH}, GET / (event stream page), GET /sandbox/events, "
            "GET /sandbox/stats, POST /sandbox/reset"
        )
        self._send(error_reply(404, f"No such endpoint: {path} (known: {known})"))
        self._log(404)


class Sandbox:
    """A running sandbox server (serving in a daemon thread)."""

    def __init__(self, server: _Server) -> None:
        """Wrap a bound server and start serving."""
        self._server = server
        self._app = server.app
        host, port = str(server.server_address[0]), int(server.server_address[1])
        display_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{display_host}:{port}"
        self.url = self.base_url + EVENTS_PATH
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"openai-capi-sandbox:{port}",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    def events(self, pid: str | None = None) -> list[dict[str, Any]]:
        """Stored events in arrival order, for one pixel id or all."""
        return self._app.store.events(pid)

    def received_bodies(self) -> list[Any]:
        """The well-formed request bodies received (the last 1,000), oldest first, as parsed."""
        return list(self._app.bodies)

    def stats(self) -> dict[str, Any]:
        """The counters GET /sandbox/stats shows."""
        return self._app.stats.snapshot()

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault settings (the generator restarts from faults.seed)."""
        self._app.faults.configure(faults)

    def reset(self) -> None:
        """Forget stored events and zero the counters."""
        self._app.reset()

    def stop(self) -> None:
        """Stop serving, hang up open connections and close the store (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._app.store.close()

    def __enter__(self) -> Sandbox:
        """`with start_sandbox() as sb:`."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving the block."""
        self.stop()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_keys: Collection[str] | None = None,
    pixel_ids: Collection[str] | None = None,
    db_path: str = ":memory:",
    faults: FaultConfig | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    now_ms: Callable[[], int] | None = None,
    name_params: bool = True,
) -> Sandbox:
    """Start a sandbox on host:port (0: a free port) and return it, already serving.

    api_keys / pixel_ids: when given, only these are valid; otherwise any `sk-svcacct-` key and
    any pixel id are. now_ms: the clock for the 7-day / 10-minute window (tests move it).
    name_params=False: error bodies name no event (no `param`), like a server that does not.
    Raises OSError when the address is in use.
    """
    app = SandboxApp(
        api_keys=api_keys,
        pixel_ids=pixel_ids,
        db_path=db_path,
        faults=faults,
        max_body_bytes=max_body_bytes,
        now_ms=now_ms or wall_clock_ms,
        name_params=name_params,
    )
    try:
        server = _Server((host, port), app)
    except BaseException:
        app.store.close()
        raise
    return Sandbox(server)
