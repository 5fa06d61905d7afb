"""`target-openai-capi --test`: does this key, pixel id and URL work? One synthetic event with
validate_only (nothing is recorded), one line of answer that names the fix, never the key.

A busy API (408, 429, 5xx) or a network error is asked again, as a run would, within the run's
retry settings but at most CHECK_ATTEMPTS times and CHECK_SECONDS in all: a check run before a
sync should not fail on one passing 503, nor wait five minutes to say the URL is wrong."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from target_openai_capi.delivery.client import Response, is_api_error, is_web_page, prepare_body
from target_openai_capi.delivery.errors import KEY_ADVICE, TransportError
from target_openai_capi.delivery.retry import (
    RetryPolicy,
    backoff_delay,
    fits_budget,
    is_retryable_status,
    parse_retry_after,
)
from target_openai_capi.log_safety import log_safe

if TYPE_CHECKING:
    from target_openai_capi.delivery.client import Client

CHECK_EVENT_ID = "target-openai-capi-credential-check"
CHECK_ATTEMPTS = 4
CHECK_SECONDS = 30.0


def check_credentials(
    client: Client,
    integration_source: str | None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """(works, one line saying so or what to fix)."""
    policy = policy or RetryPolicy()
    policy = replace(
        policy,
        max_attempts=min(policy.max_attempts, CHECK_ATTEMPTS),
        max_total_seconds=min(policy.max_total_seconds, CHECK_SECONDS),
    )
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        answer = _ask(client, integration_source)
        if isinstance(answer, Response):
            if not is_retryable_status(answer.status):
                break
            retry_after = parse_retry_after(answer.header("Retry-After"), time.time())
        elif not answer.retryable:
            break
        else:
            retry_after = None
        delay = backoff_delay(attempt, retry_after, policy)
        if attempt >= policy.max_attempts or not fits_budget(
            time.monotonic() - started, delay, policy
        ):
            break
        sleep(delay)
    works, line = _verdict(client, answer)
    if not works and attempt > 1:
        line = f"{line.removesuffix('.')} ({attempt} attempts)."
    return works, line


def _ask(client: Client, integration_source: str | None) -> Response | TransportError:
    """The API's answer to the synthetic event, or why there was none."""
    event = {
        "id": CHECK_EVENT_ID,
        "type": "lead_created",
        "timestamp_ms": int(time.time() * 1000),
        "data": {"type": "customer_action"},
    }
    try:
        return client.post(prepare_body([event], True, integration_source))
    except TransportError as exc:
        return exc


def _verdict(client: Client, response: Response | TransportError) -> tuple[bool, str]:
    """What an answer says of the key, the pixel id and the URL."""
    settings = client.settings
    where = f"pixel id {settings.pixel_id!r} at {client.display_url}"
    if isinstance(response, TransportError):
        check = "" if "Check " in str(response) else " Check api_url."
        return False, f"FAILED: {client.display_url} cannot be reached ({response}).{check}"
    status = response.status
    # (printed, not logged: hidden here as the log hides personal data in a server's message)
    message = log_safe(response.message(settings.api_key))
    if 200 <= status < 300 and is_web_page(response):
        return False, (
            f"FAILED: a web page answered at {client.display_url}, not the API ({message}). "
            "Check api_url (a proxy's sign-in page?)."
        )
    if 200 <= status < 300 and is_api_error(response.body):
        return False, (
            f"FAILED: HTTP {status} for {where} with an error in its body ({message}). "
            "Check api_url (a gateway in front of the API?)."
        )
    if 200 <= status < 300:
        return True, f"OK: the key, {where} work (validate_only: nothing was recorded)."
    if status == 401 and "scope" in message.lower():
        return False, f"FAILED: the key is not a Conversions API key (401: {message}). {KEY_ADVICE}"
    if status == 401:
        return False, f"FAILED: the key was refused (401: {message}): revoked or mistyped?"
    if status == 403 and "unknown pid" in message.lower():
        return False, (
            f"FAILED: the key cannot write to {where} (403: {message}). Check pixel_id, and "
            "that the key was made for that pixel."
        )
    if status in (403, 404):
        return False, f"FAILED: {status} for {where} ({message}). Check pixel_id and api_url."
    if is_retryable_status(status):
        return False, (
            f"FAILED: HTTP {status} for {where} ({message}): the API is busy or failing; "
            "try again later."
        )
    return False, f"FAILED: HTTP {status} for {where} ({message})."
