"""openai-capi-sandbox: run the local Conversions API sandbox from a shell."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from target_openai_capi.sandbox.faults import FaultConfig
from target_openai_capi.sandbox.rules import KEY_PREFIX
from target_openai_capi.sandbox.server import DEFAULT_MAX_BODY_BYTES, EVENTS_PATH, start_sandbox

if TYPE_CHECKING:
    from types import FrameType

PROG = "openai-capi-sandbox"


def _rate(text: str) -> float:
    """An argparse type: a fraction between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (a fraction of requests)")
    return value


def _non_negative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _seconds_or_none(text: str) -> int | None:
    """An argparse type: whole seconds >= 0, or 'none'."""
    return None if text.lower() == "none" else _non_negative(text)


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line, every option documented."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "A local HTTP server that behaves like OpenAI's Conversions API "
            f"(POST {EVENTS_PATH}?pid=...), for tests, demos and CI without credentials. "
            "Inspect it with GET /sandbox/events?pid=..., GET /sandbox/stats and "
            "POST /sandbox/reset."
        ),
        epilog=(
            f"Point the target at it with api_url: http://HOST:PORT{EVENTS_PATH} and any "
            f"'{KEY_PREFIX}...' api_key (or one given with --api-key). Fault rates are "
            "fractions of POST requests; together they may not exceed 1."
        ),
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    server.add_argument(
        "--port",
        type=_non_negative,
        default=8787,
        help="port to listen on; 0 picks a free one (%(default)s)",
    )
    server.add_argument(
        "--db",
        metavar="PATH",
        default=":memory:",
        help="SQLite file that keeps accepted events across restarts (default: in memory)",
    )
    server.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="larger request bodies are answered 413 (%(default)s; the real limit is unknown)",
    )
    server.add_argument("--quiet", action="store_true", help="do not log a line per request")
    server.add_argument(
        "--no-error-param",
        dest="name_params",
        action="store_false",
        help="error bodies name no bad event (no `param`), like a server that does not",
    )
    access = parser.add_argument_group("access")
    access.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help=f"an accepted API key (repeatable); default: any key starting with {KEY_PREFIX}",
    )
    access.add_argument(
        "--pixel-id",
        dest="pixel_ids",
        action="append",
        metavar="PID",
        help="an accepted pixel id (repeatable); others get 403 unknown pid. Default: any",
    )
    faults = parser.add_argument_group("fault injection (POST /v1/events only; all off by default)")
    faults.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0,
        metavar="N",
        help="delay added to each request",
    )
    faults.add_argument(
        "--rate-429", type=_rate, default=0.0, metavar="F", help="fraction answered 429"
    )
    faults.add_argument(
        "--retry-after",
        type=_seconds_or_none,
        default=1,
        metavar="S",
        help="Retry-After seconds sent with 429 and 503 answers, or 'none' for no header "
        "(%(default)s)",
    )
    faults.add_argument(
        "--rate-500", type=_rate, default=0.0, metavar="F", help="fraction answered 500"
    )
    faults.add_argument(
        "--rate-503", type=_rate, default=0.0, metavar="F", help="fraction answered 503"
    )
    faults.add_argument(
        "--rate-drop",
        type=_rate,
        default=0.0,
        metavar="F",
        help="fraction whose connection is closed without an answer; nothing is stored",
    )
    faults.add_argument(
        "--rate-drop-after",
        type=_rate,
        default=0.0,
        metavar="F",
        help="fraction whose events are stored, then the connection closed without an answer "
        "(a client's retry must then count as a duplicate)",
    )
    faults.add_argument(
        "--seed", type=int, metavar="N", help="seed for the fault draws, to replay a run exactly"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until Ctrl-C or SIGTERM; 0 on a clean stop, 2 on bad options."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig(
            latency_ms=args.latency_ms,
            rate_429=args.rate_429,
            retry_after=args.retry_after,
            rate_500=args.rate_500,
            rate_503=args.rate_503,
            rate_drop=args.rate_drop,
            rate_drop_after=args.rate_drop_after,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    try:
        sandbox = start_sandbox(
            args.host,
            args.port,
            api_keys=args.api_keys,
            pixel_ids=args.pixel_ids,
            db_path=args.db,
            faults=faults,
            max_body_bytes=args.max_body_bytes,
            name_params=args.name_params,
        )
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        hint = "; pick another --port (0 picks a free one)" if exc.errno == errno.EADDRINUSE else ""
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {reason}{hint}", file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. a --db path that SQLite cannot open
        print(f"{PROG}: cannot start: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    print(f"{PROG}: listening on {sandbox.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    print(f"{PROG}: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
