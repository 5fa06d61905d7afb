"""The sandbox over real HTTP: each rule of POST /v1/events, storage, dedup and inspection."""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

import pytest
import requests
from conftest import (
    API_KEY,
    DOCS_EXAMPLE,
    DOCS_SINGULAR_USER,
    DOCS_TIMESTAMP,
    PIXEL_ID,
    recent_ms,
)

from target_openai_capi.sandbox import FaultConfig, Sandbox, start_sandbox

SHA = "a" * 64


def event(event_id: str = "e1", **changes: Any) -> dict[str, Any]:
    """A valid recent order event; keyword changes replace top-level fields (None deletes)."""
    body = copy.deepcopy(DOCS_EXAMPLE)
    body.update(id=event_id, timestamp_ms=recent_ms())
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def post(
    sandbox: Sandbox,
    body: Any,
    *,
    key: str | None = API_KEY,
    pid: str | None = PIXEL_ID,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST body (a dict as JSON, bytes as is) to the sandbox's events endpoint."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    params = {} if pid is None else {"pid": pid}
    data = body if isinstance(body, bytes) else None
    return (session or requests).post(  # type: ignore[attr-defined]
        sandbox.url,
        params=params,
        headers=headers,
        data=data,
        json=None if data is not None else body,
        timeout=10,
    )


def message(response: requests.Response) -> str:
    """The error message of an error response: the first bad event's, when it names events."""
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    if error.get("errors"):
        return str(error["errors"][0]["message"])
    return str(error["message"])


def test_the_documented_example_is_accepted_and_stored() -> None:
    with start_sandbox(now_ms=lambda: DOCS_TIMESTAMP + 60_000) as sandbox:
        response = post(sandbox, {"events": [DOCS_EXAMPLE]})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "received": 1,
            "stored": 1,
            "duplicates": 0,
            "validate_only": False,
        }
        assert sandbox.events(PIXEL_ID) == [DOCS_EXAMPLE]


def test_every_event_type_with_its_data_shape_is_accepted(sandbox: Sandbox) -> None:
    shapes = {
        "order_created": "contents",
        "checkout_started": "contents",
        "items_added": "contents",
        "contents_viewed": "contents",
        "page_viewed": "contents",
        "lead_created": "customer_action",
        "registration_completed": "customer_action",
        "appointment_scheduled": "customer_action",
        "app_installed": "customer_action",
        "app_opened": "customer_action",
        "subscription_created": "plan_enrollment",
        "trial_started": "plan_enrollment",
        "custom": "custom",
    }
    events = [
        {
            "id": f"e-{event_type}",
            "type": event_type,
            "timestamp_ms": recent_ms(),
            "data": {"type": shape},
            **({"custom_event_name": "quote_requested"} if event_type == "custom" else {}),
            **({"action_source": "mobile_app"} if event_type.startswith("app_") else {}),
        }
        for event_type, shape in shapes.items()
    ]
    response = post(sandbox, {"events": events})
    assert response.status_code == 200, response.text
    assert [stored["type"] for stored in sandbox.events(PIXEL_ID)] == list(shapes)


