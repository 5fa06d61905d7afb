"""Tests of the HTTP layer: body and URL preparation, response messages, transport errors."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import orjson
import pytest
from conftest import API_KEY, PIXEL_ID

import target_openai_capi.delivery.client as client_module
from target_openai_capi.config import DEFAULT_API_URL
from target_openai_capi.delivery.client import (
    MAX_MESSAGE_CHARS,
    MAX_RESPONSE_BYTES,
    Client,
    ClientSettings,
    Response,
    about_the_event,
    events_url,
    named_events,
    prepare_body,
)
from target_openai_capi.delivery.errors import TransportError

SECRET = "sk-svcacct-test-secret-never-printed"


def settings(api_url: str, api_key: str = SECRET, pixel_id: str = "px_1") -> ClientSettings:
    return ClientSettings(
        api_url=api_url,
        pixel_id=pixel_id,
        api_key=api_key,
        user_agent="target-openai-capi/test",
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
    )


EVENT = {"id": "order_1", "type": "order_created", "timestamp_ms": 1, "data": {"type": "contents"}}


@pytest.mark.parametrize(
    ("events", "validate_only", "expected"),
    [
        ([EVENT], False, {"validate_only": False, "events": [EVENT]}),
        ([EVENT, EVENT], True, {"validate_only": True, "events": [EVENT, EVENT]}),
        ((EVENT,), False, {"validate_only": False, "events": [EVENT]}),  # any sequence
        ([], True, {"validate_only": True, "events": []}),
    ],
)
def test_prepare_body(events: list[dict], validate_only: bool, expected: dict) -> None:
    assert orjson.loads(prepare_body(events, validate_only)) == expected


def test_prepare_body_carries_integration_source_at_the_top() -> None:
    body = prepare_body([{"id": "a"}], True, "target-openai-capi")
    assert body.startswith(b'{"integration_source":"target-openai-capi","validate_only":true,')
    assert orjson.loads(body)["events"] == [{"id": "a"}]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        # The live API's answer for a bad event (capi-spec.md, Errors), verbatim.
        (
            b'{"error": {"message": "Invalid event at events[1]. See errors for details.", '
            b'"type": "invalid_request_error", "param": "events[1]", "code": "invalid_event", '
            b'"errors": [{"message": "events[1].data.type must be a supported data type.", '
            b'"param": "events[1].data.type", "code": "missing_event_data_type"}]}}',
            {1: "events[1].data.type must be a supported data type."},
        ),
        (
            b'{"error": {"message": "event_timestamp_ms must be within the last 7 days.", '
            b'"param": "events[0].timestamp_ms", "code": "event_timestamp_too_old"}}',
            {0: "event_timestamp_ms must be within the last 7 days."},
        ),
        (
            b'{"error": {"message": "bad", "param": "events[2]", "errors": ['
            b'{"message": "x", "param": "events[4].id"}, {"message": "y", "param": null}]}}',
            {4: "x", 2: "bad"},
        ),
        (b'{"error": {"message": "Missing required field: events", "param": null}}', {}),
        (b'{"error": {"message": "no", "param": "integration_source"}}', {}),
        (b"<html><body>400 Bad Request</body></html>", {}),
        (b'{"error": "flat"}', {}),
        (b"[1, 2]", {}),
    ],
)
def test_named_events(body: bytes, named: dict[int, str]) -> None:
    assert named_events(body) == named


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # The sandbox's and the API's form: the request's position, then the field.
        ("events[0].timestamp_ms: older than 7 days", "timestamp_ms: older than 7 days"),
        ("events[617].data.contents[2].amount: x", "data.contents[2].amount: x"),
        ("events[3]: is not an object", "the event: is not an object"),
        ("events[3]", "the event"),
        ("events[3].", "the event"),
        # Anything else is the API's own words.
        (
            "Event timestamp must be within the last 7 days.",
            "Event timestamp must be within the last 7 days.",
        ),
        ("see events[2] below", "see events[2] below"),
        # The API's top-level message, when it lists no errors: its position goes.
        ("Invalid event at events[7].", "Invalid event."),
        (
            "Invalid event at events[1]. See errors for details.",
            "Invalid event. See errors for details.",
        ),
        ("events[2]x: y", "events[2]x: y"),
        ("", ""),
    ],
)
def test_a_rejection_says_what_is_wrong_without_the_requests_position(
    message: str, expected: str
) -> None:
    assert about_the_event(message) == expected


def test_prepare_body_is_compact_utf8() -> None:
    body = prepare_body([{"id": "é", "type": "custom"}], False)
    assert body == '{"validate_only":false,"events":[{"id":"é","type":"custom"}]}'.encode()


@pytest.mark.parametrize(
    ("api_url", "pixel_id", "expected"),
    [
        (DEFAULT_API_URL, "px_1", f"{DEFAULT_API_URL}?pid=px_1"),  # (built, never requested)
        ("http://127.0.0.1:8080/v1/events", "abc", "http://127.0.0.1:8080/v1/events?pid=abc"),
        ("https://h/v1/events?x=1", "p", "https://h/v1/events?x=1&pid=p"),
        ("https://h/v1/events?pid=old", "new", "https://h/v1/events?pid=new"),
        ("https://h/v1/events", "a b&c", "https://h/v1/events?pid=a+b%26c"),
    ],
)
def test_events_url(api_url: str, pixel_id: str, expected: str) -> None:
    assert events_url(api_url, pixel_id) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error": {"message": "Missing required field: events"}}',
            "Missing required field: events",
        ),
        (
            b'{"error": {"message": "bad value", "param": "events[3].timestamp_ms"}}',
            "bad value (param: events[3].timestamp_ms)",
        ),
        (
            b'{"error": {"message": "events[3].amount is bad", "param": "events[3].amount"}}',
            "events[3].amount is bad",
        ),
        (
            b'{"message": "Missing scopes: ads.third_party_events.write"}',
            "Missing scopes: ads.third_party_events.write",
        ),
        (b'{"error": "rate limited"}', "rate limited"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b"upstream connect error\n  or disconnect", "upstream connect error or disconnect"),
        (b'["not", "an", "object"]', '["not", "an", "object"]'),
        (b'{"error": {"code": 7}}', '{"error": {"code": 7}}'),
        (b"", "HTTP 418 with an empty body"),
        (b"  \n ", "HTTP 418 with an empty body"),
        (b"caf\xe9", "caf\ufffd"),
        # A terminal's escape sequence and a binary body's NULs are never written as they are.
        (b"\x1b[2Jgone\x00\x00\x00", "\ufffd[2Jgone\ufffd"),
    ],
)
def test_response_message(body: bytes, expected: str) -> None:
    assert Response(status=418, headers={}, body=body).message() == expected


def test_response_message_is_truncated() -> None:
    message = Response(status=502, headers={}, body=b"<html>" + b"x" * 5000).message()
    assert len(message) == MAX_MESSAGE_CHARS
    assert message.startswith("<html>xxx")
    assert message.endswith("…")


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Location": "https://h/v1/events?pid=px_1"}, b"", "redirects to https://h/v1/events"),
        ({"location": "/elsewhere#x"}, b"Moved", "redirects to /elsewhere: Moved"),
        ({"Location": "https://user:s3cret@h:8443/v1"}, b"", "redirects to https://h:8443/v1"),
        ({"Location": "u:s3cret@h/x?k=1"}, b"", "redirects to h/x"),
        ({"Location": "http://[bad/v1"}, b"", "redirects to a Location that is not a URL"),
        ({}, b"", "HTTP 307 with an empty body"),
    ],
)
def test_a_redirect_says_where_it_leads_without_its_query(
    headers: dict[str, str], body: bytes, expected: str
) -> None:
    assert Response(status=307, headers=headers, body=body).message() == expected


def test_response_header_is_case_insensitive() -> None:
    response = Response(status=429, headers={"retry-after": "3"}, body=b"")
    assert response.header("Retry-After") == "3"
    assert response.header("X-Missing") is None


def test_settings_repr_hides_the_key() -> None:
    assert SECRET not in repr(settings("https://h/v1/events"))


def unused_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_a_retryable_transport_error() -> None:
    client = Client(settings(f"http://127.0.0.1:{unused_loopback_port()}/v1/events"))
    with pytest.raises(TransportError) as caught:
        client.post(prepare_body([EVENT], False))
    client.close()
    assert caught.value.retryable is True
    assert "network error talking to http://127.0.0.1:" in str(caught.value)
    assert "NewConnectionError: HTTPConnection(host='127.0.0.1', port=" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is not None  # translated with `raise ... from`


@pytest.mark.parametrize("api_url", ["htp://127.0.0.1/v1/events", "127.0.0.1/v1/events"])
def test_malformed_url_is_not_retryable(api_url: str) -> None:
    client = Client(settings(api_url))
    with pytest.raises(TransportError) as caught:
        client.post(b"{}")
    assert caught.value.retryable is False
    assert "Check api_url" in str(caught.value)


def test_read_timeout_is_a_retryable_transport_error() -> None:
    # A listener that accepts and never answers: the read timeout must fire.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = Client(
            ClientSettings(
                api_url=f"http://127.0.0.1:{port}/v1/events",
                pixel_id="px_1",
                api_key=SECRET,
                user_agent="t",
                connect_timeout_s=2.0,
                read_timeout_s=0.2,
            )
        )
        with pytest.raises(TransportError) as caught:
            client.post(b"{}")
        client.close()
    assert caught.value.retryable is True
    assert "took longer than 0.2 s (request_timeout_seconds)" in str(caught.value)


def test_a_redirect_with_an_endless_body_is_read_no_further_than_any_answer() -> None:
    """requests reads a 3xx answer's whole body even when it follows no redirect: a 307 with an
    endless body grew the process without bound until the deadline cut it, then was retried as
    a timeout. It is an answer like any other: read up to its limit, its status reported."""
    chunk = b"moved elsewhere " * 4096

    def serve(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            with contextlib.suppress(OSError):  # (until the client hangs up)
                for _ in range(100_000):  # at most ~6 GB, never reached
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        client = Client(settings(f"http://127.0.0.1:{server.getsockname()[1]}/v1/events"))
        response = client.post(b"{}")
        client.close()
        thread.join(timeout=10)
    assert response.status == 307
    assert 0 < len(response.body) <= MAX_RESPONSE_BYTES
    assert response.message().startswith("redirects to /elsewhere: moved elsewhere moved")


def test_one_session_per_thread() -> None:
    client = Client(settings("http://127.0.0.1:9/v1/events"))
    sessions = []

    def grab() -> None:
        sessions.append(client._session())

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grab()
    grab()
    assert len({id(s) for s in sessions}) == 4  # three threads plus this one, reused here
    client.close()
    assert client._session() is not sessions[-1]  # closed sessions are not reused


class _RecordingProxy:
    """A forward HTTP proxy on loopback that records each request line and relays it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        seen = self.seen
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                # (the API's stand-in host: the sandbox, on this machine)
                target = self.path.replace("://capi.test:", "://127.0.0.1:")
                request = urllib.request.Request(target, body, headers, method="POST")
                try:
                    reply = direct.open(request, timeout=10)
                except urllib.error.HTTPError as e:  # relay error statuses as they are
                    reply = e
                payload = reply.read()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_proxy_from_the_environment_carries_every_request(sandbox, monkeypatch) -> None:
    proxy = _RecordingProxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        # A host of its own (no config check here refuses http:// to it), which the proxy
        # relays to the sandbox; a loopback api_url is reached directly.
        remote = sandbox.url.replace("://127.0.0.1:", "://capi.test:")
        client = Client(settings(remote, api_key=API_KEY, pixel_id=PIXEL_ID))
        local = Client(settings(sandbox.url, api_key=API_KEY, pixel_id=PIXEL_ID))
        for event_id, through in (("via-proxy-1", client), ("via-proxy-2", client)):
            event = {**EVENT, "id": event_id, "timestamp_ms": int(time.time() * 1000) - 1000}
            assert through.post(prepare_body([event], False)).status == 200
        event = {**EVENT, "id": "direct", "timestamp_ms": int(time.time() * 1000) - 1000}
        assert local.post(prepare_body([event], False)).status == 200
        client.close()
        local.close()
    finally:
        proxy.close()
    stored = sorted(e["id"] for e in sandbox.events(PIXEL_ID))
    assert stored == ["direct", "via-proxy-1", "via-proxy-2"]
    assert proxy.seen == [f"POST {client.url}"] * 2


