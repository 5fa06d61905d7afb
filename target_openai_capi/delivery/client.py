"""The HTTP layer: prepare a body, post it, return status/headers/body; never judges a status."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import requests
import requests.adapters
import requests.auth
import urllib3
import urllib3.connection
import urllib3.exceptions

from target_openai_capi.delivery.errors import TransportError
from target_openai_capi.log_safety import cut_text, is_loopback, redact
from target_openai_capi.main_thread_signals import termination_signals_blocked

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Server messages end up in logs and dead-letter lines; an HTML error page should not.
MAX_MESSAGE_CHARS = 500

# requests' exceptions that mean "the request's shape or the config is wrong": retrying cannot help.
_NOT_RETRYABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.TooManyRedirects,
)


@dataclass(frozen=True)
class ClientSettings:
    """Where and as whom to post; api_key is kept out of repr so it cannot reach a log."""

    api_url: str
    pixel_id: str
    api_key: str = field(repr=False)
    user_agent: str
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0


@dataclass(frozen=True)
class Response:
    """What the server answered, uninterpreted."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively whatever the mapping type."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def message(self, secret: str = "") -> str:
        """The server's error message (JSON error.message, message or detail, else the text),
        one line, `secret` removed before it is cut to length (so no part of it survives)."""
        text = _json_message(self.body)
        if text is None:
            text = self.body.decode("utf-8", errors="replace").strip()
        # (the API words one answer "403: unknown pid": messages that show the status add it)
        text = text.removeprefix(f"{self.status}: ")
        location = self.header("Location") if 300 <= self.status < 400 else None
        if location:  # (api_url is not the API's: the redirect says where it moved)
            moved = _where_to(location)
            text = f"redirects to {moved}: {text}" if text.strip() else f"redirects to {moved}"
        return one_line(text, secret) or f"HTTP {self.status} with an empty body"


def _where_to(location: str) -> str:
    """A redirect's Location as a message shows it: no query, fragment or credentials (with a
    scheme or without); one that is no URL is said to be unreadable."""
    location = location.strip()
    if "://" not in location:  # ("user:pass@host/path": what ends in @ before a / goes)
        head, slash, rest = location.partition("/")
        location = head.rpartition("@")[2] + slash + rest
    try:
        parts = urlsplit(location)
    except ValueError:  # ("http://[bad/v1": an unclosed IPv6 host)
        return "a Location that is not a URL"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc, query="", fragment=""))


# Control characters that are not whitespace (NULs of a binary body, a terminal's ESC): each
# run is shown as one replacement character, never written to a terminal or a log as it is.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x9f]+")


def one_line(text: str, secret: str = "") -> str:
    """Text as one line of at most MAX_MESSAGE_CHARS, `secret` removed first, and the
    credentials of an Authorization header a proxy's error page echoes."""
    text = " ".join(redact(text, secret).split())  # one line, whatever the server sent
    if "uthorization" in text or "UTHORIZATION" in text:
        text = _AUTHORIZATION.sub(r"\1***", text)
    text = _CONTROLS.sub("\ufffd", text)
    return cut_text(text, MAX_MESSAGE_CHARS)  # (a value quoted across the cut: hidden)


# An Authorization or Proxy-Authorization header's credentials, as an echoed request shows them.
_AUTHORIZATION = re.compile(
    r"((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|digest|negotiate)?\s*)"
    r"[A-Za-z0-9+/=._~-]{6,}",
    re.IGNORECASE,
)


def _json_message(body: bytes) -> str | None:
    """Pick the message out of the usual JSON error shapes, or None when there is none."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        data = error
    elif isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            param = data.get("param")
            # OpenAI-style errors may name the offending field separately from the message.
            if isinstance(param, str) and param and param not in value:
                return f"{value} (param: {param})"
            return value
    return None


def _root_cause(e: BaseException) -> BaseException:
    """The innermost exception requests and urllib3 wrapped (e.g. RemoteDisconnected)."""
    for _ in range(10):  # wrappers nest a few levels deep; never loop on a cycle
        inner = getattr(e, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(e.args) if isinstance(a, BaseException)), None)
        if inner is None:
            break
        e = inner
    return e


def prepare_body(
    events: Sequence[Mapping[str, Any] | orjson.Fragment],
    validate_only: bool,
    integration_source: str | None = None,
) -> bytes:
    """Serialise one request body; validate_only is always explicit, as in the API's examples."""
    body: dict[str, Any] = {}
    if integration_source is not None:
        body["integration_source"] = integration_source
    body["validate_only"] = validate_only
    body["events"] = events if isinstance(events, list) else list(events)
    return orjson.dumps(body)