BROKEN: list[tuple[str, dict[str, Any], str]] = [
    ("no id", event(id=None), "events[0].id: is required"),
    ("unknown type", event(type="purchase"), "events[0].type: 'purchase' is not one of"),
    ("no timestamp", event(timestamp_ms=None), "events[0].timestamp_ms: is required"),
    (
        "timestamp in seconds",
        event(timestamp_ms=recent_ms() // 1000),
        "events[0].timestamp_ms: older than 7 days",
    ),
    (
        "8 days old",
        event(timestamp_ms=recent_ms(8 * 24 * 60)),
        "events[0].timestamp_ms: older than 7 days",
    ),
    (
        "30 minutes ahead",  # (built at collection: slack for a slow run before the test)
        event(timestamp_ms=recent_ms(-30)),
        "events[0].timestamp_ms: more than 10 minutes in the future",
    ),
    ("no data", event(data=None), "events[0].data: is required"),
    (
        "wrong data shape",
        event(type="lead_created"),
        "events[0].data.type: must be 'customer_action' for type 'lead_created'",
    ),
    (
        "field the shape does not allow",
        event(data={"type": "contents", "plan_id": "p"}),
        "events[0].data.plan_id: is not an allowed field in data of type 'contents'",
    ),
    (
        "amount in major units",
        event(data={"type": "contents", "amount": 25.99, "currency": "USD"}),
        "events[0].data.amount: 25.99 is not of type 'integer'",
    ),
    (
        "amount without currency",
        event(data={"type": "contents", "amount": 2599}),
        "events[0].data.currency: is required when data.amount is present",
    ),
    (
        "unknown currency",
        event(data={"type": "contents", "amount": 2599, "currency": "ABC"}),
        "events[0].data.currency: 'ABC' is not a known ISO 4217 currency code",
    ),
    (
        "item currency without a minor unit",
        event(data={"type": "contents", "contents": [{"id": "g", "amount": 1, "currency": "XAU"}]}),
        "events[0].data.contents[0].currency: 'XAU' has no minor unit",
    ),
    (
        "quantity as a string",
        event(data={"type": "contents", "contents": [{"id": "a", "quantity": "2"}]}),
        "events[0].data.contents[0].quantity: '2' is not of type 'integer'",
    ),
    (
        "custom without a name",
        event(type="custom", data={"type": "custom"}),
        "events[0].custom_event_name: is required when type is 'custom'",
    ),
    (
        "web without source_url",
        event(source_url=None),
        "events[0].source_url: is required when action_source is 'web'",
    ),
    (
        "unhashed email",
        event(user={"email_sha256": "jane@example.com"}),
        "events[0].user.email_sha256: <value hidden: may be personal data> is not a lowercase",
    ),
    (
        "uppercase hash",  # (in a list it is ignored: test_a_user_list_with_invalid_values_...)
        event(user={"email_sha256": SHA.upper()}),
        "events[0].user.email_sha256: <value hidden",
    ),
    (
        "a name no official version had",
        event(user={"phone_number_sha256": SHA}),
        "events[0].user.phone_number_sha256: is not an allowed field",
    ),
    (
        "custom name with a space",
        event(type="custom", custom_event_name="Demo Booked", data={"type": "custom"}),
        "events[0].custom_event_name: 'Demo Booked' is not 1-64 letters, digits",
    ),
    (
        "custom name that is a standard name",
        event(type="custom", custom_event_name="Order_Created", data={"type": "custom"}),
        "events[0].custom_event_name: 'Order_Created' is not 1-64 letters",
    ),
    (
        "custom name of 65 characters",
        event(type="custom", custom_event_name="a" * 65, data={"type": "custom"}),
        "events[0].custom_event_name:",
    ),
    (
        "custom name ending in an underscore",
        event(type="custom", custom_event_name="booked_", data={"type": "custom"}),
        "events[0].custom_event_name:",
    ),
    (
        "app event from the web",
        event(type="app_installed", data={"type": "customer_action"}),
        "events[0].action_source: must be 'mobile_app', got 'web'",
    ),
    (
        "app event without action_source",
        event(type="app_opened", action_source=None, data={"type": "customer_action"}),
        "events[0].action_source: is required",
    ),
    (
        "source_url without a host",
        event(source_url="/checkout/thanks"),
        "events[0].source_url: '/checkout/thanks' is not a URL with a scheme and a host",
    ),
    (
        "variant_dict with a number",
        event(data={"type": "contents", "contents": [{"id": "a", "variant_dict": {"size": 4}}]}),
        "events[0].data.contents[0].variant_dict.size: 4 is not of type 'string'",
    ),
    (
        "negative quantity",
        event(data={"type": "contents", "contents": [{"id": "a", "quantity": -1}]}),
        "events[0].data.contents[0].quantity: -1 is less than the minimum of 0",
    ),
    (
        "undocumented content field",
        event(data={"type": "contents", "contents": [{"id": "a", "price": 5}]}),
        "events[0].data.contents[0].price: is not an allowed field",
    ),
    (
        "postal code with a symbol",
        event(user={"zip_code": "94107#"}),
        "events[0].user.zip_code: <value hidden",
    ),
    (
        "a three-letter country",
        event(user={"country": "USA"}),
        "events[0].user.country: <value hidden",
    ),
    (
        "an advertising id that is not a UUID",
        event(user={"android_advertising_id": "idfa-1"}),
        "events[0].user.android_advertising_id: <value hidden",
    ),
    (
        "bad ip",
        event(user={"ip_address": "999.1.1.1"}),
        "events[0].user.ip_address: <value hidden: may be personal data> is not a valid IPv4",
    ),
    ("unknown event key", event(value=10), "events[0].value: is not an allowed field"),
    ("event not an object", "order_12345", "events[0]: must be a JSON object, got str"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("name", "bad", "expected"), BROKEN, ids=[n for n, _, _ in BROKEN])
def test_a_broken_event_is_rejected_naming_its_field(
    sandbox: Sandbox, name: str, bad: Any, expected: str
) -> None:
    response = post(sandbox, {"events": [bad]})
    stale = "timestamp_ms: older" in expected or "in the future" in expected
    assert response.status_code == (422 if stale else 400)
    assert message(response).startswith(expected), message(response)
    assert sandbox.events() == []


def test_one_bad_event_fails_the_whole_batch_and_stores_nothing(sandbox: Sandbox) -> None:
    events = [event("a"), event("b"), event("c"), event("d", timestamp_ms=recent_ms(8 * 1440))]
    response = post(sandbox, {"events": events})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "events[3].timestamp_ms"
    assert error["code"] == "event_timestamp_too_old"
    assert message(response) == "events[3].timestamp_ms: older than 7 days"
    assert sandbox.events() == []
    assert sandbox.stats()["accepted"] == 0
    assert sandbox.stats()["rejected_batches"] == 1


def test_an_event_currency_in_lower_case_is_accepted_an_item_currency_is_not(
    sandbox: Sandbox,
) -> None:
    # The page, for data.currency: "Use a valid three-letter ISO 4217 currency code, such as
    # USD, EUR, or JPY; the API converts values to uppercase." For contents[].currency it says
    # only "A valid three-letter ISO 4217 currency code for the item".
    lower = event("lower")
    lower["data"]["currency"] = "usd"
    response = post(sandbox, {"events": [lower]})
    assert response.status_code == 200, response.text
    assert [e["id"] for e in sandbox.events()] == ["lower"]

    unknown = event("unknown")
    unknown["data"]["currency"] = "abc"
    response = post(sandbox, {"events": [unknown]})
    assert response.status_code == 400
    assert (
        message(response) == "events[0].data.currency: 'abc' is not a known ISO 4217 currency code"
    )

    item = event("item")
    item["data"]["contents"][0].update(amount=2599, currency="usd")
    response = post(sandbox, {"events": [item]})
    assert response.status_code == 400
    assert message(response).startswith("events[0].data.contents[0].currency: 'usd' is not a")
    assert [e["id"] for e in sandbox.events()] == ["lower"]


def test_the_official_user_objects_are_accepted() -> None:
    # The example event and user object of OpenAI's page (DOCS_EXAMPLE carries the newest one),
    # and the earlier official singular user object.
    assert DOCS_EXAMPLE["user"]["emails_sha256"]
    with start_sandbox(now_ms=lambda: DOCS_TIMESTAMP + 60_000) as sandbox:
        earlier = {**DOCS_EXAMPLE, "id": "order_12346", "user": DOCS_SINGULAR_USER}
        response = post(sandbox, {"events": [DOCS_EXAMPLE, earlier]})
        assert response.status_code == 200, response.text
        assert sandbox.events() == [DOCS_EXAMPLE, earlier]


def test_a_full_user_object_with_every_documented_field_is_accepted(sandbox: Sandbox) -> None:
    user = {
        "emails_sha256": [SHA, "b" * 64, "c" * 64, "d" * 64],  # the API ignores past three
        "phone_numbers_sha256": [SHA],
        "external_ids_sha256": [SHA],
        "first_names_sha256": [SHA],
        "last_names_sha256": [SHA],
        "regions": ["CA"],
        "cities": ["San Francisco"],
        "postal_codes": ["94107", "SW1A 1AA", "100-0001"],
        "countries": ["US"],
        "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "obref": "123e4567-e89b-42d3-a456-426614174000",
        "ip_address": "2001:db8::1",
        "user_agent": "Mozilla/5.0",
    }
    content = {
        "id": "sku_1",
        "group_id": "product_1",
        "name": "Shirt",
        "content_type": "product",
        "quantity": 0,
        "amount": 1000,
        "currency": "EUR",
        "variant_dict": {"size": "M", "colour": "blue"},
    }
    custom = event(
        "c1",
        type="custom",
        custom_event_name="demo_booked",
        data={"type": "custom", "plan_id": "p", "seats": 3, "tags": ["a"], "meta": None},
    )
    response = post(
        sandbox,
        {"events": [event(user=user, data={"type": "contents", "contents": [content]}), custom]},
    )
    assert response.status_code == 200, response.text


def test_a_user_list_with_invalid_values_is_read_as_the_api_reads_it(sandbox: Sandbox) -> None:
    # The newest official page: "the API uses the first three valid, unique values in order and
    # ignores the rest without rejecting anything" (capi-spec.md, The `user` object).
    user = {
        # a raw email, an upper-case digest, a repeat and a number, then three valid digests
        "emails_sha256": ["Jo@Example.com", "A" * 64, SHA, SHA, 7, "b" * 64, "c" * 64],
        "postal_codes": ["94107!", "", "94107"],
        "countries": ["USA", "US"],
        "phone_numbers_sha256": ["+1 415 555 2671"],  # no valid value: the list is ignored
        "regions": [],
    }
    response = post(sandbox, {"events": [event("lists", user=user)]})
    assert response.status_code == 200, response.text
    assert [e["id"] for e in sandbox.events()] == ["lists"]

    # A field that is not a list at all is still an invalid event, as is an invalid singular one.
    for bad_user in ({"emails_sha256": SHA}, {"country": "USA"}, {"ip_address": "nope"}):
        response = post(sandbox, {"events": [event("bad", user=bad_user)]})
        assert response.status_code == 400, bad_user
        assert message(response).startswith("events[0].user."), message(response)
    assert [e["id"] for e in sandbox.events()] == ["lists"]


def test_an_error_body_names_every_bad_event(sandbox: Sandbox) -> None:
    events = [event("a"), event("b", id=""), event("c"), event("d", type="nope")]
    response = post(sandbox, {"events": events})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Invalid event at events[1]. See errors for details."
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "events[1]"
    assert error["code"] == "invalid_event"
    assert [e["param"] for e in error["errors"]] == ["events[1].id", "events[3].type"]
    assert error["errors"][0]["message"] == "events[1].id: must not be empty"


def test_error_bodies_can_name_no_event() -> None:
    with start_sandbox(name_params=False) as sandbox:
        response = post(sandbox, {"events": [event("a"), event("b", id="")]})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] is None
        assert [e["param"] for e in error["errors"]] == [None]
        assert "events[1]" in error["message"]


def test_integration_source_is_checked_and_counted(sandbox: Sandbox) -> None:
    ok = post(sandbox, {"integration_source": " My-Shop.io ", "events": [event("a")]})
    assert ok.status_code == 200, ok.text
    assert post(sandbox, {"events": [event("b")]}).status_code == 200
    for bad in ("", "-leading", "a" * 65, "spa ce", 5):
        response = post(sandbox, {"integration_source": bad, "events": [event("c")]})
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == "integration_source"
    assert sandbox.stats()["integration_sources"] == {"(none)": 1, "my-shop.io": 1}


def test_the_window_follows_the_sandbox_clock() -> None:
    clock = [recent_ms(0)]
    with start_sandbox(now_ms=lambda: clock[0]) as sandbox:
        sent = event("a", timestamp_ms=clock[0])
        assert post(sandbox, {"events": [sent]}).status_code == 200
        clock[0] += 7 * 24 * 3600 * 1000 + 1
        late = post(sandbox, {"events": [{**sent, "id": "b"}]})
        assert late.status_code == 422
        assert message(late) == "events[0].timestamp_ms: older than 7 days"


def test_validate_only_validates_and_stores_nothing(sandbox: Sandbox) -> None:
    good = post(sandbox, {"validate_only": True, "events": [event("a"), event("b")]})
    assert good.status_code == 200
    assert good.json() == {"received": 2, "stored": 0, "duplicates": 0, "validate_only": True}
    bad = post(sandbox, {"validate_only": True, "events": [event("c", id="")]})
    assert bad.status_code == 400
    assert message(bad) == "events[0].id: must not be empty"
    assert sandbox.events() == []
    assert sandbox.stats()["validate_only_requests"] == 2


def test_a_resent_event_is_counted_as_a_duplicate_not_stored_twice(sandbox: Sandbox) -> None:
    assert post(sandbox, {"events": [event("a"), event("b")]}).json()["stored"] == 2
    again = post(sandbox, {"events": [event("a"), event("c")]})
    assert again.json() == {"received": 2, "stored": 1, "duplicates": 1, "validate_only": False}
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["a", "b", "c"]
    assert sandbox.stats()["accepted"] == 3
    assert sandbox.stats()["duplicates"] == 1


def test_dedup_key_is_pixel_type_and_id() -> None:
    with start_sandbox(pixel_ids={PIXEL_ID, "px_other"}) as sandbox:
        post(sandbox, {"events": [event("a")]})
        same_batch = post(sandbox, {"events": [event("b"), event("b")]}).json()
        assert (same_batch["stored"], same_batch["duplicates"]) == (1, 1)
        other_type = event("a", type="checkout_started")
        assert post(sandbox, {"events": [other_type]}).json()["stored"] == 1
        assert post(sandbox, {"events": [event("a")]}, pid="px_other").json()["stored"] == 1
        assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["a", "b", "a"]
        assert [e["id"] for e in sandbox.events("px_other")] == ["a"]
        assert len(sandbox.events()) == 4


def test_at_most_1000_events_per_request(sandbox: Sandbox) -> None:
    events = [event(f"e{i}") for i in range(1001)]
    too_many = post(sandbox, {"events": events})
    assert too_many.status_code == 400
    assert message(too_many) == "events: at most 1000 events per request, got 1001"
    full = post(sandbox, {"events": events[:1000]})
    assert full.status_code == 200
    assert full.json()["stored"] == 1000
    assert sandbox.stats()["largest_batch"] == 1000


def test_a_body_over_the_limit_is_413_and_the_connection_stays_usable(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        huge = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
        response = post(sandbox, huge, session=session)
        assert response.status_code == 413
        assert "limit is 4194304 bytes" in message(response)
        assert post(sandbox, {"events": [event()]}, session=session).status_code == 200


def test_max_body_bytes_is_configurable() -> None:
    with start_sandbox(max_body_bytes=2000) as sandbox:
        events = [event(f"e{i}") for i in range(10)]
        response = post(sandbox, {"events": events})
        assert response.status_code == 413
        assert post(sandbox, {"events": events[:1]}).status_code == 200


def test_the_official_pages_own_request_is_answered_200(sandbox: Sandbox) -> None:
    """The conversions page's curl example posts `{"validate_only": false, "events": []}`."""
    response = post(sandbox, b'{"validate_only": false, "events": []}')
    assert response.status_code == 200, response.text
    assert sandbox.events() == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "Request body is not valid JSON"),
        (b"", "Request body is not valid JSON"),
        (b"[]", "Request body must be a JSON object"),
        (b"{}", "Missing required field: events"),
        (b'{"validate_only": true}', "Missing required field: events"),
        (b'{"events": [], "extra": 1}', "Unknown field(s) in request body: ['extra']"),
        (b'{"events": {}}', "events: must be an array of events"),
        (b'{"events": [{}], "validate_only": "yes"}', "validate_only: must be true or false"),
    ],
)
def test_malformed_bodies_are_400(sandbox: Sandbox, body: bytes, expected: str) -> None:
    response = post(sandbox, body)
    assert response.status_code == 400
    assert message(response).startswith(expected), message(response)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, "Missing Authorization header"),
        ("Basic dXNlcjpwYXNz", "Malformed Authorization header"),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer sk-proj-0123456789", "Missing scopes: ads.third_party_events.write"),
        ("Bearer sk-svcacct-some-other-key", "Invalid API key"),
    ],
)
def test_auth_failures_are_401(sandbox: Sandbox, authorization: str | None, expected: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.post(
        sandbox.url, params={"pid": PIXEL_ID}, json={"events": [event()]}, headers=headers
    )
    assert response.status_code == 401
    assert message(response) == expected or message(response).startswith(expected)
    assert "sk-" not in message(response).replace("sk-svcacct-", "")
    assert sandbox.events() == []


def test_any_service_account_key_works_when_no_keys_are_configured() -> None:
    with start_sandbox() as sandbox:
        response = post(sandbox, {"events": [event()]}, key="sk-svcacct-anything")
        assert response.status_code == 200
        assert post(sandbox, {"events": [event()]}, key="sk-anything").status_code == 401


def test_pixel_id_is_required_and_must_be_known(sandbox: Sandbox) -> None:
    missing = post(sandbox, {"events": [event()]}, pid=None)
    assert missing.status_code == 400
    assert message(missing) == "Missing required query parameter: pid"
    unknown = post(sandbox, {"events": [event()]}, pid="px_elsewhere")
    assert unknown.status_code == 403  # as the live API answers (capi-spec.md, Errors)
    assert unknown.json()["error"]["message"] == "403: unknown pid"
    assert unknown.json()["error"]["type"] == "server_error"


def test_inspection_endpoints_over_http(sandbox: Sandbox) -> None:
    post(sandbox, {"events": [event("a"), event("b")]})
    post(sandbox, {"events": [event("c", id="")]})
    listed = requests.get(f"{sandbox.base_url}/sandbox/events", params={"pid": PIXEL_ID})
    assert [e["id"] for e in listed.json()["events"]] == ["a", "b"]
    other = requests.get(f"{sandbox.base_url}/sandbox/events", params={"pid": "px_none"})
    assert other.json() == {"events": []}
    stats = requests.get(f"{sandbox.base_url}/sandbox/stats").json()
    assert stats == sandbox.stats()
    assert stats["requests"] == 2
    assert stats["accepted"] == 2
    assert stats["rejected_batches"] == 1
    assert stats["largest_batch"] == 2
    assert stats["by_status"] == {"200": 1, "400": 1}
    assert stats["max_in_flight"] == 1
    assert stats["faults_injected"] == 0

    reset = requests.post(f"{sandbox.base_url}/sandbox/reset")
    assert reset.status_code == 200
    assert sandbox.events() == []
    assert sandbox.stats()["requests"] == 0
    assert sandbox.stats()["by_status"] == {}


def test_unknown_endpoint_is_404(sandbox: Sandbox) -> None:
    response = requests.get(f"{sandbox.base_url}/v1/other")
    assert response.status_code == 404
    assert "No such endpoint: /v1/other" in message(response)


def test_keep_alive_connection_serves_many_requests(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        for i in range(20):
            assert post(sandbox, {"events": [event(f"e{i}")]}, session=session).status_code == 200
    assert len(sandbox.events()) == 20


def test_max_in_flight_counts_concurrent_requests(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(latency_ms=400))
    clients = 4
    barrier = threading.Barrier(clients)
    statuses: list[int] = []

    def send(i: int) -> None:
        barrier.wait()
        statuses.append(post(sandbox, {"events": [event(f"e{i}")]}).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * clients
    stats = sandbox.stats()
    assert stats["max_in_flight"] == clients
    assert stats["in_flight"] == 0
    assert stats["accepted"] == clients


def test_the_log_line_never_shows_the_key_or_event_data(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="target_openai_capi.sandbox")
    post(sandbox, {"events": [event("order-secret-id", user={"email_sha256": SHA})]})
    assert f"POST /v1/events?pid={PIXEL_ID} 200 events=1" in caplog.text
    assert API_KEY not in caplog.text
    assert "order-secret-id" not in caplog.text
    assert SHA not in caplog.text
    # A client's query string may hold anything (a key, an email, escape sequences that move a
    # terminal's cursor): only the pid is shown, escaped.
    caplog.clear()
    url = f"{sandbox.url}?pid=px%1b[2J&key={API_KEY}&email=jane@example.com"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    requests.post(url, json={"events": []}, headers=auth, timeout=10)
    # (403: no such pixel)
    assert "POST /v1/events?pid=px\\x1b[2J (query cut) 403 events=0" in caplog.text
    for raw in (API_KEY, "jane", "\x1b"):
        assert raw not in caplog.text


def test_events_survive_a_restart_with_a_database_file(tmp_path: Any) -> None:
    path = str(tmp_path / "sandbox.db")
    with start_sandbox(db_path=path) as first:
        post(first, {"events": [event("a")]})
    with start_sandbox(db_path=path) as second:
        assert [e["id"] for e in second.events(PIXEL_ID)] == ["a"]
        again = post(second, {"events": [event("a")]})
        assert again.json()["duplicates"] == 1


def test_a_stopped_sandbox_refuses_connections() -> None:
    sandbox = start_sandbox()
    url = sandbox.url
    sandbox.stop()
    sandbox.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.post(url, params={"pid": PIXEL_ID}, json={"events": []}, timeout=5)
