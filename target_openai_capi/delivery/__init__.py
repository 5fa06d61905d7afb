"""Delivery: the one package that talks HTTP to the Conversions API."""

from __future__ import annotations

from target_openai_capi.delivery.batch import Batch, BatchResult
from target_openai_capi.delivery.client import (
    Client,
    ClientSettings,
    Response,
    about_the_event,
    events_url,
    named_events,
    prepare_body,
)
from target_openai_capi.delivery.errors import (
    AuthError,
    DeliveryError,
    NotFoundError,
    NotTheApi,
    RefusedWholesale,
    RetriesExhausted,
    TransportError,
    UnexpectedResponse,
    UnknownPixelError,
)
from target_openai_capi.delivery.retry import (
    RetryPolicy,
    backoff_delay,
    full_jitter,
    parse_retry_after,
    should_retry,
)
from target_openai_capi.delivery.status_policy import Action, action_for
from target_openai_capi.delivery.uploader import Uploader

__all__ = [
    "Action",
    "AuthError",
    "Batch",
    "BatchResult",
    "Client",
    "ClientSettings",
    "DeliveryError",
    "NotFoundError",
    "NotTheApi",
    "RefusedWholesale",
    "Response",
    "RetriesExhausted",
    "RetryPolicy",
    "TransportError",
    "UnexpectedResponse",
    "UnknownPixelError",
    "Uploader",
    "about_the_event",
    "action_for",
    "backoff_delay",
    "events_url",
    "full_jitter",
    "named_events",
    "parse_retry_after",
    "prepare_body",
    "should_retry",
]
