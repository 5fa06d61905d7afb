"""Mapped fields that never gave a value (pipeline/field_watch.py): a pure bookkeeper."""

from __future__ import annotations

from target_openai_capi.pipeline.field_watch import FieldWatch, carried

FIELDS = {"orders": {"amount": "total", "currency": "cur", "email": "mail", "oppref": "click"}}


def test_a_field_is_named_only_while_no_event_carried_it() -> None:
    watch = FieldWatch(FIELDS)
    # Identifiers and oppref are not watched: match coverage counts them, many records have none.
    assert {stream: set(fields) for stream, fields in watch.unseen.items()} == {
        "orders": {"amount", "currency"}
    }
    watch.event("orders", {"id": "1", "data": {"type": "contents", "currency": "USD"}})
    # A worker's event, by what it carried: an item's amount is not the event's.
    item = {"id": "sku", "amount": 5, "currency": "USD"}
    worker_event = {"id": "2", "data": {"type": "contents", "contents": [item]}}
    watch.carried("orders", carried(worker_event))
    [line] = watch.lines()
    assert line.startswith(
        "streams.orders.fields.amount ('total') gave no value in any of the 2 events"
    )
    watch.carried("orders", carried({"id": "3", "data": {"amount": 5, "currency": "X"}}))
    assert watch.lines() == []
    assert watch.unseen == {}  # every field seen: no stream watched any more


def test_a_stream_that_built_no_event_says_nothing() -> None:
    watch = FieldWatch(FIELDS)
    assert watch.lines() == []


def test_a_field_some_types_have_no_place_for_says_so_beside_the_path() -> None:
    """A stream of many types (event_type_from) whose events were all leads: its `contents`
    gave none because a lead's data has none, not only because the path may be wrong."""
    fields = {"contents": "items", "plan_id": "plan"}
    watch = FieldWatch({"tracks": fields, "orders": fields}, many_types=["tracks"])
    watch.event("tracks", {"id": "1", "data": {"type": "customer_action"}})
    watch.event("orders", {"id": "1", "data": {"type": "contents"}})
    orders_contents, _, contents, plan = watch.lines()
    # A stream of one type (orders) is not sent to look at the types: only at the path.
    assert orders_contents.endswith(
        "Check the path (JMESPath names a property exactly, case and all)"
    )
    assert contents.endswith(
        "Check the path (JMESPath names a property exactly, case and all), or the events' "
        "types: only order_created, checkout_started, items_added, contents_viewed, "
        "page_viewed, subscription_created, trial_started and custom events have contents"
    )
    assert plan.endswith(
        "or the events' types: only subscription_created, trial_started and custom events "
        "have plan_id"
    )