def test_a_key_echoed_across_the_length_cut_leaves_no_part_of_it() -> None:
    key = "sk-svcacct-SECRETSECRETSECRET"
    body = b'{"error": {"message": "' + b"y" * 470 + key.encode() + b'"}}'
    message = Response(status=418, headers={}, body=body).message(key)
    assert "SECRET" not in message
    assert "sk-svca" not in message
    named = named_events(
        b'{"error": {"message": "m", "param": "events[0]", "errors": [{"param": "events[0]",'
        b' "message": "' + b"y" * 490 + key.encode() + b'"}]}}',
        key,
    )
    assert "sk-svca" not in named[0]


def test_a_proxy_trickling_its_connect_answer_cannot_hold_a_request_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deadline covers a proxy's CONNECT exchange too (it happens as the connection is
    made, before the request): a proxy answering a byte at a time held the request for good."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        port = proxy.getsockname()[1]
        heard: list[bytes] = []

        def trickle() -> None:
            conn, _ = proxy.accept()
            with conn:
                heard.append(conn.recv(4096))
                try:
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n")
                    for _ in range(100):
                        conn.sendall(b"X")
                        time.sleep(0.2)
                except OSError:
                    pass

        threading.Thread(target=trickle, daemon=True).start()
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        # (a loopback api_url is reached directly; here, as another host's, by the proxy only)
        monkeypatch.setattr(client_module, "is_loopback", lambda host: False)
        client = Client(
            ClientSettings(
                api_url="https://127.0.0.1:10/v1/events",  # (nothing listens: never contacted)
                pixel_id="px_1",
                api_key=SECRET,
                user_agent="t",
                connect_timeout_s=1.0,
                read_timeout_s=1.0,
            )
        )
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            client.post(b"{}")
        elapsed = time.monotonic() - started
        client.close()
    assert heard
    assert heard[0].startswith(b"CONNECT 127.0.0.1:10 ")
    assert "took longer than 1 s (request_timeout_seconds)" in str(caught.value)
    assert elapsed < 5


