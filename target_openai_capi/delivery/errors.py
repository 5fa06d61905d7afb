"""Typed delivery errors: the only exceptions that leave the delivery package."""

from __future__ import annotations

# Keys are service-account keys scoped to one endpoint; the message tells a user which kind to make.
KEY_ADVICE = (
    "Use a Conversions API key (prefix sk-svcacct-, scope ads.third_party_events.write), "
    "not an Advertiser API key. A regenerated key revokes the old one at once."
)

REFUSED_KEY = (
    "Revoked (a regenerated key revokes the old one at once) or mistyped? Check api_key: a "
    "Conversions API key starts with sk-svcacct-."
)


class DeliveryError(Exception):
    """A delivery failure; str() is a user-facing message that never contains the API key."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransportError(DeliveryError):
    """No HTTP response: connection refused or dropped, timeout, TLS or URL problem."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        # Per instance: a refused connection is worth retrying, a malformed api_url is not.
        self.retryable = retryable


class AuthError(DeliveryError):
    """401/403: the key is missing, revoked or of the wrong kind; fatal for the run."""

    def __init__(self, status: int, server_message: str) -> None:
        # A 401 that names no scope is a key revoked or mistyped, not one of the wrong kind.
        advice = KEY_ADVICE if status != 401 or "scope" in server_message.lower() else REFUSED_KEY
        super().__init__(
            f"The API rejected the key ({status}: {server_message}). {advice}", status=status
        )
        self.server_message = server_message


class UnknownPixelError(DeliveryError):
    """403 `unknown pid`: the key cannot write to this pixel id; fatal for the run."""

    def __init__(self, pixel_id: str, server_message: str) -> None:
        super().__init__(
            f"The API does not know pixel id {pixel_id!r} for this key (403: {server_message}). "
            "Check pixel_id (the pixel shown in Ads Manager, shared with the browser pixel) "
            "and that the Conversions API key was made for that pixel.",
            status=403,
        )
        self.pixel_id = pixel_id
        self.server_message = server_message


class NotFoundError(DeliveryError):
    """404: wrong pixel id or wrong api_url; fatal for the run."""

    def __init__(self, pixel_id: str, url: str, server_message: str) -> None:
        super().__init__(
            f"The API answered 404 for pixel id {pixel_id!r} at {url} ({server_message}). "
            "Check pixel_id (the pixel shown in Ads Manager, shared with the browser pixel) "
            "and api_url.",
            status=404,
        )
        self.pixel_id = pixel_id
        self.server_message = server_message


class UnexpectedResponse(DeliveryError):
    """A status with no known meaning for this API (e.g. 3xx, 409, 501); fatal, nothing dropped."""

    def __init__(self, status: int, url: str, server_message: str) -> None:
        if status == 407:  # (no API answers it: a proxy between, asking for its credentials)
            text = (
                f"A proxy between the target and {url} refused the request (HTTP 407 Proxy "
                f"Authentication Required: {server_message}); stopping without advancing "
                "STATE. Check the proxy settings (HTTPS_PROXY, HTTP_PROXY) and their "
                "credentials."
            )
        else:
            text = (
                f"The API answered HTTP {status} at {url} ({server_message}), a status this "
                "target does not know how to handle; stopping without advancing STATE. Check "
                "api_url; if the API has changed, please report it."
            )
        super().__init__(text, status=status)
        self.server_message = server_message


class RefusedWholesale(DeliveryError):
    """A refusal that is not about an event: every request refused alike; fatal, nothing lost."""

    def __init__(self, status: int, url: str, why: str, server_message: str) -> None:
        super().__init__(
            f"HTTP {status} from {url}: {why} ({server_message}). This is not a bad event: "
            "something refuses every request (a proxy or gateway, a wrong api_url, an API "
            "change). Stopping without advancing STATE past these events; nothing was "
            "dead-lettered.",
            status=status,
        )
        self.server_message = server_message


class NotTheApi(DeliveryError):
    """A success status with a web page, or an error, for its body: something other than the
    API answered, or it refused the request all the same, so the events may never have been
    taken; fatal, nothing counted as sent."""

    def __init__(self, status: int, url: str, server_message: str, *, error: bool = False) -> None:
        what = "an error in its body" if error else "a web page, not an answer of the API"
        where = "a gateway that answers errors so?" if error else "a sign-in page of a proxy?"
        super().__init__(
            f"HTTP {status} from {url} with {what} ({server_message}): the events may not "
            f"have reached the API ({where} a wrong api_url?). Stopping without advancing STATE "
            "past these events; none was counted as sent.",
            status=status,
        )
        self.server_message = server_message


class RetriesExhausted(DeliveryError):
    """Retries ran out for one request; fatal, so no STATE goes out past unsent events."""

    def __init__(self, attempts: int, elapsed_s: float, last_problem: str, why: str) -> None:
        super().__init__(
            f"Gave up after {attempts} attempt{'s' if attempts != 1 else ''} over "
            f"{elapsed_s:.1f} s ({why}); last problem: {last_problem}. "
            "The run stops without advancing STATE past these events; rerun to resume."
        )
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.last_problem = last_problem
