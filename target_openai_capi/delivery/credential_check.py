"""`target-openai-capi --test`: does this key, pixel id and URL work? One synthetic event with
validate_only (nothing is recorded), one line of answer that names the fix, never the key."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from target_openai_capi.delivery.client import is_web_page, prepare_body
from target_openai_capi.delivery.errors import KEY_ADVICE, TransportError
from target_openai_capi.log_safety import log_safe

if TYPE_CHECKING:
    from target_openai_capi.delivery.client import Client

CHECK_EVENT_ID = "target-openai-capi-credential-check"


def check_credentials(client: Client, integration_source: str | None) -> tuple[bool, str]:
    """(works, one line saying so or what to fix)."""
    settings = client.settings
    event = {
        "id": CHECK_EVENT_ID,
        "type": "lead_created",
        "timestamp_ms": int(time.time() * 1000),
        "data": {"type": "customer_action"},
    }
    where = f"pixel id {settings.pixel_id!r} at {client.display_url}"
    try:
        response = client.post(prepare_body([event], True, integration_source))
    except TransportError as exc:
        return False, f"FAILED: {client.display_url} cannot be reached ({exc}). Check api_url."
    status = response.status
    # (printed, not logged: hidden here as the log hides personal data in a server's message)
    message = log_safe(response.message(settings.api_key))
    if 200 <= status < 300 and is_web_page(response):
        return False, (
            f"FAILED: a web page answered at {client.display_url}, not the API ({message}). "
            "Check api_url (a proxy's sign-in page?)."
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
    return False, f"FAILED: HTTP {status} for {where} ({message})."
