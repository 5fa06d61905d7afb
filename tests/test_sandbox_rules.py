"""The sandbox's request rules as pure functions (the HTTP tests show them on the wire)."""

from __future__ import annotations

from typing import Any

import pytest

from target_openai_capi.sandbox.rules import (
    Body,
    EventError,
    Rejection,
    auth_rejection,
    batch_rejection,
    error_body,
    parse_body,
    pixel_rejection,
)

NOW = 1_773_892_800_000
KEY = "sk-svcacct-abc"


@pytest.mark.parametrize(
    ("header", "keys", "expected"),
    [
        (f"Bearer {KEY}", None, None),
        (f"bearer {KEY}", {KEY}, None),
        (f"Bearer {KEY}", {"sk-svcacct-other"}, Rejection(401, "Invalid API key")),
        (
            "Bearer sk-proj-abc",
            None,
            Rejection(401, "Missing scopes: ads.third_party_events.write"),
        ),
        (
            "",
            None,
            Rejection(401, "Missing Authorization header: send 'Authorization: Bearer <key>'"),
        ),
        (KEY, None, Rejection(401, "Malformed Authorization header: expected 'Bearer <key>'")),
        (
            f"Bearer {KEY} extra",
            None,
            Rejection(401, "Malformed Authorization header: expected 'Bearer <key>'"),
        ),
    ],
)
def test_auth_rejection(header: str, keys: set[str] | None, expected: Rejection | None) -> None:
    assert auth_rejection(header, keys) == expected


@pytest.mark.parametrize(
    ("pid", "known", "expected"),
    [
        ("px", None, None),
        ("px", {"px"}, None),
        ("", None, Rejection(400, "Missing required query parameter: pid", param="pid")),
        (None, {"px"}, Rejection(400, "Missing required query parameter: pid", param="pid")),
        ("py", {"px"}, Rejection(403, "403: unknown pid", kind="server_error")),
    ],
)
def test_pixel_rejection(
    pid: str | None, known: set[str] | None, expected: Rejection | None
) -> None:
    assert pixel_rejection(pid, known) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"events": [1]}', Body(events=[1], validate_only=False)),
        (b'{"events": [1], "validate_only": true}', Body(events=[1], validate_only=True)),
        (
            b'{"events": [1], "validate_only": 1}',
            Rejection(400, "validate_only: must be true or false, got 1", param="validate_only"),
        ),
        (
            b'{"events": [1], "integration_source": " Shop.Sync_2 "}',
            Body(events=[1], validate_only=False, integration_source="shop.sync_2"),
        ),
        (b"{}", Rejection(400, "Missing required field: events")),
        (b'{"events": null}', Rejection(400, "events: must be an array of events")),
    ],
)
def test_parse_body(raw: bytes, expected: Body | Rejection) -> None:
    assert parse_body(raw) == expected


def _event(event_id: str, **changes: Any) -> dict[str, Any]:
    base = {
        "id": event_id,
        "type": "page_viewed",
        "timestamp_ms": NOW,
        "data": {"type": "contents"},
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([_event("a"), _event("b")], None),
        (
            [_event("a"), _event("b", timestamp_ms=NOW + 11 * 60_000)],
            "events[1].timestamp_ms: more than 10 minutes in the future",
        ),
        (
            [_event("a", type="nope"), _event("b", timestamp_ms=1)],
            "events[0].type: 'nope' is not one of",
        ),
        ([_event("a"), None], "events[1]: must be a JSON object, got NoneType"),
        (
            [_event("a", data={"type": "contents", "amount": 1, "currency": "XXX"})],
            "events[0].data.currency: 'XXX' has no minor unit",
        ),
    ],
)
def test_batch_rejection_names_the_first_bad_event(events: list[Any], expected: str | None) -> None:
    rejection = batch_rejection(events, NOW)
    if expected is None:
        assert rejection is None
    else:
        assert rejection is not None
        assert rejection.errors[0].message.startswith(expected), rejection


def test_batch_rejection_lists_every_bad_event_as_the_live_api_does() -> None:
    rejection = batch_rejection(
        [_event("a"), _event("b", type="nope"), _event("c", timestamp_ms=1)], NOW
    )
    assert rejection is not None
    assert rejection.status == 400
    assert rejection.param == "events[1]"
    assert rejection.code == "invalid_event"
    assert rejection.message == "Invalid event at events[1]. See errors for details."
    assert [(e.param, e.code) for e in rejection.errors] == [
        ("events[1].type", "invalid_event_field"),
        ("events[2].timestamp_ms", "event_timestamp_too_old"),
    ]


def test_a_batch_with_only_stale_events_is_422() -> None:
    rejection = batch_rejection([_event("a"), _event("b", timestamp_ms=1)], NOW)
    assert rejection is not None
    assert (rejection.status, rejection.code, rejection.param) == (
        422,
        "event_timestamp_too_old",
        "events[1].timestamp_ms",
    )


def test_error_body_in_the_shape_of_the_live_api() -> None:
    # The live answer observed for a bad event (capi-spec.md, Errors), rebuilt field by field.
    rejection = Rejection(
        400,
        "Invalid event at events[1]. See errors for details.",
        code="invalid_event",
        param="events[1]",
        errors=(
            EventError(
                "events[1].data.type",
                "events[1].data.type must be a supported data type.",
                "missing_event_data_type",
            ),
        ),
    )
    assert error_body(rejection) == {
        "error": {
            "message": "Invalid event at events[1]. See errors for details.",
            "type": "invalid_request_error",
            "param": "events[1]",
            "code": "invalid_event",
            "errors": [
                {
                    "message": "events[1].data.type must be a supported data type.",
                    "param": "events[1].data.type",
                    "code": "missing_event_data_type",
                }
            ],
        }
    }
    unnamed = error_body(rejection, name_params=False)["error"]
    assert unnamed["param"] is None
    assert unnamed["errors"][0]["param"] is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (429, "rate_limit_error"),
        (503, "server_error"),
    ],
)
def test_error_body_type_follows_the_status(status: int, kind: str) -> None:
    assert error_body(Rejection(status, "why")) == {
        "error": {"message": "why", "type": kind, "param": None, "code": None}
    }


@pytest.mark.parametrize("bad_type", [[], {}, ["page_viewed"], None, 7])
def test_an_event_whose_type_is_not_a_string_is_refused_not_a_crash(bad_type):
    rejection = batch_rejection([_event("a"), _event("b", type=bad_type)], NOW)
    assert rejection is not None
    assert rejection.status == 400
    (error,) = error_body(rejection)["error"]["errors"]
    assert error["param"] == "events[1].type"