def is_api_error(body: bytes) -> bool:
    """True for a body in the API's error shape ({"error": {"message": ...}}): an answer from
    the API itself, not an HTML page from a proxy or gateway in front of it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def is_web_page(response: Response) -> bool:
    """True for an answer whose body is markup, an HTML page (a proxy's sign-in page, a website
    at a wrong api_url): never the API's answer, whatever its status. (The API's success body is
    not documented; an empty, JSON or plain-text one is taken as its own, whatever its
    Content-Type says.)"""
    return response.body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


_EVENT_PARAM = re.compile(r"events\[(\d{1,9})\]")


def named_events(body: bytes, secret: str = "") -> dict[int, str]:
    """The events an error body names, by index in the request, each with its message
    (one line, `secret` removed).

    The live API answers a bad event with OpenAI's error shape, naming it in `param` and in each
    entry of `errors` (`"param": "events[1].data.type"`; capi-spec.md, Errors). That is observed,
    not documented: {} when the body names none, and the caller then finds the events itself.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return {}
    named: dict[int, str] = {}
    entries = error.get("errors")
    for entry in [*(entries if isinstance(entries, list) else []), error]:
        if not isinstance(entry, dict) or not isinstance(entry.get("param"), str):
            continue
        match = _EVENT_PARAM.match(entry["param"])
        message = entry.get("message")
        if match is not None and isinstance(message, str) and message:
            named.setdefault(int(match.group(1)), one_line(message, secret))
    return named


_FIRST_EVENT = re.compile(r"events\[0\](?!\d)")


def names_the_only_event(message: str) -> bool:
    """True when the message refusing a request of one event names it (`events[0]`, in words
    or in `param`); one naming another position (`events[7]`) names no event the request had,
    and one naming none may be about every request (a gateway, the key, an API change)."""
    return _FIRST_EVENT.search(message) is not None


# Fields of the request itself (the query's pid, the body's own fields): an error naming one in
# `param` refuses the request whatever events it holds (the sandbox and the observed API answer
# `400 Missing required query parameter: pid` with `"param": "pid"`).
REQUEST_FIELDS = frozenset({"pid", "validate_only", "integration_source"})


def refused_request_field(body: bytes) -> str | None:
    """The request field (REQUEST_FIELDS) an error body names in its `param`, or None: such a
    refusal is of the request, not of any event in it, so splitting the batch cannot help."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) and param in REQUEST_FIELDS else None


_LEADING_EVENT = re.compile(r"events\[\d{1,9}\](\.?)")
_AT_EVENT = re.compile(r" at events\[\d{1,9}\](?=[.,;:]|$)")


def about_the_event(message: str) -> str:
    """An answer's message about one event, without the position the request gave it: the
    request may be a part of the batch (or the event alone), so "events[0].timestamp_ms: ..."
    names no event a person can find. "events[3].data.type: x" -> "data.type: x";
    "events[3]: x" -> "the event: x"; "Invalid event at events[3]." (the API's own words, when
    it lists no errors) -> "Invalid event."; any other message is kept as it is."""
    match = _LEADING_EVENT.match(message)
    if match is None:
        return _AT_EVENT.sub("", message)
    rest = message[match.end() :]
    if match.group(1):
        return rest or "the event"
    return f"the event{rest}" if rest[:1] in ("", ":", " ", ",") else message


def events_url(api_url: str, pixel_id: str) -> str:
    """The endpoint with ?pid= added, keeping any query the configured URL already has."""
    parts = urlsplit(api_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pid"]
    query.append(("pid", pixel_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


# Error answers are a few hundred bytes; more than this is not an answer worth reading.
MAX_RESPONSE_BYTES = 1024 * 1024


class _NoRedirects(requests.Session):
    """A session that never looks at a redirect: requests, even with allow_redirects=False,
    reads a 3xx answer's whole body (to find the next request) before the caller sees it, so a
    307 with an endless or decompression-bomb body grew without bound. The 3xx comes back
    unread, to _read_answer's limit and deadline like any answer, and is reported."""

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())