@pytest.mark.parametrize(
    ("body", "kind", "page"),
    [
        (b"<!DOCTYPE html><html><title>Sign in</title></html>", "text/html", True),
        (b"\xef\xbb\xbf\r\n  <html>", "text/plain", True),  # markup, whatever the header says
        (b"", "text/html; charset=utf-8", False),  # an empty success body: the API's, maybe
        (b'{"received": 2}', "application/json", False),
        (b"OK", "text/html", False),
    ],
)
def test_a_web_page_is_told_by_its_body(body: bytes, kind: str, page: bool) -> None:
    from target_openai_capi.delivery.client import Response, is_web_page

    assert is_web_page(Response(status=200, headers={"Content-Type": kind}, body=body)) is page


def test_only_a_proxy_s_407_is_taken_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any '407' in a network error's text (a proxy named proxy407, on port 8407) was taken
    for the proxy asking for credentials: not retried, and the wrong advice."""
    import requests

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:8407")  # (never contacted)
    # (no request is made: the errors are given to the client's translation of them)
    monkeypatch.setattr(client_module, "is_loopback", lambda host: False)  # (the proxy's)
    client = Client(settings("https://127.0.0.1:10/v1/events"))
    down = requests.exceptions.ProxyError(
        "HTTPSConnectionPool(host='api.example.invalid', port=443): Max retries exceeded "
        "(Caused by ProxyError('Unable to connect to proxy proxy407.example:8407'))"
    )
    refused = requests.exceptions.ProxyError(
        "Cannot connect to proxy. OSError('Tunnel connection failed: 407 Proxy Authentication "
        "Required')"
    )
    assert client._transport_error(down).retryable
    assert "Proxy Authentication" not in str(client._transport_error(down))
    assert not client._transport_error(refused).retryable
    assert "refused to carry the request" in str(client._transport_error(refused))
    client.close()


def _post_to(answer: Callable[[socket.socket, threading.Event], None], read_timeout_s: float):
    """Post to a loopback server that reads the request's head, then `answer`s on the
    connection until the client is done (the event is set then); the TransportError the post
    must raise, and the seconds it took."""

    def serve(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            with contextlib.suppress(OSError):  # (until the client hangs up)
                answer(conn, release)

    release = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        client = Client(
            ClientSettings(
                api_url=f"http://127.0.0.1:{server.getsockname()[1]}/v1/events",
                pixel_id="px_1",
                api_key=SECRET,
                user_agent="t",
                connect_timeout_s=2.0,
                read_timeout_s=read_timeout_s,
            )
        )
        started = time.monotonic()
        try:
            with pytest.raises(TransportError) as caught:
                client.post(b"{}")
            elapsed = time.monotonic() - started
        finally:
            release.set()
            client.close()
            thread.join(timeout=10)
    return caught.value, elapsed


@pytest.mark.parametrize(
    "framing",
    [b"Connection: close\r\n", b"Transfer-Encoding: chunked\r\n", b"Content-Length: 4000\r\n"],
)
def test_an_answer_cut_at_the_deadline_is_a_timeout_not_the_answer(framing: bytes) -> None:
    """A server that sends its status, its headers and part of its body, then stalls: the part
    read so far must not pass for the whole answer, whatever says where the answer ends (a 400
    cut short reads as no API error, which stops the run; a timeout is retried)."""
    part = b'{"error": {"message": "Invalid event at events[0].", "par'
    body = b"%x\r\n%s\r\n" % (len(part), part) if b"chunked" in framing else part

    def answer(conn: socket.socket, release: threading.Event) -> None:
        head = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        conn.sendall(head + framing + b"\r\n" + body)
        release.wait(10)  # (stalls past the client's deadline)

    error, _ = _post_to(answer, read_timeout_s=0.5)
    assert error.retryable is True
    assert "took longer than 0.5 s (request_timeout_seconds)" in str(error)


@pytest.mark.parametrize("framing", [b"Connection: close\r\n", b"Content-Length: 400\r\n"])
def test_an_answer_trickling_its_body_cannot_hold_a_request_past_its_deadline(
    framing: bytes,
) -> None:
    """request_timeout_seconds bounds the whole exchange, the answer's body too: a server that
    sends a byte of its body just before each read of it would time out held the request for
    up to twice the setting (each read waits that long; the deadline was checked between
    reads only, and the timer's cut missed a socket the answer had taken over)."""

    def answer(conn: socket.socket, release: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n{")
        for _ in range(20):
            if release.wait(0.9):
                break
            conn.sendall(b" ")

    error, elapsed = _post_to(answer, read_timeout_s=1.0)
    assert error.retryable is True
    assert "took longer than 1 s (request_timeout_seconds)" in str(error)
    assert elapsed < 1.5  # (held to the next byte after the deadline, it took ~1.8 s)
