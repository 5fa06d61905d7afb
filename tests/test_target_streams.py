"""The real CLI on warehouse-shaped, event-name-table and Stripe-style streams."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import API_KEY, PIXEL_ID
from support import iso_minutes_ago, now_ms, record, run_target, schema, state, target_config

from target_openai_capi.sandbox import FaultConfig


def base_config(sandbox, tmp_path, streams):
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": streams,
    }


def test_warehouse_table_shaped_like_the_event_needs_no_mapping(sandbox, tmp_path):
    ts = now_ms() - 60_000
    props = {
        name: {}
        for name in (
            "id",
            "type",
            "timestamp_ms",
            "amount_minor",
            "currency",
            "email",
            "external_id",
            "opt_out",
            "oppref",
        )
    }
    lines = [
        schema("conversions", props, ["id"]),
        record(
            "conversions",
            {
                "id": "c-1",
                "type": "order_created",
                "timestamp_ms": ts,
                "amount_minor": 2599,
                "currency": "usd",
                "email": "A@B.co",
                "external_id": 42,
                "opt_out": True,
                "oppref": "opp_1",
            },
        ),
        record(
            "conversions",
            {
                "id": "c-2",
                "type": "lead_created",
                "timestamp_ms": ts,
                "amount_minor": None,
                "currency": None,
                "email": None,
                "external_id": None,
                "opt_out": False,
                "oppref": None,
            },
        ),
    ]
    run = run_target(base_config(sandbox, tmp_path, {"conversions": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["c-1"] == {
        "id": "c-1",
        "type": "order_created",
        "timestamp_ms": ts,
        "oppref": "opp_1",
        "opt_out": True,
        "user": {
            "emails_sha256": [hashlib.sha256(b"a@b.co").hexdigest()],
            "external_ids_sha256": [hashlib.sha256(b"42").hexdigest()],
        },
        "data": {"type": "contents", "amount": 2599, "currency": "USD"},
    }
    assert events["c-2"] == {
        "id": "c-2",
        "type": "lead_created",
        "timestamp_ms": ts,
        "data": {"type": "customer_action"},
    }


def test_opt_out_as_a_form_or_an_export_writes_it(sandbox, tmp_path):
    """A checkbox posts 'on' (unchecked, nothing or 'off'); a CSV export writes 'NULL' for no
    value: each rejected the conversion as 'not a boolean'."""
    ts = now_ms() - 60_000
    words = {"c-on": "on", "c-ON": " ON ", "c-off": "off", "c-null": "NULL", "c-na": "N/A"}
    lines = [schema("conversions", {"id": {}, "opt_out": {}}, ["id"])]
    lines += [
        record("conversions", {"id": i, "type": "lead_created", "timestamp_ms": ts, "opt_out": w})
        for i, w in words.items()
    ]
    maybe = {"id": "c-x", "type": "lead_created", "timestamp_ms": ts, "opt_out": "maybe"}
    lines.append(record("conversions", maybe))
    run = run_target(base_config(sandbox, tmp_path, {"conversions": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert {i: e.get("opt_out") for i, e in events.items()} == {
        "c-on": True,
        "c-ON": True,
        "c-off": None,
        "c-null": None,
        "c-na": None,
    }
    assert "opt_out 'maybe' is not a boolean" in run.stderr


def test_event_name_table_maps_names_and_sends_unknown_names_as_custom(sandbox, tmp_path):
    at = iso_minutes_ago(3, "+02:00")
    streams = {
        "tracks": {
            "event_type_from": "event",
            "event_types": {"Demo Booked": "appointment_scheduled"},
            "fields": {
                "id": "message_id",
                "timestamp": "timestamp",
                "email": "context.traits.email",
                "amount": "properties.revenue",
                "currency": "properties.currency",
            },
        }
    }
    lines = [schema("tracks", {"message_id": {"type": "string"}}, ["message_id"])]
    names = ["Order Completed", "purchase", "Demo Booked", "AddToCart", "Webinar Watched"]
    for i, name in enumerate(names):
        lines.append(
            record(
                "tracks",
                {
                    "message_id": f"m{i}",
                    "event": name,
                    "timestamp": at,
                    "context": {"traits": {"email": "x@y.com"}},
                    "properties": {"revenue": 12.5, "currency": "EUR"},
                },
            )
        )
    run = run_target(base_config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert [events[f"m{i}"]["type"] for i in range(5)] == [
        "order_created",
        "order_created",
        "appointment_scheduled",
        "items_added",
        "custom",
    ]
    assert events["m4"]["custom_event_name"] == "webinar_watched"  # made valid: no spaces
    assert events["m0"]["data"] == {"type": "contents", "amount": 1250, "currency": "EUR"}
    # customer_action takes an amount but no contents; the shape is respected per type.
    assert events["m2"]["data"] == {"type": "customer_action", "amount": 1250, "currency": "EUR"}


def test_stripe_style_minor_amounts_and_epoch_seconds(sandbox, tmp_path):
    created = now_ms() // 1000 - 120
    streams = {
        "subscriptions": {
            "event_type_from": "status",
            "event_types": {"trialing": "trial_started", "active": "subscription_created"},
            "fields": {
                "id": "id",
                "timestamp": "created",
                "amount_minor": "plan.amount",
                "currency": "plan.currency",
                "plan_id": "plan.id",
                "oppref": "metadata.oppref",
                "external_id": "customer",
            },
        }
    }
    lines = [schema("subscriptions", {"id": {"type": "string"}}, ["id"])]
    for sub_id, status in (("sub_1", "active"), ("sub_2", "trialing")):
        lines.append(
            record(
                "subscriptions",
                {
                    "id": sub_id,
                    "status": status,
                    "created": created,
                    "customer": "cus_9",
                    "plan": {"id": "price_pro", "amount": 2900, "currency": "usd"},
                    "metadata": {"oppref": "opp_s"},
                },
            )
        )
    run = run_target(base_config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["sub_1"]["type"] == "subscription_created"
    assert events["sub_2"]["type"] == "trial_started"
    assert events["sub_1"]["timestamp_ms"] == created * 1000
    assert events["sub_1"]["data"] == {
        "type": "plan_enrollment",
        "amount": 2900,
        "currency": "USD",
        "plan_id": "price_pro",
    }


def test_unmapped_streams_are_counted_and_skipped_with_one_warning(sandbox, tmp_path):
    lines = [schema("customers", {"id": {"type": "integer"}}, ["id"])]
    lines += [record("customers", {"id": i}) for i in range(3)]
    run = run_target(base_config(sandbox, tmp_path, {}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sandbox.stats()["requests"] == 0
    assert run.stderr.count("'customers' has no entry under `streams`") == 1
    assert "skipped_stream=3" in run.stderr


def test_records_resent_by_the_tap_are_sent_once(sandbox, tmp_path):
    ts = now_ms() - 1000
    lines = [schema("conversions", {"id": {}}, ["id"])]
    rec = {"id": "dup-1", "type": "lead_created", "timestamp_ms": ts}
    lines += [record("conversions", rec), state({"b": 1}), record("conversions", rec)]
    run = run_target(base_config(sandbox, tmp_path, {"conversions": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 1
    assert sandbox.stats()["duplicates"] == 0  # the second copy never left the process
    assert "duplicate=1" in run.stderr


def test_state_follows_accepted_events_and_never_passes_unsent_ones(sandbox, tmp_path):
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"conversions": {}})
    config.update(batch_size=2, max_concurrent_requests=1)
    lines = [schema("conversions", {"id": {}}, ["id"])]
    for i in range(5):
        lines.append(
            record("conversions", {"id": f"s{i}", "type": "lead_created", "timestamp_ms": ts})
        )
        lines.append(state({"position": i}))

    # The API is down: nothing is delivered, so no STATE may go out and the run fails.
    sandbox.set_faults(FaultConfig(rate_503=1.0, retry_after=0))
    config.update(max_attempts=2, max_retry_seconds=5)
    failed = run_target(config, lines, tmp_path)
    assert failed.returncode == 1
    assert failed.states == []
    assert "503" in failed.stderr
    assert "Traceback" not in failed.output
    assert sandbox.events(PIXEL_ID) == []

    # Rerun once the API is back: every event arrives, STATE follows in order.
    sandbox.set_faults(FaultConfig())
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.states == [{"position": i} for i in range(5)]
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == [f"s{i}" for i in range(5)]


def test_dead_letters_replay_once_the_cause_is_fixed(sandbox, tmp_path):
    ts = now_ms() - 60_000
    props = {"id": {"type": "string"}, "total": {"type": "number"}, "cur": {"type": "string"}}
    lines = [schema("orders", props, ["id"])]
    lines += [
        record("orders", {"id": f"o{i}", "total": 10.5, "cur": "EUR", "ts": ts}) for i in range(3)
    ]
    # A mapping mistake: the currency column is called `cur`, not `currency`.
    broken = {"event_type": "order_created", "fields": {"timestamp_ms": "ts", "amount": "total"}}
    config = base_config(sandbox, tmp_path, {"orders": broken})
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sandbox.events(PIXEL_ID) == []
    assert "rejected=3" in run.stderr

    dead_file = tmp_path / "dead.jsonl"
    replay_input = tmp_path / "replay.jsonl"
    dead_file.rename(replay_input)
    config["streams"]["orders"]["fields"]["currency"] = "cur"
    replay = run_target(config, [], tmp_path, extra_args=["--input", str(replay_input)])
    assert replay.returncode == 0, replay.output
    events = sorted(sandbox.events(PIXEL_ID), key=lambda e: e["id"])
    assert [e["id"] for e in events] == ["o0", "o1", "o2"]
    assert events[0]["data"] == {"type": "contents", "amount": 1050, "currency": "EUR"}
    assert not dead_file.exists()  # nothing was rejected the second time


def test_dead_letters_replay_under_the_schema_each_record_came_with(sandbox, tmp_path):
    """The stream's SCHEMA changes mid-run (the id becomes a string): the dead-letter file
    holds each record after the SCHEMA it came with, so the replay sends all of them (the
    file used to hold the first SCHEMA only, and the replay refused the later records)."""
    ts = now_ms() - 60_000
    first = {"id": {"type": "integer"}, "total": {"type": "number"}, "cur": {"type": "string"}}
    later = {**first, "id": {"type": "string"}, "total": {"type": "string"}}
    lines = [
        schema("orders", first, ["id"]),
        record("orders", {"id": 1, "total": 5, "cur": "EURO", "ts": ts}),
        record("orders", {"id": 2, "total": 6, "cur": "EURO", "ts": ts}),
        schema("orders", later, ["id"]),
        record("orders", {"id": "A3", "total": "7.00", "cur": "EURO", "ts": ts}),
        schema("orders", later, ["id"]),  # (sent again, unchanged: no new SCHEMA line)
        record("orders", {"id": "A4", "total": "8.00", "cur": "EURO", "ts": ts}),
    ]
    fields = {"timestamp_ms": "ts", "amount": "total", "currency": "cur"}
    config = base_config(
        sandbox, tmp_path, {"orders": {"event_type": "order_created", "fields": fields}}
    )
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "rejected=4" in run.stderr  # unknown currency 'EURO'

    dead_file = tmp_path / "dead.jsonl"
    written = [json.loads(line) for line in dead_file.read_text().splitlines()]
    assert [(m["type"], m.get("record", {}).get("id")) for m in written] == [
        ("SCHEMA", None),
        ("RECORD", 1),
        ("RECORD", 2),
        ("SCHEMA", None),
        ("RECORD", "A3"),
        ("RECORD", "A4"),
    ]
    replay_input = tmp_path / "replay.jsonl"
    replay_input.write_text(dead_file.read_text().replace('"EURO"', '"EUR"'))
    dead_file.unlink()
    replay = run_target(config, [], tmp_path, extra_args=["--input", str(replay_input)])
    assert replay.returncode == 0, replay.output
    events = sorted(sandbox.events(PIXEL_ID), key=lambda e: e["id"])
    assert [(e["id"], e["data"]["amount"]) for e in events] == [
        ("1", 500),
        ("2", 600),
        ("A3", 700),
        ("A4", 800),
    ]
    assert not dead_file.exists()  # nothing was rejected the second time


def test_a_mapped_user_field_the_style_cannot_send_is_named_at_start_up(sandbox, tmp_path):
    streams = {"conversions": {"fields": {"date_of_birth": "dob"}}}
    lines = [
        schema("conversions", {"id": {}}, ["id"]),
        record(
            "conversions",
            {"id": "d1", "type": "lead_created", "timestamp_ms": now_ms(), "dob": "1990-01-02"},
        ),
    ]
    run = run_target(base_config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "streams.conversions.fields.date_of_birth is not sent" in run.stderr
    assert "user" not in sandbox.events(PIXEL_ID)[0]


def test_sdk_stream_maps_transform_and_filter_before_mapping(sandbox, tmp_path):
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"conversions": {}})
    config["stream_maps"] = {
        "conversions": {"__filter__": "id != 'drop-me'", "type": "'lead_created'"}
    }
    lines = [
        schema(
            "conversions",
            {
                "id": {"type": "string"},
                "type": {"type": "string"},
                "timestamp_ms": {"type": "integer"},
            },
            ["id"],
        )
    ]
    for rid in ("keep-me", "drop-me"):
        lines.append(record("conversions", {"id": rid, "type": "whatever", "timestamp_ms": ts}))
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [(e["id"], e["type"]) for e in sandbox.events(PIXEL_ID)] == [("keep-me", "lead_created")]
    assert "received=2" in run.stderr
    assert "filtered=1" in run.stderr


@pytest.mark.parametrize(
    "stream_map",
    [{"__filter__": "id == 'none of them'"}, {"type": "id.upper() + 1"}],
    ids=["drops every record", "fails on every record"],
)
def test_a_stream_map_that_leaves_nothing_of_a_configured_stream_is_no_misnamed_entry(
    stream_map, sandbox, tmp_path
):
    """Beside an unconfigured stream, a configured one whose map drops (or fails on) each
    record: the run ends well, with its STATE; it does not say the entry matched nothing."""
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"conversions": {}})
    config["stream_maps"] = {"conversions": stream_map}
    lines = [schema("conversions", {"id": {"type": "string"}}, ["id"])]
    lines += [
        record("conversions", {"id": f"c{n}", "type": "lead_created", "timestamp_ms": ts})
        for n in range(2)
    ]
    lines += [schema("customers", {"id": {}}, ["id"]), record("customers", {"id": 1})]
    lines.append(state({"bm": 3}))
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "none matched an entry" not in run.stderr
    assert run.states == [{"bm": 3}]
    assert sandbox.events(PIXEL_ID) == []


@pytest.mark.parametrize("aliased", [False, True], ids=["own name", "aliased"])
def test_a_stream_map_filter_that_drops_every_record_is_named_at_the_end(
    aliased, sandbox, tmp_path
):
    """The end-of-run warning names the stream map that dropped every record, as the user
    wrote it; not a `streams` entry (with an alias, `streams.orders` is not the one that
    applied), and not nothing (with only the alias under `streams`)."""
    ts = now_ms() - 1000
    streams = {"sales": {}, "orders": {}} if aliased else {"orders": {}}
    config = base_config(sandbox, tmp_path, streams)
    stream_map = {"__filter__": "id == 'none of them'"}
    config["stream_maps"] = {
        "orders": {**stream_map, "__alias__": "sales"} if aliased else stream_map
    }
    lines = [schema("orders", {"id": {"type": "string"}}, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "type": "lead_created", "timestamp_ms": ts})
        for n in range(3)
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "Stream 'orders': its stream maps dropped all 3 of its records" in run.stderr
    assert "streams.orders: all" not in run.stderr
    assert "filtered=3" in run.stderr
    assert sandbox.events(PIXEL_ID) == []


@pytest.mark.parametrize("how", ["orders: null", "__else__: null"])
@pytest.mark.parametrize("entry", [False, True], ids=["no entry", "an entry"])
def test_a_stream_the_stream_maps_leave_out_is_named_only_when_an_entry_awaits_it(
    how, entry, sandbox, tmp_path
):
    """A stream left out by stream_maps (`orders: null`, or `__else__: null` not naming it) is
    left out on purpose, its records counted as filtered; said at the end only when a `streams`
    entry was to get them (the two settings say different things)."""
    ts = now_ms() - 1000
    streams = {"orders": {}, "leads": {}} if entry else {"leads": {}}
    config = base_config(sandbox, tmp_path, streams)
    config["stream_maps"] = (
        {"orders": None} if how == "orders: null" else {"leads": {}, "__else__": None}
    )
    config["allow_unmatched_streams"] = True
    lines = [schema("orders", {"id": {"type": "string"}}, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "type": "lead_created", "timestamp_ms": ts})
        for n in range(2)
    ]
    lines += [schema("leads", {"id": {"type": "string"}}, ["id"])]
    lines += [record("leads", {"id": "l1", "type": "lead_created", "timestamp_ms": ts})]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "filtered=2" in run.stderr
    warned = "Stream 'orders': its stream maps dropped all 2 of its records" in run.stderr
    assert warned == entry
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["l1"]


def test_validate_first_checks_each_batch_before_sending_it(sandbox, tmp_path):
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"conversions": {}})
    config.update(validate_first=True, batch_size=2)
    lines = [schema("conversions", {"id": {}}, ["id"])]
    lines += [
        record("conversions", {"id": f"v{i}", "type": "lead_created", "timestamp_ms": ts})
        for i in range(4)
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    stats = sandbox.stats()
    assert stats["validate_only_requests"] == 2  # one dry pass per batch of 2
    assert stats["requests"] == 4
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["v0", "v1", "v2", "v3"]
    assert "sent=4" in run.stderr


def test_a_copy_of_an_event_the_api_refused_is_sent_again(skewed_sandbox, tmp_path):
    """The dedup window forgets an event the API refused: the tap's later, fixed copy is sent."""
    lines = [schema("conversions", {"id": {}}, ["id"])]
    # Two hours old: inside the target's window, stale on the skewed sandbox's clock.
    stale = {"id": "retry-1", "type": "lead_created", "timestamp_ms": now_ms() - 2 * 3600 * 1000}
    fixed = {**stale, "timestamp_ms": now_ms() - 1000}
    lines += [record("conversions", stale), record("conversions", fixed)]
    config = base_config(skewed_sandbox, tmp_path, {"conversions": {}})
    config.update(batch_size=1, max_concurrent_requests=1)  # the refusal comes before the copy
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["timestamp_ms"] for e in skewed_sandbox.events(PIXEL_ID)] == [fixed["timestamp_ms"]]
    assert "sent=1" in run.stderr
    assert "rejected=1" in run.stderr
    assert "duplicate=0" in run.stderr