class _Overdue(Exception):
    """The answer did not arrive whole before the request's deadline."""


def _read_answer(reply: requests.Response, deadline: float) -> bytes:
    """The answer's body as it arrives, up to MAX_RESPONSE_BYTES, before the deadline."""
    parts: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        if time.monotonic() > deadline:
            raise _Overdue
        chunk = reply.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)[:MAX_RESPONSE_BYTES]


class _Watch:
    """One request's deadline, kept by a timer thread: at the deadline the connection's socket
    is shut down, which ends any wait on it (requests' timeouts bound each read of the socket,
    not the answer: a server, or a proxy answering CONNECT, that sends its status line and
    headers a byte at a time would hold a request for as long as it likes)."""

    def __init__(self) -> None:
        self.connection: Any = None  # the urllib3 connection the request goes out on
        # Its socket once the request is sent: an answer that ends the connection takes the
        # socket over (the connection forgets it), and its body is read from there.
        self.sock: Any = None
        self.overdue = False
        self._done = False
        self._lock = threading.Lock()

    def cut(self) -> None:
        """At the deadline (the timer thread): end the request's wait on its socket."""
        with self._lock:
            if self._done:  # (the request ended as the timer fired: its connection may
                return  # already carry the next request)
            self.overdue = True
            sock = getattr(self.connection, "sock", None) or self.sock
            while sock is not None and not isinstance(sock, socket.socket):
                sock = getattr(sock, "socket", None)  # (TLS through an HTTPS proxy: a wrapper)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def done(self) -> None:
        """The request ended: the timer cuts nothing from now on."""
        with self._lock:
            self._done = True


_watches = threading.local()  # .watch: the _Watch of the request this thread is sending


def _watched(base: type[Any]) -> type[Any]:
    """A subclass of a urllib3 connection class that tells this thread's _Watch it is used."""

    class Watched(base):  # type: ignore[misc]
        def connect(self) -> None:  # (a proxy's CONNECT exchange happens here)
            watch = getattr(_watches, "watch", None)
            if watch is not None:
                watch.connection = self
            super().connect()

        def request(self, *args: Any, **kwargs: Any) -> Any:
            watch = getattr(_watches, "watch", None)
            if watch is not None:
                watch.connection = self
            sent = super().request(*args, **kwargs)
            if watch is not None:
                watch.sock = self.sock
            return sent

    # Named as its base in messages: "HTTPConnection(host=..., port=...): Failed to establish
    # a new connection", not this module's helper.
    Watched.__name__ = Watched.__qualname__ = base.__name__
    return Watched


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPConnection)


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPSConnection)


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its direct and proxied connections watched (a SOCKS proxy's are not:
    their reads are bounded one at a time, as before)."""

    _POOLS: ClassVar[dict[str, type[Any]]] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if type(manager) is urllib3.ProxyManager:
            manager.pool_classes_by_scheme = self._POOLS
        return manager


class _Bearer(requests.auth.AuthBase):
    """Bearer-token auth whose repr does not show the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the Authorization header on one outgoing request."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(<redacted>)"


class Client:
    """Posts prepared bodies over one keep-alive session per thread."""

    def __init__(self, settings: ClientSettings) -> None:
        """Compute the URL once; sessions are made lazily, one per calling thread."""
        self.settings = settings
        self.url = events_url(settings.api_url, settings.pixel_id)
        # For messages: the pixel id is named separately, and a query string adds only noise.
        self.display_url = urlunsplit(urlsplit(settings.api_url)._replace(query="", fragment=""))
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        """This thread's session: requests.Session is not safe to share between threads."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _NoRedirects()
            session.headers.update(
                {
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": self.settings.user_agent,
                }
            )
            session.auth = _Bearer(self.settings.api_key)
            for prefix in ("http://", "https://"):
                session.mount(prefix, _WatchedAdapter())
            # Proxy and CA-bundle settings from the environment apply, read once here rather
            # than on every request (requests walks the whole environment each time); a
            # ~/.netrc entry is not read, so it cannot replace the key.
            from_env = session.merge_environment_settings(self.url, {}, None, None, None)
            session.trust_env = False
            if not is_loopback(urlsplit(self.url).hostname or ""):
                # (the local sandbox is reached directly: through a proxy, the key would
                # travel in plain http:// to another host)
                session.proxies.update(from_env["proxies"])
            session.verify = from_env["verify"]
            session.cert = from_env["cert"]
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def post(self, body: bytes) -> Response:
        """Post one body; raises only TransportError, never on a status code.

        The whole exchange, from connecting to the answer's last byte, has one deadline
        (read_timeout_s), and at most MAX_RESPONSE_BYTES of the answer are read: a server that
        trickles its answer or never ends it cannot hold a request or fill memory.
        """
        total = self.settings.read_timeout_s
        deadline = time.monotonic() + total
        session = self._session()
        watch = _watches.watch = _Watch()
        timer = threading.Timer(total, watch.cut)
        timer.daemon = True
        with termination_signals_blocked():  # (only the main thread takes them)
            timer.start()
        try:
            reply = session.post(
                self.url,
                data=body,
                timeout=(min(self.settings.connect_timeout_s, total), total),
                # A redirected POST turns into a GET in requests; surface the 3xx instead.
                allow_redirects=False,
                stream=True,
            )
            try:
                content = _read_answer(reply, deadline)
            finally:
                reply.close()
            if watch.overdue:  # (the cut may read as the answer's end: it is no answer)
                raise _Overdue
        except _Overdue:
            raise self._overdue(total) from None
        except ValueError as e:
            # Python's URL parser, on a proxy's unbalanced `[` or `]` (`Invalid IPv6 URL`),
            # before any request: the proxy is unreadable, whatever its words quote.
            if isinstance(e, requests.exceptions.RequestException) or self._proxy() is None:
                raise self._transport_error(e) from e
            raise self._unreadable_proxy() from None
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
        ) as e:
            if watch.overdue or isinstance(e, requests.exceptions.ReadTimeout):
                raise self._overdue(total) from None
            raise self._transport_error(e) from e
        except OSError as e:
            # Not a network error (those are requests' own): a file the environment names that
            # cannot be read, before any connection (REQUESTS_CA_BUNDLE pointing nowhere). No
            # retry reads it.
            detail = redact(" ".join(str(e).split()), self.settings.api_key)
            hint = (
                ". Check REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE in the environment: point them at "
                "a CA bundle file, or unset them"
                if "CA certificate bundle" in detail
                else ""
            )
            raise TransportError(
                f"cannot post to {self.display_url}: {type(e).__name__}: {detail}{hint}",
                retryable=False,
            ) from None
        finally:
            watch.done()
            timer.cancel()
            _watches.watch = None
        # (Cut just as the answer ended, a connection back in the pool is found dropped, and
        # replaced, at its next use.)
        return Response(status=reply.status_code, headers=reply.headers, body=content)

    def _overdue(self, total: float) -> TransportError:
        """The error for a request past its deadline (built only when one is): through the
        proxy, if one carries it (it may be the one that did not answer)."""
        proxy = self._proxy()
        through = "" if proxy is None else f" through the proxy {without_credentials(proxy, proxy)}"
        return TransportError(
            f"the answer from {self.display_url}{through} took longer than {total:g} s "
            "(request_timeout_seconds)"
        )

    def _transport_error(self, e: Exception) -> TransportError:
        """Translate a library exception into our error, saying whether a retry can help."""
        cause = _root_cause(e)
        detail = redact(" ".join(str(cause).split()), self.settings.api_key)
        proxy = self._proxy()
        shown = ""
        if proxy is not None:
            detail = without_credentials(detail, proxy)
            shown = without_credentials(proxy, proxy)
            if (
                "Failed to parse" in detail
                or "is not a valid host or port" in detail
                or isinstance(e, requests.exceptions.InvalidProxyURL)
            ):
                # (a parser's words would quote the user and the password up to the `#`)
                return self._unreadable_proxy()
            if isinstance(e, requests.exceptions.ProxyError) and "WRONG_VERSION_NUMBER" in detail:
                # (HTTPS_PROXY=https://proxy:3128, a proxy that speaks plain HTTP: no retry helps)
                return TransportError(
                    f"the proxy {shown} does not answer in TLS: its port speaks plain HTTP. Write "
                    "it with http:// in the environment (HTTPS_PROXY=http://host:port, the "
                    "connection to the API through it is TLS all the same).",
                    retryable=False,
                )
            if _PROXY_REFUSED.search(detail):  # (its answer to CONNECT, raised as an error)
                return TransportError(
                    f"the proxy {shown} refused to carry the request to {self.display_url} "
                    "(407 Proxy Authentication Required). Check the proxy settings (HTTPS_PROXY, "
                    "HTTP_PROXY) and their credentials.",
                    retryable=False,
                )
        detail = cut_text(detail, MAX_MESSAGE_CHARS)
        kind = type(cause).__name__
        check = "Check api_url."
        if proxy is not None:
            check = f"Check api_url, and the proxy the environment names ({shown}: HTTPS_PROXY)."
        if isinstance(e, _NOT_RETRYABLE):
            return TransportError(
                f"cannot post to {self.display_url}: {kind}: {detail}. {check}",
                retryable=False,
            )
        if isinstance(e, requests.exceptions.SSLError) and "WRONG_VERSION_NUMBER" in detail:
            # (a plain-HTTP answer where TLS was spoken: no retry makes it TLS)
            return TransportError(
                f"{self.display_url} does not answer in TLS: its port speaks plain HTTP, not "
                f"https ({kind}: {detail}). Check the scheme and the port of api_url.",
                retryable=False,
            )
        if isinstance(e, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in detail:
            return TransportError(
                f"TLS certificate of {self.display_url} could not be verified: {detail}",
                retryable=False,
            )
        if proxy is not None:
            return TransportError(
                f"network error talking to {self.display_url} through the proxy {shown}: "
                f"{kind}: {detail}"
            )
        return TransportError(f"network error talking to {self.display_url}: {kind}: {detail}")

    def _unreadable_proxy(self) -> TransportError:
        return TransportError(
            f"the proxy the environment names for {self.display_url} (HTTPS_PROXY, HTTP_PROXY "
            "or ALL_PROXY) is not a URL that can be read: write it as "
            "http://user:password@host:port, a #, /, ?, [ or ] in the user or password "
            "percent-encoded (%23, %2F, %3F, %5B, %5D).",
            retryable=False,
        )

    def _proxy(self) -> str | None:
        """The proxy requests go through (from HTTPS_PROXY, HTTP_PROXY, ALL_PROXY), or None."""
        proxies = self._session().proxies
        scheme = urlsplit(self.url).scheme
        found = proxies.get(scheme) or proxies.get("all")
        return str(found) if found else None

    def close(self) -> None:
        """Close every thread's session (and its pooled connections)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()  # a later post opens a fresh session
        for session in sessions:
            session.close()


# A proxy's 407 to CONNECT as urllib3 words it ("Tunnel connection failed: 407 Proxy
# Authentication Required"): not any "407" in an error's text (a proxy on port 8407).
_PROXY_REFUSED = re.compile(r"Tunnel connection failed: 407\b|\b407 Proxy Authentication")


def without_credentials(text: str, proxy: str) -> str:
    """The text without the proxy URL's user and password, whole or in part (a parser's error
    may quote the part before a `#` or `/` in the password). A proxy written without its
    scheme (`user:password@host:3128`, which requests takes as http://) has them too."""
    _, scheme_separator, after_scheme = proxy.partition("://")
    userinfo = (after_scheme if scheme_separator else proxy).rpartition("@")[0]
    if not userinfo:
        return text
    text = text.replace(userinfo + "@", "").replace(userinfo, "***")
    for piece in re.split(r"[:#/?]", userinfo):
        if len(piece) >= 3:
            text = text.replace(piece, "***")
    return text