def test_mapping_phone_without_a_region_says_what_a_national_number_becomes(sandbox, tmp_path):
    lines = [
        schema("leads", {"id": {"type": "string"}}, ["id"]),
        record("leads", {"id": "l1", "ts": now_ms() - 1000, "p": "(415) 555-2671"}),
    ]
    entry = {"event_type": "lead_created", "fields": {"timestamp_ms": "ts", "phone": "p"}}
    said = "streams.leads maps phone and default_phone_region is unset"
    run = run_target(base_config(sandbox, tmp_path, {"leads": entry}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert said in run.stderr
    [event] = sandbox.events(PIXEL_ID)
    assert event["user"] == {"phone_numbers_sha256": [hashlib.sha256(b"4155552671").hexdigest()]}

    config = base_config(sandbox, tmp_path, {"leads": entry}) | {"default_phone_region": "US"}
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert said not in run.stderr


def test_a_scheduled_run_with_nothing_new_is_not_a_warning(sandbox, tmp_path):
    """A tap with nothing new sends its SCHEMA and STATE, no records: the run says so at INFO,
    not "streams.conversions matched nothing" as a warning on every quiet run. An entry whose
    stream did not come at all is still named."""
    config = base_config(sandbox, tmp_path, {"conversions": {}, "refunds": {}})
    lines = [schema("conversions", {"id": {"type": "string"}}, ["id"]), state({"bm": 1})]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    said = [line for line in run.stderr.splitlines() if "its SCHEMA arrived, and no" in line]
    assert len(said) == 1
    assert "| INFO " in said[0]
    assert "streams.conversions:" in said[0]
    assert "streams.conversions matched nothing" not in run.stderr
    assert "streams.refunds matched nothing" in run.stderr
    assert run.states == [{"bm": 1}]


def test_two_streams_whose_events_share_names_and_ids_are_told_so(sandbox, tmp_path):
    """Two tables numbered from 1, mapped to one event type: the second's events were counted
    duplicates with no word (the API would keep only the first of each id too)."""
    entry = {"event_type": "lead_created", "fields": {"email": "email"}}
    streams = {"web_leads": entry, "phone_leads": entry}
    props = {"id": {"type": "integer"}, "email": {"type": "string"}, "timestamp": {}}
    at = iso_minutes_ago(3)
    lines = [schema("web_leads", props, ["id"]), schema("phone_leads", props, ["id"])]
    for n in (1, 2):
        lines.append(record("web_leads", {"id": n, "email": f"w{n}@example.com", "timestamp": at}))
    for n in (1, 2):
        lines.append(
            record("phone_leads", {"id": n, "email": f"p{n}@example.com", "timestamp": at})
        )
    run = run_target(target_config(sandbox.url, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "phone_leads: received=2 duplicate=2" in run.stderr
    told = "Stream 'phone_leads': an event has the name (lead_created) and id of an event of "
    assert run.stderr.count(told + "stream 'web_leads'") == 1
    assert "counted a duplicate and not sent unless that one is refused" in run.stderr
    assert "join(':', ['phone_leads', to_string(id)])" in run.stderr
    # What the message says to do: both tables' events are sent.
    sandbox.reset()
    fixed = {
        name: {
            **entry,
            "fields": {**entry["fields"], "id": f"join(':', ['{name}', to_string(id)])"},
        }
        for name in streams
    }
    run = run_target(target_config(sandbox.url, tmp_path, fixed), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 4


def test_two_tables_longer_than_the_keys_remembered_are_told_when_their_ids_collide(
    sandbox, tmp_path
):
    """Each longer than the 20,000 recent keys the run remembers: the second table's ids met
    none of the first's, so none was counted, nothing was said, and the API dropped every
    event of the second table (it keeps the first of an id). The run's first keys are kept."""
    from target_openai_capi.pipeline.events import RECENT_EVENT_KEYS

    rows = RECENT_EVENT_KEYS + 1
    entry = {"event_type": "order_created", "fields": {"timestamp": "at"}}
    streams = {"orders": entry, "pos_orders": entry}
    props = {"id": {"type": "integer"}, "at": {"type": "string"}}
    at = iso_minutes_ago(3)
    lines = [schema("orders", props, ["id"]), schema("pos_orders", props, ["id"])]
    for stream in streams:
        lines += [record(stream, {"id": n, "at": at}) for n in range(1, rows + 1)]
        lines.append(state({"done": stream}))
    run = run_target(target_config(sandbox.url, tmp_path, streams), lines, tmp_path, timeout=300)
    assert run.returncode == 0, run.output
    assert f"pos_orders: received={rows} duplicate={rows}" in run.stderr
    told = "Stream 'pos_orders': an event has the name (order_created) and id of an event of "
    assert run.stderr.count(told + "stream 'orders'") == 1
    assert sandbox.stats()["duplicates"] == 0  # (none sent for the API to drop)
    assert len(sandbox.events(PIXEL_ID)) == rows


def test_custom_events_of_two_names_sharing_ids_are_both_sent_with_nothing_said(sandbox, tmp_path):
    """The page: "For custom events, use the same `custom_event_name` on both sides as well.
    Deduplication uses your Pixel ID, `event_name`, and `id`." Two custom names numbered from 1
    are distinct keys: every event is sent, and the run does not advise changing the ids (ids
    made unique across names would no longer match the pixel's event_id)."""
    streams = {
        name: {"event_type": "custom", "fields": {"custom_event_name": f"'{name}'"}}
        for name in ("newsletter_signup", "demo_request")
    }
    props = {"id": {"type": "integer"}, "timestamp": {}}
    at = iso_minutes_ago(3)
    lines = [schema(name, props, ["id"]) for name in streams]
    for name in streams:
        lines += [record(name, {"id": n, "timestamp": at}) for n in (1, 2, 3)]
    lines.append(record("newsletter_signup", {"id": 4, "timestamp": at}))
    run = run_target(target_config(sandbox.url, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "sent=7" in run.stderr
    assert "duplicate=0" in run.stderr
    stored = sorted((e["custom_event_name"], e["id"]) for e in sandbox.events(PIXEL_ID))
    assert stored == sorted(
        [("demo_request", str(n)) for n in (1, 2, 3)]
        + [("newsletter_signup", str(n)) for n in (1, 2, 3, 4)]
    )
    assert "WARNING" not in run.stderr, run.stderr


def test_custom_events_of_one_name_in_a_dry_run_stream_and_a_live_one_say_nothing(
    sandbox, tmp_path
):
    """A stream tried out in dry run beside the live one, both sending `signup`: the same name,
    not two names sharing ids (the dry run's name was compared with its prefix)."""
    entry = {"event_type": "custom", "fields": {"custom_event_name": "'signup'"}}
    streams = {"preview": {**entry, "dry_run": True}, "live": entry}
    props = {"id": {"type": "integer"}, "timestamp": {}}
    at = iso_minutes_ago(3)
    lines = [schema(name, props, ["id"]) for name in streams]
    for name in streams:
        lines += [record(name, {"id": n, "timestamp": at}) for n in (1, 2)]
    run = run_target(target_config(sandbox.url, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "validated=2" in run.stderr
    assert "sent=2" in run.stderr


def test_an_alias_with_a_filter_is_not_said_to_drop_every_record(sandbox, tmp_path):
    """`orders` aliased to `purchases` with a `__filter__`: the records it kept are counted under
    `purchases`, those it dropped under `orders`, and the end of the run said its maps 'dropped
    all' of orders' records while most were sent."""
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"purchases": {}})
    config["stream_maps"] = {"orders": {"__alias__": "purchases", "__filter__": "status == 'paid'"}}
    lines = [schema("orders", {"id": {"type": "string"}, "status": {"type": "string"}}, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "type": "lead_created", "timestamp_ms": ts,
                          "status": "paid" if n else "refunded"})
        for n in range(3)
    ]  # fmt: skip
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["o1", "o2"]
    assert "dropped all" not in run.stderr


def test_an_entry_misspelt_as_its_stream_maps_key_stops_the_run(sandbox, tmp_path):
    """`streams.order` with `stream_maps: {order: {...}, __else__: null}` for a tap's `orders`:
    the maps dropped every record (counted filtered), the run ended 0 with its STATE past them,
    and only a warning said the entry matched nothing."""
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"order": {}})
    config["stream_maps"] = {"order": {"__filter__": "status == 'paid'"}, "__else__": None}
    lines = [schema("orders", {"id": {"type": "string"}, "status": {"type": "string"}}, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "type": "lead_created", "timestamp_ms": ts,
                          "status": "paid"})
        for n in range(3)
    ]  # fmt: skip
    lines.append(state({"b": 1}))
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "3 records arrived and none matched an entry under `streams`" in run.stderr
    assert run.states == []


def test_a_stream_the_maps_drop_by_name_is_no_misnamed_entry(sandbox, tmp_path):
    """`stream_maps: {customers: null}` drops customers on purpose: a run whose input held only
    customers stopped, 'none matched an entry', its STATE held back."""
    ts = now_ms() - 1000
    config = base_config(sandbox, tmp_path, {"orders": {}})
    config["stream_maps"] = {"customers": None}
    lines = [schema("customers", {"id": {"type": "string"}}, ["id"])]
    lines += [record("customers", {"id": "c1", "type": "lead_created", "timestamp_ms": ts})]
    lines.append(state({"bookmarks": {"customers": 1}}))
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.states == [{"bookmarks": {"customers": 1}}]


def test_two_tables_a_stream_map_aliases_to_one_stream_are_told_when_their_ids_collide(
    sandbox, tmp_path
):
    """orders_us and orders_eu, each numbered from 1, aliased to `orders`: the EU orders were
    counted duplicates without a word, where two streams of their own are told."""
    at = iso_minutes_ago(5)
    props = {"id": {"type": "integer"}, "at": {"type": "string"}}
    lines = [schema("orders_us", props, ["id"]), schema("orders_eu", props, ["id"])]
    lines += [record(s, {"id": i, "at": at}) for i in (1, 2) for s in ("orders_us", "orders_eu")]
    maps = {"orders_us": {"__alias__": "orders"}, "orders_eu": {"__alias__": "orders"}}
    streams = {"orders": {"event_type": "order_created", "fields": {"timestamp": "at"}}}
    cfg = target_config(sandbox.url, tmp_path, streams, stream_maps=maps)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "orders: received=4 sent=2 duplicate=2" in run.stderr
    said = [line.split(" | ", 3)[3] for line in run.stderr.splitlines() if "counted a dup" in line]
    assert said == [
        "Stream 'orders_eu' as 'orders': an event has the name (order_created) and id of an "
        "event of stream 'orders_us' as 'orders' in this run, so it is counted a duplicate and "
        "not sent unless that one is refused (the API keeps the first event of a name and id). "
        "If the two streams' records are different conversions (two tables numbered from 1), "
        "add to each stream map a property unique across them, such as "
        '"order_key": "\'orders_eu:\' + str(id)", and map fields.id to it.'
    ]
    # As it says: ids unique across the two tables, every order sent.
    maps = {
        "orders_us": {"__alias__": "orders", "order_key": "'orders_us:' + str(id)"},
        "orders_eu": {"__alias__": "orders", "order_key": "'orders_eu:' + str(id)"},
    }
    streams["orders"]["fields"]["id"] = "order_key"
    run = run_target({**cfg, "stream_maps": maps}, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "orders: received=4 sent=4" in run.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID))[-2:] == ["orders_us:1", "orders_us:2"]


def test_the_advice_for_aliased_tables_colliding_works_with_their_own_key(sandbox, tmp_path):
    """Keyed by order_id, the advice said `str(id)`, and following it rejected every record
    (NameNotDefined: 'id'): it names what the id is made of."""
    at = iso_minutes_ago(5)
    props = {"order_id": {"type": "integer"}, "at": {"type": "string"}}
    lines = [schema("orders_us", props, ["order_id"]), schema("orders_eu", props, ["order_id"])]
    lines += [
        record(s, {"order_id": i, "at": at}) for i in (1, 2) for s in ("orders_us", "orders_eu")
    ]
    maps = {"orders_us": {"__alias__": "orders"}, "orders_eu": {"__alias__": "orders"}}
    streams = {"orders": {"event_type": "order_created", "fields": {"timestamp": "at"}}}
    run = run_target(
        target_config(sandbox.url, tmp_path, streams, stream_maps=maps), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    assert 'such as "order_key": "\'orders_eu:\' + str(order_id)", and map fields.id' in (
        run.stderr
    )
    maps = {
        "orders_us": {"__alias__": "orders", "order_key": "'orders_us:' + str(order_id)"},
        "orders_eu": {"__alias__": "orders", "order_key": "'orders_eu:' + str(order_id)"},
    }
    streams["orders"]["fields"]["id"] = "order_key"
    cfg = target_config(sandbox.url, tmp_path, streams, stream_maps=maps)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "orders: received=4 sent=4" in run.stderr


def test_an_entry_in_dry_run_whose_stream_never_came_is_named(sandbox, tmp_path):
    """Asking how many records a dry-run entry had received counted its stream as arrived:
    `streams.<entry> matched nothing` was never said of an entry with dry_run set."""
    lines = [schema("leads", {"id": {"type": "string"}}, ["id"])]
    lines.append(record("leads", {"id": "l1", "timestamp": iso_minutes_ago(5), "type": "x"}))
    lines.append(state({"at": 1}))  # (a STATE asks whether a dry run's records came)
    streams = {"leads": {}, "refunds": {"event_type": "custom", "dry_run": True}}
    run = run_target(target_config(sandbox.url, tmp_path, streams), lines, tmp_path)
    assert "streams.refunds matched nothing" in run.stderr


def test_a_record_with_no_event_name_is_told_what_was_read_for_it(sandbox, tmp_path):
    """`streams: {orders: {}}` on a table without a `type` column rejected every record as
    'event name is empty', a name the user never mapped; and an event_type_from that gives
    nothing was not named."""
    at = iso_minutes_ago(2)
    lines = [
        schema("orders", {"id": {}, "timestamp": {}}, ["id"]),
        record("orders", {"id": "1", "timestamp": at}),
        schema("ev", {"id": {}, "kind": {}, "timestamp": {}}, ["id"]),
        record("ev", {"id": "2", "timestamp": at}),
    ]
    streams = {"orders": {}, "ev": {"event_type_from": "kind"}}
    run = run_target(base_config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    reasons = [
        json.loads(line)["dead_letter"]["reason"]
        for line in (tmp_path / "dead.jsonl").read_text().splitlines()
        if '"RECORD"' in line
    ]
    assert reasons == [
        "event name is empty: the record's `type` property, which names the event when the "
        "stream's entry sets neither event_type nor event_type_from, is missing or empty; set "
        "one of them (event_type: order_created, or event_type_from: the column of the name)",
        "event name is empty: event_type_from 'kind' gave no value for this record",
    ]


def test_the_dry_run_warning_says_what_was_written_and_why(sandbox, tmp_path):
    """A STATE written before the first record of a stream in dry_run was said not to be; and a
    run whose dry_run is true, with only a stream set to send for real arriving, was said to
    have '0 records of streams in dry_run' to read again."""
    at = iso_minutes_ago(60)
    props = {"id": {"type": "string"}, "created_at": {"type": "string"}}
    entry = {"event_type": "lead_created", "fields": {"timestamp": "created_at"}}
    lines = [
        schema("a", props, ["id"]),
        schema("b", props, ["id"]),
        state({"seq": "0"}),
        record("a", {"id": "1", "created_at": at}),
        record("b", {"id": "1", "created_at": at}),
        state({"seq": "1"}),
    ]
    streams = {"a": {**entry, "dry_run": True}, "b": entry}
    run = run_target(base_config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.states == [{"seq": "0"}]
    assert (
        "Dry run: no STATE was written after the one before the first of them (1 records of "
        "streams in dry_run)" in run.stderr
    )
    only_b = [line for line in lines if '"stream": "a"' not in line]
    streams = {"a": entry, "b": {**entry, "dry_run": False}}
    cfg = {**base_config(sandbox, tmp_path, streams), "dry_run": True}
    run = run_target(cfg, only_b, tmp_path)
    assert run.returncode == 0, run.output
    assert run.states == []
    assert "(dry_run is true, though no record of a stream in dry_run came)" in run.stderr
    assert "0 records" not in run.stderr
