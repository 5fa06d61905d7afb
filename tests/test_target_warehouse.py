"""The real CLI behind warehouse-style taps: stable ids, misnamed streams, JSON text columns."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from conftest import API_KEY, PIXEL_ID
from support import iso_minutes_ago, record, run_target, schema, state, target_config

AT = iso_minutes_ago(4)
ROW_SCHEMA = {
    "order_ref": {"type": "string"},
    "timestamp": {"type": "string"},
    "type": {"type": "string"},
    "_sdc_extracted_at": {"type": "string"},
    "_sdc_last_modified": {"type": "string"},
    "_fivetran_synced": {"type": "string"},
    "_airbyte_extracted_at": {"type": "string"},
    "_dlt_load_id": {"type": "string"},
}


def full_width(text: str) -> str:
    """ASCII text as a Japanese input method types it (U+FF01-U+FF5E)."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


def config(
    sandbox: Any, tmp_path: Any, streams: dict[str, Any], workers: int | None = None, **extra: Any
) -> dict:
    """The target's config for these streams; `workers`: worker_processes, else the default."""
    if workers is not None:
        extra["worker_processes"] = workers
    return target_config(sandbox.url, tmp_path, streams, **extra)


def run_logged(
    sandbox: Any, tmp_path: Any, streams: dict[str, Any], lines: list[str], workers: int | None
) -> tuple[Any, str]:
    """The CLI on `lines` with a request log, run to success: the run and the log's text
    (every request body as sent, to look for raw personal data in)."""
    log = tmp_path / "requests.jsonl"
    cfg = config(sandbox, tmp_path, streams, workers, request_log_path=str(log))
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    return run, log.read_text()


def h(text: str) -> str:
    """A text as custom_data, an id or an item sends its personal data: sha256_ and its hash."""
    return "sha256_" + hashlib.sha256(text.encode()).hexdigest()


def rows(read_at: str) -> list[str]:
    """Three rows as tap-csv / tap-jsonl emit them: no id, no key properties, read metadata
    (and the columns loaders add to a warehouse table: Fivetran, Airbyte, dlt)."""
    lines = [schema("conversions", ROW_SCHEMA)]
    metadata = ["_sdc_extracted_at", "_sdc_last_modified", "_fivetran_synced"]
    metadata += ["_airbyte_extracted_at", "_dlt_load_id"]
    for n in range(3):
        row = {"order_ref": f"o{n}", "timestamp": AT, "type": "lead_created"}
        lines.append(record("conversions", {**row, **dict.fromkeys(metadata, read_at)}))
    return lines


def test_the_same_rows_read_again_are_the_same_events(sandbox, tmp_path):
    streams = {"conversions": {}}
    first = run_target(config(sandbox, tmp_path, streams), rows("2026-12-01T10:00:00Z"), tmp_path)
    assert first.returncode == 0, first.output
    ids = sorted(e["id"] for e in sandbox.events(PIXEL_ID))
    assert len(ids) == 3
    assert all(i.startswith("rec_") for i in ids)
    assert first.stderr.count("its event ids are hashes of each record's own data") == 1
    # The file was touched: every row is read again with new metadata.
    again = run_target(config(sandbox, tmp_path, streams), rows("2026-12-01T11:30:00Z"), tmp_path)
    assert again.returncode == 0, again.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ids  # no new events
    assert sandbox.stats()["duplicates"] == 3


def test_rows_keyed_by_where_they_were_read_get_ids_of_what_they_are(sandbox, tmp_path):
    """tap-csv-folder keys rows by `_sdc_path` and `_sdc_line_number`. A new lead written on
    top of the export moves every row down a line: taken as ids, the new lead took the first
    old row's id (dropped as its duplicate) and the last old row came again as a new event.
    Tap metadata is no id: each row's id is a hash of its own data."""

    def export(*names: str) -> list[str]:
        props = {p: {"type": "string"} for p in ("name", "email", "at", "_sdc_path")}
        lines = [
            schema("leads", {**props, "_sdc_line_number": {"type": "integer"}}, keys),
        ]
        for line_number, name in enumerate(names, 2):
            row = {"name": name, "email": f"{name}@example.com", "at": AT}
            meta = {"_sdc_path": "/data/leads/leads.csv", "_sdc_line_number": line_number}
            lines.append(record("leads", {**row, **meta}))
        return lines

    keys = ["_sdc_path", "_sdc_line_number"]
    streams = {
        "leads": {
            "event_type": "lead_created",
            "fields": {"timestamp": "at", "email": "email", "first_name": "name"},
        }
    }
    first = run_target(config(sandbox, tmp_path, streams), export("cy", "bo", "amy"), tmp_path)
    assert first.returncode == 0, first.output
    assert "no key properties but tap metadata" in first.stderr
    assert all(e["id"].startswith("rec_") for e in sandbox.events(PIXEL_ID))
    again = export("dee", "cy", "bo", "amy")
    second = run_target(config(sandbox, tmp_path, streams), again, tmp_path)
    assert second.returncode == 0, second.output
    stored = sandbox.events(PIXEL_ID)
    assert len(stored) == 4  # dee is new; cy, bo and amy are the events sent before
    assert sandbox.stats()["duplicates"] == 3
    assert "/data/leads" not in json.dumps(stored)  # (a file path is not sent either)


def test_a_stream_keyed_by_email_sends_its_ids_hashed_never_raw(sandbox, tmp_path):
    """A signups table keyed by email, no `id` mapped: the key would be the event id. It goes
    out as the SHA-256 of the id, in the API's request and in the request log alike."""
    email = "Jane.Doe@example.com"
    lines = [
        schema("signups", {"email": {"type": "string"}, "at": {"type": "string"}}, ["email"]),
        record("signups", {"email": email, "at": AT}),
        record("signups", {"email": "sam@example.org", "at": AT}),
    ]
    streams = {"signups": {"event_type": "registration_completed", "fields": {"timestamp": "at"}}}
    request_log = tmp_path / "requests.jsonl"
    cfg = config(sandbox, tmp_path, streams, request_log_path=str(request_log))
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    ids = sorted(e["id"] for e in sandbox.events(PIXEL_ID))
    digests = [hashlib.sha256(text.encode()).hexdigest() for text in (email, "sam@example.org")]
    assert ids == sorted(f"sha256_{d}" for d in digests)
    assert "@" not in request_log.read_text()
    assert "@" not in run.output
    assert run.stderr.count("event ids that hold an email address or a phone number") == 1
    # The same rows again: the same ids, so OpenAI takes them for the events already sent.
    again = run_target(cfg, lines, tmp_path)
    assert again.returncode == 0, again.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ids
    assert sandbox.stats()["duplicates"] == 2


@pytest.mark.parametrize("workers", [None, 0])
def test_an_email_written_with_a_full_width_at_sign_is_personal_data_too(
    workers, sandbox, tmp_path
):
    """Japanese and Chinese input methods write the at sign full-width (U+FF20), and whole
    addresses too: such an email is hashed as the address it is, an id or custom_data text
    holding one is hashed, a city holding one is left out, and the log never shows one."""
    props = {name: {} for name in ("id", "at", "city", "note", "email")}
    fullwidth = (
        "\uff34\uff21\uff32\uff2f\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff4a\uff50"
    )
    taro = "taro\uff20example.jp"
    lines = [
        schema("signups", props, ["id"]),
        record("signups", {"id": taro, "at": AT, "city": taro, "note": taro, "email": fullwidth}),
        record("signups", {"id": "x3", "at": "hanako\uff20example.jp"}),  # a column mixed up
    ]
    fields = {"timestamp": "at", "city": "city", "email": "email", "custom_data": "{note: note}"}
    entry = {"event_type": "custom", "fields": {"custom_event_name": "'signup'", **fields}}
    run, sent = run_logged(sandbox, tmp_path, {"signups": entry}, lines, workers)
    [event] = sandbox.events(PIXEL_ID)
    assert event["id"] == h(taro)
    assert event["user"] == {
        "emails_sha256": [hashlib.sha256(b"taro@example.jp").hexdigest()],
    }
    assert event["data"] == {"type": "custom", "note": h(taro)}
    for text in (run.output, sent):
        assert "taro" not in text
        assert "hanako" not in text
        assert "\uff20" not in text
    assert "timestamp '…' is not an ISO 8601 date-time" in run.stderr


@pytest.mark.parametrize("workers", [None, 0])
def test_a_call_log_keyed_by_the_caller_s_number_sends_its_ids_hashed(workers, sandbox, tmp_path):
    """A phone number written with its + is personal data, as an email is: never sent raw.
    Digits alone (an order number) stay as they are."""
    props = {"caller": {"type": "string"}, "at": {"type": "string"}}
    lines = [
        schema("calls", props, ["caller"]),
        record("calls", {"caller": "+1 415-555-2671", "at": AT}),
        record("calls", {"caller": "14155552672", "at": AT}),
        # (spaced with no-break spaces, as a copied number is, or with a full-width +)
        record("calls", {"caller": "+1\u00a0415\u00a0555\u00a02673", "at": AT}),
        record("calls", {"caller": "\uff0b1 415 555 2674", "at": AT}),
    ]
    streams = {"calls": {"event_type": "lead_created", "fields": {"timestamp": "at"}}}
    log = str(tmp_path / "requests.jsonl")
    cfg = config(sandbox, tmp_path, streams, request_log_path=log, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    digests = [
        hashlib.sha256(text.encode()).hexdigest()
        for text in ("+1 415-555-2671", "+1\u00a0415\u00a0555\u00a02673", "\uff0b1 415 555 2674")
    ]
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(
        ["14155552672", *(f"sha256_{digest}" for digest in digests)]
    )
    for raw in ("555-2671", "2673", "2674"):
        assert raw not in (tmp_path / "requests.jsonl").read_text()
        assert raw not in run.output


def logged_places(notes: list[str]) -> list[str]:
    """The notes a stream logs of the places of personal data it hashed: the first so many."""
    from target_openai_capi.pipeline.events import LOGGED_PER_KIND

    return notes[:LOGGED_PER_KIND]


@pytest.mark.parametrize("workers", [None, 0])
def test_personal_data_in_custom_data_is_sent_hashed_never_raw(workers, sandbox, tmp_path):
    """A `custom_data` column (read without being mapped) or a mapped object carrying an email,
    a +phone, or a value under a property named for one, went to the API raw, and into the
    request log. Each is sent as its hash; each place is said once a stream; the rest is kept."""
    props = {"id": {"type": "string"}, "custom_data": {"type": ["object", "null"]}}
    data = {
        "email": "ana@example.com",
        "phone": "+1 415-555-2671",
        "customer_name": "Ana Lopez",
        "billing_phone": 14155552671,
        "guests": [{"note": "bo@example.org"}, {"note": "call cy on +44 20 7946 0958"}],
        "attendees": {"dee@example.net": "confirmed"},
        "Eve Smith": {"phone": "0161 496 0000"},  # (a name as a key: *, never in the log)
        "CustomerEmail": "n/a",  # (no value: kept)
        "seats": 3,
        "plan": "pro",
        "is_mobile": "yes",  # (not a person's: kept)
        "mobile": "iOS",  # (a platform: kept)
        "mobile_order_id": "10000001",  # (an order's id, dates, a time: not a phone)
        "first_seen_on_mobile": "2024-05-12",
        "last_seen_on_mobile": "05/12/2024",
        "last_contact": 1715500000,
        "contact_name": {"mobile": "Ana"},  # (under a person's name: hashed)
        "contact": {"mobile": "07700 900123", "phone_no": "4155552671"},  # (phones: hashed)
        # (Shopify's address objects, birth dates, and numbers spaced as French and copied ones
        # are: they went out raw)
        "shipping_address": {"name": "Jo Doe", "address1": "1 Main St", "zip": "94107"},
        "billing_address": "2 High St, Springfield",
        "dob": "1985-04-12",
        "birthday": "1985-04-12",
        "note": "call +33\u202f6\u202f12\u202f34\u202f56\u202f78",
        "callback": "\uff0b1\u00a0415\u00a0555\u00a00199",
        # (addresses that are no person's: kept)
        "store_address": "1 Market St",
        "wallet_address": "0xabc123",
        "mac_address": "00:1a:2b:3c:4d:5e",
        "address": "9 Elm St",
        # (a person's, whatever the word before: hashed)
        "ship_address": "12 Elm Street, Springfield",
        "recipient_address": "9 Oak Ave",
        "default_address": {"city": "Springfield"},
        "addresses": ["3 Pine Rd"],
        "pickup_address": "4 Birch Ln",
        "home_addr": "5 Ash Ct",
        "note_dk": "call +4512-34-56-78",  # (a Danish number, not a date after its +)
    }
    lines = [schema("events", props, ["id"])]
    lines += [
        record("events", {"id": f"e{n}", "timestamp": AT, "type": "custom",
                          "custom_event_name": "demo_booked", "custom_data": data})
        for n in range(3)
    ]  # fmt: skip
    run, sent = run_logged(sandbox, tmp_path, {"events": {}}, lines, workers)

    events = sandbox.events(PIXEL_ID)
    assert len(events) == 3
    assert events[0]["data"] == {
        "type": "custom",
        "email": h("ana@example.com"),
        "phone": h("+1 415-555-2671"),
        "customer_name": h("Ana Lopez"),
        "billing_phone": h("14155552671"),
        "guests": [{"note": h("bo@example.org")}, {"note": h("call cy on +44 20 7946 0958")}],
        "attendees": {h("dee@example.net"): "confirmed"},
        "Eve Smith": {"phone": h("0161 496 0000")},
        "CustomerEmail": "n/a",
        "seats": 3,
        "plan": "pro",
        "is_mobile": "yes",
        "mobile": "iOS",
        "mobile_order_id": "10000001",
        "first_seen_on_mobile": "2024-05-12",
        "last_seen_on_mobile": "05/12/2024",
        "last_contact": 1715500000,
        "contact_name": {"mobile": h("Ana")},
        "contact": {"mobile": h("07700 900123"), "phone_no": h("4155552671")},
        "shipping_address": {"name": h("Jo Doe"), "address1": h("1 Main St"), "zip": h("94107")},
        "billing_address": h("2 High St, Springfield"),
        "dob": h("1985-04-12"),
        "birthday": h("1985-04-12"),
        "note": h("call +33\u202f6\u202f12\u202f34\u202f56\u202f78"),
        "callback": h("\uff0b1\u00a0415\u00a0555\u00a00199"),
        "store_address": "1 Market St",
        "wallet_address": "0xabc123",
        "mac_address": "00:1a:2b:3c:4d:5e",
        "address": h("9 Elm St"),
        "ship_address": h("12 Elm Street, Springfield"),
        "recipient_address": h("9 Oak Ave"),
        "default_address": {"city": h("Springfield")},
        "addresses": [h("3 Pine Rd")],
        "pickup_address": h("4 Birch Ln"),
        "home_addr": h("5 Ash Ct"),
        "note_dk": h("call +4512-34-56-78"),
    }
    raws = ("example", "555-2671", "7946", "Lopez", "14155552671", "496 0000", "900123", "Main St")
    raws += ("Jo Doe", "Springfield", "1985", "\\u202f34", "0199")
    for raw in raws:
        assert raw not in sent
    for raw in (*raws, "Eve"):
        assert raw not in run.output
    said = [line.split("| ")[-1] for line in run.stderr.splitlines() if "SHA-256 hash" in line]
    end = ": sent as its SHA-256 hash (map it to a user field to be matched by it)."
    assert said == logged_places(
        [
            f"Stream 'events': custom_data.email holds an email address{end}",
            f"Stream 'events': custom_data.phone holds a phone number{end}",
            f"Stream 'events': custom_data.customer_name is named for personal data{end}",
            f"Stream 'events': custom_data.billing_phone is named for personal data{end}",
            f"Stream 'events': custom_data.guests[].note holds an email address{end}",
            f"Stream 'events': custom_data.attendees.* has names that are personal data (an email "
            f"address){end}",
            f"Stream 'events': custom_data.*.phone is named for personal data{end}",
            f"Stream 'events': custom_data.contact_name.mobile is named for personal data{end}",
            f"Stream 'events': custom_data.contact.mobile is named for personal data{end}",
            f"Stream 'events': custom_data.contact.phone_no is named for personal data{end}",
            f"Stream 'events': custom_data.shipping_address.name is named for personal data{end}",
            f"Stream 'events': custom_data.shipping_address.address1 is named for personal "
            f"data{end}",
            f"Stream 'events': custom_data.shipping_address.zip is named for personal data{end}",
            f"Stream 'events': custom_data.billing_address is named for personal data{end}",
            f"Stream 'events': custom_data.dob is named for personal data{end}",
            f"Stream 'events': custom_data.birthday is named for personal data{end}",
            f"Stream 'events': custom_data.note holds a phone number{end}",
            f"Stream 'events': custom_data.callback holds a phone number{end}",
            f"Stream 'events': custom_data.address is named for personal data{end}",
            f"Stream 'events': custom_data.ship_address is named for personal data{end}",
            f"Stream 'events': custom_data.recipient_address is named for personal data{end}",
            f"Stream 'events': custom_data.default_address.city is named for personal data{end}",
        ]
    )


@pytest.mark.parametrize("workers", [None, 0])
def test_an_id_column_that_is_one_part_of_a_key_of_several_makes_no_id_alone(
    workers, sandbox, tmp_path
):
    """Keyed by (tenant_id, id), no `id` mapped: the `id` column alone made the id, so the
    orders of two tenants with the same number were one event (the second a duplicate)."""
    props = {"tenant_id": {"type": "integer"}, "id": {"type": "integer"}, "at": {"type": "string"}}
    lines = [
        schema("orders", props, ["tenant_id", "id"]),
        record("orders", {"tenant_id": 1, "id": 100, "at": AT}),
        record("orders", {"tenant_id": 2, "id": 100, "at": AT}),
    ]
    streams = {"orders": {"event_type": "order_created", "fields": {"timestamp": "at"}}}
    cfg = config(sandbox, tmp_path, streams, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["1:100", "2:100"]
    assert "sent=2" in run.stderr


def test_an_id_mapped_to_one_column_of_a_key_of_several_is_told_at_the_schema(sandbox, tmp_path):
    """Keyed by (tenant_id, id) with `fields.id: id`: two tenants' orders 100 were one event, the
    second counted a duplicate without a word (and the API would drop it on a later run)."""
    props = {"tenant_id": {"type": "integer"}, "id": {"type": "integer"}, "at": {"type": "string"}}
    lines = [
        schema("orders", props, ["tenant_id", "id"]),
        record("orders", {"tenant_id": 1, "id": 100, "at": AT}),
        record("orders", {"tenant_id": 2, "id": 100, "at": AT}),
    ]
    fields = {"id": "id", "timestamp": "at"}
    streams = {"orders": {"event_type": "order_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    told = [line for line in run.stderr.splitlines() if "reads id alone" in line]
    assert len(told) == 1
    assert told[0].endswith(
        "streams.orders.fields.id reads id alone, one of the stream's key properties "
        "(tenant_id, id): two rows alike in it and not in tenant_id are one event (the later "
        "counted a duplicate, and dropped by the API). Map the id to the whole key, join(':', "
        "[to_string(tenant_id), to_string(id)]), or leave it unmapped: the id is then made of "
        "the whole key."
    )
    # What it says to do: two events.
    sandbox.reset()
    fields["id"] = "join(':', [to_string(tenant_id), to_string(id)])"
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["1:100", "2:100"]
    assert "reads id alone" not in run.stderr


@pytest.mark.parametrize("workers", [None, 0])
def test_rows_deleted_at_the_source_are_filtered_not_sent(workers, sandbox, tmp_path):
    """LOG_BASED replication (tap-postgres with wal2json) sends a deleted row as a record with
    `_sdc_deleted_at`: one with its key alone was rejected at mapping ('timestamp is missing'),
    and one with every column was sent as a conversion."""
    props = {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "created_at": {"type": ["string", "null"]},
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
        "_sdc_lsn": {"type": ["integer", "null"]},
    }
    lines = [
        schema("public-leads", props, ["id"]),
        record("public-leads", {"id": 1, "email": "a@example.com", "created_at": AT,
                                "_sdc_deleted_at": None, "_sdc_lsn": 10}),
        record("public-leads", {"id": 2, "email": "b@example.com", "created_at": AT,
                                "_sdc_deleted_at": AT, "_sdc_lsn": 11}),
        record("public-leads", {"id": 3, "_sdc_deleted_at": AT, "_sdc_lsn": 12}),
        # The table read back from a loader's copy (a CSV): no delete is blank or NULL.
        record("public-leads", {"id": 4, "email": "d@example.com", "created_at": AT,
                                "_sdc_deleted_at": "", "_sdc_lsn": 13}),
        record("public-leads", {"id": 5, "email": "e@example.com", "created_at": AT,
                                "_sdc_deleted_at": "NULL", "_sdc_lsn": 14}),
        state({"bookmarks": {"public-leads": {"lsn": 12}}}),
    ]  # fmt: skip
    entry = {"event_type": "lead_created", "fields": {"timestamp": "created_at"}}
    streams = {"public-leads": entry}
    cfg = config(sandbox, tmp_path, streams, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["1", "4", "5"]
    assert "public-leads: received=5 sent=3 filtered=2" in run.stderr
    assert run.stderr.count("is replicated with deletes (its SCHEMA has _sdc_deleted_at)") == 1
    assert not (tmp_path / "dead.jsonl").exists()
    assert run.states == [{"bookmarks": {"public-leads": {"lsn": 12}}}]


@pytest.mark.parametrize("workers", [None, 0])
def test_deletes_of_a_binlog_tap_whose_schema_does_not_list_them_are_filtered(
    workers, sandbox, tmp_path
):
    """pipelinewise-tap-mysql and singer-io tap-mysql (binlog, LOG_BASED) write a SCHEMA without
    `_sdc_deleted_at` and then a deleted row's record with it set: the delete was sent as a new
    conversion; one of a row older than 7 days (a purge, an erasure) was a `window` rejection
    that stopped an `on_rejected: fail` run on every rerun, the tap reading the same position."""
    import time

    old = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 8 * 86400))
    props = {
        "id": {"type": ["null", "integer"]},
        "order_ref": {"type": ["null", "string"]},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
        "total": {"type": ["null", "number"]},
        "currency": {"type": ["null", "string"]},
    }

    def row(n: int, at: str = AT, **extra: Any) -> str:
        cells = {"id": n, "order_ref": f"R-{n}", "created_at": at, "total": 42, "currency": "USD"}
        return record("shop-orders", {**cells, **extra})

    lines = [
        schema("shop-orders", props, ["id"]),
        row(1),
        row(7, _sdc_deleted_at=AT),
        row(8, old, _sdc_deleted_at=AT),
        row(9, _sdc_deleted_at=None),
        state({"bookmarks": {"shop-orders": {"log_file": "binlog.000001", "log_pos": 8316}}}),
    ]
    entry = {
        "event_type": "order_created",
        "filter": "!_sdc_deleted_at",  # (what a user tried first: tap metadata reads null)
        "fields": {"id": "order_ref", "timestamp": "created_at", "amount": "total"},
    }
    cfg = config(sandbox, tmp_path, {"shop-orders": entry}, on_rejected="fail", workers=workers)
    del cfg["dead_letter_path"]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["R-1", "R-9"]
    assert "shop-orders: received=4 sent=2 filtered=2" in run.stderr
    told = [
        line for line in run.stderr.splitlines() if "though its SCHEMA does not list it" in line
    ]
    assert len(told) == 1
    assert "Records of stream 'shop-orders' carry _sdc_deleted_at" in told[0]
    assert (
        "streams.shop-orders.filter reads '_sdc_deleted_at', tap metadata, which is taken out "
        "of records before they are mapped: it reads null. Records of rows deleted at the "
        "source (with it set) are filtered without it." in run.stderr
    )
    assert run.states == [
        {"bookmarks": {"shop-orders": {"log_file": "binlog.000001", "log_pos": 8316}}}
    ]


def test_a_delete_through_a_stream_map_that_keeps_chosen_columns_is_filtered(sandbox, tmp_path):
    """A stream map keeping chosen columns (`__else__: null`) left `_sdc_deleted_at` out, and
    the delete of a row went out as a new conversion."""
    props = {"id": {"type": "integer"}, "ts": {"type": "string"}, "total": {"type": "number"}}
    lines = [
        schema("shop-orders", props, ["id"]),
        record("shop-orders", {"id": 1, "ts": AT, "total": 5}),
        record("shop-orders", {"id": 2, "ts": AT, "total": 5, "_sdc_deleted_at": AT}),
    ]
    kept = {"__alias__": "o", "__else__": None, "id": "id", "ts": "ts", "total": "total"}
    entry = {"event_type": "lead_created", "fields": {"timestamp": "ts"}}
    cfg = config(sandbox, tmp_path, {"o": entry}, stream_maps={"shop-orders": kept})
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["1"]
    assert "o: received=2 sent=1 filtered=1" in run.stderr


def test_binlog_deletes_among_many_records_are_filtered_with_workers(sandbox, tmp_path):
    """The same through the worker processes, which leave such a record to the main process."""
    props = {"id": {"type": "integer"}, "created_at": {"type": "string"}}
    lines = [schema("shop-orders", props, ["id"])]
    for n in range(2000):
        deleted = {"_sdc_deleted_at": AT} if n % 100 == 7 else {}
        lines.append(record("shop-orders", {"id": n, "created_at": AT, **deleted}))
    entry = {"event_type": "lead_created", "fields": {"timestamp": "created_at"}}
    cfg = config(sandbox, tmp_path, {"shop-orders": entry}, worker_processes=2)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "Worker processes: 2; 1,980 of 2,000 records" in run.stderr, run.stderr
    ids = {e["id"] for e in sandbox.events(PIXEL_ID)}
    assert len(ids) == 1980
    assert not any(int(i) % 100 == 7 for i in ids)
    assert "shop-orders: received=2000 sent=1980 filtered=20" in run.stderr
    assert run.stderr.count("though its SCHEMA does not list it") == 1


def test_placeholder_ids_do_not_merge_different_orders(sandbox, tmp_path):
    """An export that writes '(not set)' or 'NULL' where an order has no id: each such order is
    its own event (a hash of its data), not a duplicate of the first one that had it."""
    props = {p: {"type": ["string", "null"]} for p in ("order_id", "email", "at", "amount")}
    placeholders = ["(not set)", "(not set)", "NULL", "N/A", " ", None]
    lines = [schema("orders", props)]
    for n, placeholder in enumerate(placeholders):
        order = {"order_id": placeholder, "email": f"buyer{n}@example.com", "at": AT}
        lines.append(record("orders", {**order, "amount": f"1{n}.00"}))
    lines.append(record("orders", {"order_id": "A-1", "email": "x@example.com", "at": AT}))
    streams = {
        "orders": {
            "event_type": "order_created",
            "fields": {
                "id": "order_id",
                "timestamp": "at",
                "amount": "amount",
                "currency": "'USD'",
                "email": "email",
            },
        }
    }
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = sandbox.events(PIXEL_ID)
    assert len(events) == 7
    assert sorted(e["data"].get("amount") for e in events if e["id"] != "A-1") == [
        1000, 1100, 1200, 1300, 1400, 1500
    ]  # fmt: skip
    assert sum(e["id"].startswith("rec_") for e in events) == 6
    assert "; orders: received=7 sent=7\n" in run.stderr  # none a duplicate
    assert run.stderr.count("gave no id (null, empty, or a placeholder") == 1


def test_a_misnamed_stream_entry_is_named_and_the_run_fails(sandbox, tmp_path):
    lines = [
        schema("public-conversions", {"id": {"type": "string"}}, ["id"]),
        *(
            record("public-conversions", {"id": f"c{n}", "timestamp": AT, "type": "lead_created"})
            for n in range(3)
        ),
        state({"bookmarks": {"public-conversions": 3}}),
    ]
    run = run_target(config(sandbox, tmp_path, {"conversions": {}}), lines, tmp_path)
    assert run.returncode == 1
    # Said at the first record of the stream that looks like the entry (tap-postgres's schema
    # prefix); the run fails at its end, no STATE written.
    assert (
        "Stream 'public-conversions' has no entry under `streams`, and `streams.conversions` "
        "has matched no stream yet: is it misspelt?"
    ) in run.stderr
    assert run.stdout == ""  # no STATE: the next run reads the same rows again
    assert sandbox.stats()["requests"] == 0
    assert run.stderr.count("Run summary:") == 1  # (it was logged twice)
    assert "received=3 " in run.stderr
    assert (
        "Name the entry 'public-conversions', or set allow_unmatched_streams: true"
        in run.stderr.splitlines()[-1]
    )

    # A stream nothing like the entry: all its records are read, and the run fails at the end.
    renamed = [line.replace("public-conversions", "web_events") for line in lines]
    run = run_target(config(sandbox, tmp_path, {"conversions": {}}), renamed, tmp_path)
    assert run.returncode == 1
    assert "streams.conversions matched nothing; none of the input's 1 streams" in run.stderr
    assert "3 records arrived and none matched an entry under `streams`" in run.stderr
    assert run.stdout == ""
    assert run.stderr.count("Run summary:") == 1
    assert "rerun with the last STATE" not in run.stderr  # (nothing was delivered to resume)

    allowed = config(sandbox, tmp_path, {"conversions": {}}, allow_unmatched_streams=True)
    run = run_target(allowed, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "streams.conversions matched nothing; the input had public-conversions" in run.stderr
    assert json.loads(run.stdout) == {"bookmarks": {"public-conversions": 3}}


def test_a_misspelt_entry_beside_one_that_matched_stops_the_run_at_its_stream(sandbox, tmp_path):
    """`subscription` for the tap's `subscriptions`, beside a right `orders`: once its records
    were skipped and the tap's STATE moved past them, the next run would never send them."""
    sub = {"id": "s1", "timestamp": AT, "type": "subscription_created"}
    lines = [
        schema("orders", {"id": {"type": "string"}}, ["id"]),
        record("orders", {"id": "o1", "timestamp": AT, "type": "order_created"}),
        state({"bookmarks": {"orders": 1}}),
        schema("subscriptions", {"id": {"type": "string"}}, ["id"]),
        record("subscriptions", sub),
        state({"bookmarks": {"orders": 1, "subscriptions": 1}}),
    ]
    streams = {"orders": {}, "subscription": {}}
    run = run_target(config(sandbox, tmp_path, streams, batch_size=1), lines, tmp_path)
    assert run.returncode == 1
    assert (
        "Stream 'subscriptions' has no entry under `streams`, and `streams.subscription` "
        "matched no stream: is it misspelt? Name the entry 'subscriptions', or set "
        "allow_unmatched_streams: true"
    ) in run.stderr.splitlines()[-1]
    assert "subscriptions" not in run.stdout  # no STATE past the skipped stream

    allowed = config(sandbox, tmp_path, streams, allow_unmatched_streams=True)
    run = run_target(allowed, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "skipped_stream=1" in run.stderr
    assert "streams.subscription matched nothing; the input had subscriptions" in run.stderr


def test_a_stream_named_like_an_entry_that_comes_before_it_holds_state_until_it_comes(
    sandbox, tmp_path
):
    """pipelinewise-tap-mysql syncs tables in alphabetical order: `shop-order` (a table named
    `order`, with no entry) comes before `shop-orders`. The run stopped at the first
    `shop-order` record, calling `streams.shop-orders` misspelt, its advice (rename the entry)
    wrong. STATE is held back while the suspicion lasts; the entry's stream then arrives and
    the run ends as usual."""
    row = {"id": "x1", "timestamp": AT, "type": "order_created"}
    lines = [
        schema("shop-order", {"id": {"type": "string"}}, ["id"]),
        record("shop-order", row),
        state({"currently_syncing": "shop-order"}),
        schema("shop-orders", {"id": {"type": "string"}}, ["id"]),
        record("shop-orders", {**row, "id": "o1"}),
        state({"bookmarks": {"shop-order": 1, "shop-orders": 1}}),
    ]
    run = run_target(config(sandbox, tmp_path, {"shop-orders": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "`streams.shop-orders` has matched no stream yet: is it misspelt?" in run.stderr
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["o1"]
    assert "skipped_stream=1" in run.stderr
    assert run.states == [{"bookmarks": {"shop-order": 1, "shop-orders": 1}}]


@pytest.mark.parametrize(
    ("other", "records_of_the_entry"),
    [("customers", 0), ("charge", 0), ("charge", 1)],
    ids=["quiet, beside another stream", "quiet, beside a stream like it", "after one like it"],
)
def test_an_entry_whose_schema_arrived_is_named_right_though_another_stream_has_none(
    other, records_of_the_entry, sandbox, tmp_path
):
    """A scheduled run where `charges` had nothing new (its SCHEMA, no records), beside a tap
    stream that has no entry: the run goes on, skipping that stream, with its STATE. It failed,
    calling `streams.charges` misnamed (none matched; or, with `charge` so like it, at the
    first `charge` record), though its SCHEMA had arrived."""
    lines = [
        schema("charges", {"id": {"type": "string"}}, ["id"]),
        schema(other, {"id": {"type": "string"}}, ["id"]),
        record(other, {"id": "x1"}),
        *[record("charges", {"id": "c1", "timestamp": AT, "type": "order_created"})][
            :records_of_the_entry
        ],
        state({"b": 1}),
    ]
    run = run_target(config(sandbox, tmp_path, {"charges": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "is it misspelt" not in run.stderr
    assert "none matched an entry" not in run.stderr
    assert f"Stream '{other}' has no entry under `streams`" in run.stderr
    assert run.states == [{"b": 1}]
    assert len(sandbox.events(PIXEL_ID)) == records_of_the_entry


def test_an_entry_named_as_the_tap_names_a_stream_a_map_renames_matched_nothing(sandbox, tmp_path):
    """`streams.orders` while a stream map aliases `orders` to `order_events`: its SCHEMA
    arriving does not make the entry right (its records go to `order_events`): the run fails,
    without STATE past the records it skipped."""
    config_ = config(sandbox, tmp_path, {"orders": {}})
    config_["stream_maps"] = {"orders": {"__alias__": "order_events"}}
    lines = [
        schema("orders", {"id": {"type": "string"}}, ["id"]),
        *(
            record("orders", {"id": f"o{n}", "timestamp": AT, "type": "order_created"})
            for n in (1, 2)
        ),
        state({"b": 2}),
    ]
    run = run_target(config_, lines, tmp_path)
    assert run.returncode == 1
    assert "none matched an entry" in run.stderr
    assert run.stdout == ""


def test_an_entry_that_matched_nothing_beside_one_that_did_is_named(sandbox, tmp_path):
    lines = [
        schema("orders", {"id": {"type": "string"}}, ["id"]),
        record("orders", {"id": "o1", "timestamp": AT, "type": "order_created"}),
    ]
    run = run_target(config(sandbox, tmp_path, {"orders": {}, "refunds": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "streams.refunds matched nothing; none of the input's 1 streams is like it" in run.stderr


LINE_ITEMS = json.dumps(
    [{"sku": "TEE", "qty": 2, "price": 19.99}, {"sku": "MUG", "qty": 1, "price": 8.5}]
)


def test_json_text_line_items_become_contents(sandbox, tmp_path):
    props = {
        "id": {"type": "string"},
        "products": {"type": "string"},
        "contents": {"type": "string"},
    }
    row = {"timestamp": AT, "type": "order_created", "amount": 48.48, "currency": "USD"}
    contents_text = json.dumps([{"id": "TEE", "quantity": 2, "amount": 19.99}])
    lines = [
        schema("segment_orders", props, ["id"]),
        record("segment_orders", {"id": "s1", **row, "products": LINE_ITEMS}),
        # A CSV cell of no line items, blank or an export's NULL: an order without contents.
        record("segment_orders", {"id": "s2", **row, "products": ""}),
        record("segment_orders", {"id": "s3", **row, "products": "NULL"}),
        schema("flat_orders", props, ["id"]),
        record("flat_orders", {"id": "f1", **row, "contents": contents_text}),
        record("flat_orders", {"id": "f2", **row, "contents": "[not json"}),
        # The column's own mark of no line items: an order without contents.
        record("flat_orders", {"id": "f3", **row, "contents": "NULL"}),
        record("flat_orders", {"id": "f4", **row, "contents": "null"}),
    ]
    streams = {
        "segment_orders": {
            "fields": {"contents": "parse_json(products)[].{id: sku, quantity: qty, amount: price}"}
        },
        "flat_orders": {},  # the same-name fallback reads the JSON text column
    }
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["s1"]["data"]["contents"] == [
        {"id": "TEE", "quantity": 2, "amount": 1999},
        {"id": "MUG", "quantity": 1, "amount": 850},
    ]
    assert events["f1"]["data"]["contents"] == [{"id": "TEE", "quantity": 2, "amount": 1999}]
    for empty in ("s2", "s3", "f3", "f4"):
        assert events[empty]["data"] == {"type": "contents", "amount": 4848, "currency": "USD"}
    [dead] = [
        json.loads(line)["dead_letter"]
        for line in (tmp_path / "dead.jsonl").read_text().splitlines()
        if json.loads(line)["type"] == "RECORD"
    ]
    assert dead["stage"] == "mapping"
    assert dead["reason"].startswith("contents is text that is not JSON")
    assert dead["event_id"] == "f2"  # the id was read before the mapping failed


def _run_with_variables(cfg: dict[str, Any], tmp_path: Any, **variables: str) -> Any:
    """The real CLI on one order, its config from a file, these TARGET_OPENAI_CAPI_* set."""
    import os
    import subprocess

    from support import TARGET_CMD

    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    lines = [
        schema("orders", {"id": {"type": "string"}}, ["id"]),
        record("orders", {"id": "o1", "timestamp": AT, "type": "order_created"}),
    ]
    env = {**os.environ, **{f"TARGET_OPENAI_CAPI_{k}": v for k, v in variables.items()}}
    return subprocess.run(
        [*TARGET_CMD, "--config", str(path)],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        env=env,
        check=False,
    )


def test_key_and_pixel_come_from_the_environment_when_the_config_lacks_them(sandbox, tmp_path):
    cfg = config(sandbox, tmp_path, {"orders": {}})
    del cfg["api_key"], cfg["pixel_id"]  # a Meltano loader that declares no settings
    proc = _run_with_variables(cfg, tmp_path, API_KEY=API_KEY, PIXEL_ID=PIXEL_ID)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["o1"]
    assert API_KEY not in proc.stderr.decode()
    assert "differs from the config file's" not in proc.stderr.decode()


def test_a_pixel_or_key_in_the_environment_unlike_the_config_file_s_is_named(sandbox, tmp_path):
    """The config file's pixel and key are the ones read: a production pixel given in the
    environment beside a file holding a test one was ignored without a word."""
    other_key = "sk-svcacct-other-secret"
    cfg = config(sandbox, tmp_path, {"orders": {}})
    proc = _run_with_variables(cfg, tmp_path, API_KEY=other_key, PIXEL_ID="px_production")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["o1"]  # (the file's pixel)
    for name in ("PIXEL_ID", "API_KEY"):
        assert f"TARGET_OPENAI_CAPI_{name} is set but differs from the config file's" in err
    assert other_key not in err
    assert API_KEY not in err


def test_schema_flattening_is_refused_with_what_to_do(sandbox, tmp_path):
    cfg = config(sandbox, tmp_path, {"orders": {}}, flattening_enabled=True)
    run = run_target(cfg, [schema("orders", {"id": {"type": "string"}}, ["id"])], tmp_path)
    assert run.returncode != 0
    assert "flattening_enabled is not supported" in run.output
    assert "map the nested fields with JMESPath" in run.output
    assert "Traceback" not in run.output


def test_a_table_shaped_like_the_event_sends_its_custom_events(sandbox, tmp_path):
    # `type: custom` beside a custom_event_name column, as a model shaped for the target has
    # them: the name comes from that column (the type itself is no name).
    lines = [
        schema(
            "events",
            {"id": {"type": "string"}, "custom_event_name": {"type": ["string", "null"]}},
            ["id"],
        ),
        record(
            "events",
            {"id": "e1", "timestamp": AT, "type": "custom", "custom_event_name": "Demo_Booked"},
        ),
        record("events", {"id": "e2", "timestamp": AT, "type": "custom"}),
        record("events", {"id": "e3", "timestamp": AT, "type": "Webinar Joined"}),
    ]
    run = run_target(config(sandbox, tmp_path, {"events": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == ["e1", "e3"]
    assert events["e1"]["type"] == "custom"
    assert events["e1"]["custom_event_name"] == "demo_booked"  # lowercased, as the API does
    assert events["e3"]["custom_event_name"] == "webinar_joined"
    letters = (tmp_path / "dead.jsonl").read_text()
    assert "custom_event_name is missing for a custom event" in letters


@pytest.mark.parametrize("workers", [None, 0])
def test_blank_cells_are_no_value_as_empty_ones_are(workers, sandbox, tmp_path):
    """A CHAR(n) column or a CSV cell of spaces: each rejected the whole conversion ("plan_id
    is empty", "unknown currency ''") where "" was no value."""
    text = {"type": "string"}
    props = {"id": text, "plan": text, "page": text, "src": text, "cur": text, "amount": text}
    fields = {
        "plan_id": "plan",
        "source_url": "page",
        "action_source": "src",
        "currency": "cur",
        "timestamp": "at",
    }
    streams = {"subs": {"event_type": "subscription_created", "fields": fields}}
    lines = [schema("subs", {**props, "at": text}, ["id"])]
    blanks = {"plan": "   ", "page": " ", "src": "\t", "cur": "   "}
    lines.append(record("subs", {"id": "all-blank", "at": AT, **blanks}))
    lines.append(record("subs", {"id": "cur-blank", "at": AT, "cur": "  ", "amount": "5"}))
    cfg = config(sandbox, tmp_path, streams, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert list(events) == ["all-blank"]
    assert events["all-blank"]["data"] == {"type": "plan_enrollment"}
    assert "source_url" not in events["all-blank"]
    assert "action_source" not in events["all-blank"]
    letters = (tmp_path / "dead.jsonl").read_text()
    assert "amount needs a currency, and currency ('cur') gave no value for this record" in letters


@pytest.mark.parametrize("workers", [0, 2])
def test_stripe_amount_reads_an_export_s_missing_values_as_none(workers, sandbox, tmp_path):
    """stripe_amount(amt, cur) on a row whose amount or currency is NULL: 'amount 'NULL' is
    not a number', 'unknown currency 'NULL'', where the same cells mapped directly are none."""
    text = {"type": ["string", "integer", "null"]}
    lines = [schema("subs", {name: text for name in ("id", "at", "amt", "cur")}, ["id"])]
    lines.append(record("subs", {"id": "no-amount", "at": AT, "amt": "NULL", "cur": "usd"}))
    lines.append(record("subs", {"id": "both", "at": AT, "amt": 1299, "cur": "usd"}))
    lines.append(record("subs", {"id": "no-currency", "at": AT, "amt": 1299, "cur": "\\N"}))
    fields = {"timestamp": "at", "amount": "stripe_amount(amt, cur)", "currency": "cur"}
    fields["action_source"] = "'other'"
    streams = {"subs": {"event_type": "subscription_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e["data"] for e in sandbox.events(PIXEL_ID)}
    assert events == {
        "no-amount": {"type": "plan_enrollment", "currency": "USD"},
        "both": {"type": "plan_enrollment", "amount": 1299, "currency": "USD"},
    }
    dead = (tmp_path / "dead.jsonl").read_text()
    assert "NULL" not in dead.split('"dead_letter"')[-1]  # (the reason is no NULL's)
    assert "no-currency" in dead


@pytest.mark.parametrize("workers", [0, 2])
def test_an_exports_missing_money_is_no_money_in_events_and_their_items(workers, sandbox, tmp_path):
    """A CSV or COPY export of leads without money (NULL, \\N, N/A) and an item whose currency
    or amount cell is blank: each was a rejection ("unknown currency 'NULL'", "contents[0].amount
    '' is not a number") where null or "" was no value."""
    text = {"type": ["string", "null"]}
    props = {name: text for name in ("id", "kind", "at", "amount", "cur", "items")}
    fields = {"timestamp": "at", "amount": "amount", "currency": "cur", "contents": "items"}
    streams = {"rows": {"event_type_from": "kind", "fields": fields}}
    lines = [schema("rows", props, ["id"])]
    rows_in = [
        {"id": "lead-null", "kind": "lead_created", "amount": "NULL", "cur": "NULL"},
        {"id": "lead-copy", "kind": "lead_created", "amount": "\\N", "cur": "\\N"},
        {"id": "order-na", "kind": "order_created", "amount": "12.50", "cur": "USD",
         "items": '[{"id": "a", "amount": " ", "currency": "N/A", "quantity": "NULL"}]'},
        {"id": "order-item", "kind": "order_created", "amount": "12.50", "cur": "EUR",
         "items": '[{"id": "b", "amount": "3.5", "currency": "  "}, '
                  '{"id": "c", "amount": "", "amount_minor": "NULL"}]'},
        {"id": "still-bad", "kind": "order_created", "amount": "n/a!", "cur": "USD"},
        {"id": "nan", "kind": "order_created", "amount": "NaN", "cur": "USD"},  # no number
    ]  # fmt: skip
    lines += [record("rows", {**row, "at": AT}) for row in rows_in]
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == ["lead-copy", "lead-null", "order-item", "order-na"]
    assert events["lead-null"]["data"] == {"type": "customer_action"}
    assert events["lead-copy"]["data"] == {"type": "customer_action"}
    assert events["order-na"]["data"] == {
        "type": "contents",
        "amount": 1250,
        "currency": "USD",
        "contents": [{"id": "a"}],
    }
    assert events["order-item"]["data"]["contents"] == [{"id": "b", "amount": 350}, {"id": "c"}]
    lines = (tmp_path / "dead.jsonl").read_text().splitlines()
    letters = [json.loads(line) for line in lines if '"RECORD"' in line]
    assert [letter["record"]["id"] for letter in letters] == ["still-bad", "nan"]
    assert "amount 'n/a!' is not a number" in letters[0]["dead_letter"]["reason"]
    assert "amount 'NaN' is not a number" in letters[1]["dead_letter"]["reason"]


def test_an_exports_missing_values_and_odd_spellings_reach_the_api_as_the_rules_ask(
    sandbox, tmp_path
):
    """A warehouse export as pandas or COPY writes it: the markers of missing values are no
    identifiers, an IPv4 client logged by a dual-stack proxy is an IPv4 address, and a UK
    number written with its trunk (0) hashes like the same number written without it."""
    import hashlib

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    columns = ["id", "email", "phone", "first_name", "city", "ip", "ua", "oppref"]
    lines = [schema("leads", {c: {"type": ["string", "null"]} for c in columns}, ["id"])]
    values = [
        (
            "l1",
            "NULL",
            "+44 (0)20 7946 0958",
            "nan",
            "undefined",
            "::ffff:203.0.113.9",
            "-",
            "null",
        ),
        ("l2", "Jane@Example.com", "\\N", "Nan", "N/A", "NaN", "Mozilla/5.0", "undefined"),
    ]
    for row in values:
        lines.append(record("leads", {**dict(zip(columns, row, strict=True)), "ts": AT}))
    fields = {
        "timestamp": "ts",
        "email": "email",
        "phone": "phone",
        "first_name": "first_name",
        "city": "city",
        "ip_address": "ip",
        "user_agent": "ua",
        "oppref": "oppref",
    }
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["l1"]["user"] == {
        "phone_numbers_sha256": [h("442079460958")],
        "ip_address": "203.0.113.9",
    }
    assert events["l2"]["user"] == {
        "emails_sha256": [h("jane@example.com")],
        "first_names_sha256": [h("nan")],  # Nan is a name
        "user_agent": "Mozilla/5.0",
    }
    assert "oppref" not in events["l1"]
    assert "oppref" not in events["l2"]
    assert "sent without it" not in run.stderr  # (skipped as absent, not as bad values)


def test_expressions_reading_properties_the_schema_lacks_are_named_at_its_schema(sandbox, tmp_path):
    """`currency: USD` (meant 'USD') and `filter: status == paid` (meant 'paid') read
    properties no record has: every amount was rejected for want of a currency, every record
    filtered out. The run says which expression reads what, once, when the SCHEMA arrives."""
    props = {p: {"type": "string"} for p in ("id", "at", "amount", "status")}
    lines = [schema("orders", props, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "at": AT, "amount": "5.00", "status": "paid"})
        for n in range(3)
    ]
    streams = {
        "orders": {
            "event_type": "order_created",
            "filter": "status == paid",
            "fields": {"timestamp": "at", "amount": "amount", "currency": "USD"},
        }
    }
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    warned = [
        line for line in run.stderr.splitlines() if "the stream's SCHEMA does not list" in line
    ]
    assert len(warned) == 2, run.stderr
    assert "streams.orders.fields.currency reads 'USD'" in warned[0] + warned[1]
    assert "streams.orders.filter reads 'paid'" in warned[0] + warned[1]
    # Written as values, nothing is said, and the orders arrive.
    streams["orders"]["filter"] = "status == 'paid'"
    streams["orders"]["fields"]["currency"] = "'USD'"
    again = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert again.returncode == 0, again.output
    assert "does not list" not in again.stderr
    assert sorted(e["data"]["amount"] for e in sandbox.events(PIXEL_ID)) == [500, 500, 500]


def test_a_filter_testing_a_text_column_for_truth_is_told_at_its_schema(sandbox, tmp_path):
    """A CSV's is_test column holds 'false' and 'true' as text: `!is_test` is false for both
    (any text but '' is true to JMESPath), and every order was filtered out without a word."""
    props = {p: {"type": "string"} for p in ("id", "at", "is_test")}
    lines = [schema("orders", props, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "at": AT, "is_test": flag})
        for n, flag in enumerate(["false", "FALSE", "true"])
    ]
    streams = {"orders": {"event_type": "lead_created", "filter": "!is_test",
                          "fields": {"timestamp": "at"}}}  # fmt: skip
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    told = [line for line in run.stderr.splitlines() if "for truth" in line]
    assert len(told) == 1
    assert told[0].endswith(
        "streams.orders.filter: is_test is tested for truth, and the stream's SCHEMA types it "
        "as text: to JMESPath any text but '' is true ('false' and '0' too), and no text "
        "equals `true` or `false`. Compare it instead: lower(is_test) == 'true' (or !=)."
    )
    # The same mistake in its other forms: a text compared with a boolean, a 0/1 number.
    for row_filter, said in (
        ("is_test == `false`", "is_test is compared with a boolean"),
        ("!IS_TEST", "IS_TEST is tested for truth"),  # (a warehouse's upper-case column)
        ("!flag", "flag is tested for truth, and the stream's SCHEMA types it as number: 0"),
    ):
        props["flag"] = {"type": "integer"}
        props["IS_TEST"] = {"type": "string"}
        other = {"orders": {**streams["orders"], "filter": row_filter}}
        lines[0] = schema("orders", props, ["id"])
        run = run_target(config(sandbox, tmp_path, other), lines, tmp_path)
        assert said in run.stderr, row_filter
    # A nullable column written as alternatives (singer-io taps): told alike.
    props["is_test"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    lines[0] = schema("orders", props, ["id"])
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert "is_test is tested for truth" in run.stderr
    props["is_test"] = {"type": "string"}
    # A test for null, as meant, and an id that is never 0: nothing to say.
    props |= {
        "refund_id": {"type": ["null", "integer"]},
        "cancelled_at": {"type": ["null", "string"]},
        "customer_id": {"type": "integer"},
    }
    lines[0] = schema("orders", props, ["id"])
    row_filter = "customer_id && !refund_id && !cancelled_at"
    other = {"orders": {**streams["orders"], "filter": row_filter}}
    run = run_target(config(sandbox, tmp_path, other), lines, tmp_path)
    assert "for truth" not in run.stderr
    sandbox.reset()
    # As it says: the orders that are no tests arrive.
    streams["orders"]["filter"] = "lower(is_test) != 'true'"
    again = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert again.returncode == 0, again.output
    assert "for truth" not in again.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["o0", "o1"]


def test_a_filter_comparing_a_boolean_column_with_a_number_or_text_is_told(sandbox, tmp_path):
    """pipelinewise-tap-mysql types a TINYINT(1) as boolean: `is_test != `1`` (or != 'true'),
    right for the tap that types it integer, is always true, and the test orders were sent
    without a word."""
    props = {"id": {"type": "string"}, "at": {"type": "string"},
             "is_test": {"type": ["null", "boolean"]}}  # fmt: skip
    lines = [schema("orders", props, ["id"])]
    lines += [
        record("orders", {"id": f"o{n}", "at": AT, "is_test": flag})
        for n, flag in enumerate([False, True, None])
    ]
    for row_filter, what in (("is_test != `1`", "a number"), ("is_test != 'true'", "text")):
        streams = {"orders": {"event_type": "lead_created", "filter": row_filter,
                              "fields": {"timestamp": "at"}}}  # fmt: skip
        run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
        assert run.returncode == 0, run.output
        assert (
            f"streams.orders.filter: is_test is compared with {what}, and the stream's SCHEMA "
            "types it as boolean: a boolean equals no number or text. Test it instead: is_test "
            "(or !is_test), or compare it with `true`."
        ) in run.stderr, run.stderr
    # As it says: the test order stays out, and nothing is said.
    sandbox.reset()
    streams["orders"]["filter"] = "!is_test"
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "SCHEMA types it" not in run.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["o0", "o2"]


def test_rows_keyed_by_two_columns_holding_colons_are_two_events(sandbox, tmp_path):
    """Ids of several key properties are their values joined by `:`; ('x:y', 'z') and
    ('x', 'y:z') both made `x:y:z`, so the second row was dropped as a duplicate of the first."""
    props = {"a": {"type": "string"}, "b": {"type": "string"}, "at": {"type": "string"}}
    lines = [
        schema("pairs", props, ["a", "b"]),
        record("pairs", {"a": "x:y", "b": "z", "at": AT}),
        record("pairs", {"a": "x", "b": "y:z", "at": AT}),
        record("pairs", {"a": "2026-12-01T10:00:00Z", "b": "gid://shopify/Order/1", "at": AT}),
    ]
    streams = {"pairs": {"event_type": "lead_created", "fields": {"timestamp": "at"}}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "pairs: received=3 sent=3" in run.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == [
        "2026-12-01T10\\:00\\:00Z:gid\\://shopify/Order/1",
        "x:y\\:z",
        "x\\:y:z",
    ]


def test_names_the_user_gave_show_in_messages_however_they_look(sandbox, tmp_path):
    """A stream named in words ('Web Leads Sheet'), which the log's redaction takes for
    personal data: the message that exists to name it said 'Name the entry '…''."""
    lines = [
        schema("Web Leads Sheets", {"id": {"type": "string"}}, ["id"]),
        record("Web Leads Sheets", {"id": "l1", "timestamp": AT, "type": "lead_created"}),
    ]
    streams = {"Web Leads Sheet": {}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 1
    assert (
        "Stream 'Web Leads Sheets' has no entry under `streams`, and `streams.Web Leads Sheet` "
        "matched no stream: is it misspelt? Name the entry 'Web Leads Sheets'"
    ) in run.stderr
    # A record's values stay hidden all the same.
    bad = record("Web Leads Sheets", {"id": "l2", "timestamp": "Jane Q Public", "type": "x"})
    fixed = config(sandbox, tmp_path, {"Web Leads Sheets": {}})
    run = run_target(fixed, [lines[0], bad], tmp_path)
    assert run.returncode == 0, run.output
    assert "Rejected a record of 'Web Leads Sheets' at mapping" in run.stderr
    assert "Jane" not in run.stderr


@pytest.mark.parametrize("workers", [None, 0])
def test_an_event_name_holding_an_email_is_rejected_not_sent(workers, sandbox, tmp_path):
    """event_type_from read a text about a person: its name went to the API, the email in it
    folded into `invite_sent_to_jane_doe_example_com`, and into the log."""
    props = {"id": {"type": "string"}, "event": {"type": "string"}}
    lines = [
        schema("events", props, ["id"]),
        record("events", {"id": "e1", "timestamp": AT, "event": "Invite sent to jo@example.com"}),
        record("events", {"id": "e2", "timestamp": AT, "event": "Call +44 20 7946 0958 back"}),
        record("events", {"id": "e3", "timestamp": AT, "event": "Demo Booked"}),
        # (no email nor phone: a time after an @, a date after a +)
        record("events", {"id": "e4", "timestamp": AT, "event": "webinar@10.30am"}),
        record("events", {"id": "e5", "timestamp": AT, "event": "Promo +2024-11-29"}),
        record("events", {"id": "e6", "timestamp": AT, "event": "Signup <jo@example.com>"}),
    ]
    cfg = config(sandbox, tmp_path, {"events": {"event_type_from": "event"}}, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["custom_event_name"] for e in sandbox.events(PIXEL_ID)] == [
        "demo_booked",
        "webinar_10_30am",
        "promo_2024-11-29",
    ]
    assert run.stderr.count("custom event name holds an email address or a phone number") == 3
    for raw in ("example", "jo_", "7946"):
        assert raw not in run.output


@pytest.mark.parametrize("workers", [None, 0])
def test_personal_data_in_content_items_is_sent_hashed(workers, sandbox, tmp_path):
    """A gift message or an engraving in an item's variant, an email in its name: sent raw,
    where the same text in custom_data or the id was hashed."""
    props = {"id": {"type": "string"}, "items": {"type": "array"}}
    items = [
        {"sku": "mug-1", "title": "Mug", "variant": {"size": "L", "engraving": "+1 415 555 0199"}},
        {"sku": "card-2", "title": "Gift card for jo@example.com", "variant": {"size": "S"}},
        # (a catalog's id, a date after a +, a name of another script: kept)
        {
            "sku": "4006381333931+4006381333948",
            "title": "ギフトセット",
            "variant": {"promo": "+2024-11-29"},
        },
    ]
    contents = "items[].{id: sku, name: title, variant_dict: variant}"
    streams = {"o": {"event_type": "order_created", "fields": {"contents": contents}}}
    lines = [schema("o", props, ["id"]), record("o", {"id": "o1", "timestamp": AT, "items": items})]
    log = str(tmp_path / "requests.jsonl")
    cfg = config(sandbox, tmp_path, streams, request_log_path=log, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output

    [event] = sandbox.events(PIXEL_ID)
    engraved = {"size": "L", "engraving": h("+1 415 555 0199")}
    assert event["data"]["contents"] == [
        {"id": "mug-1", "name": "Mug", "variant_dict": engraved},
        {"id": "card-2", "name": h("Gift card for jo@example.com"), "variant_dict": {"size": "S"}},
        {
            "id": "4006381333931+4006381333948",
            "name": "ギフトセット",
            "variant_dict": {"promo": "+2024-11-29"},
        },
    ]
    for raw in ("0199", "example"):
        assert raw not in (tmp_path / "requests.jsonl").read_text()
        assert raw not in run.output


@pytest.mark.parametrize("workers", [0, 2])
def test_an_australian_shop_s_overseas_numbers_hash_as_the_numbers_dialled(
    workers, sandbox, tmp_path
):
    """default_phone_region AU, where 0011 dials out: a London number written 0011 44 ... was
    sent as the hash of 11442079460958, a number of no one."""
    text = {"type": "string"}
    lines = [schema("leads", {"id": text, "at": text, "phone": text}, ["id"])]
    phones = {"uk": "0011 44 20 7946 0958", "local": "(02) 9374 4000", "e164": "+44 20 7946 0958"}
    lines += [
        record("leads", {"id": key, "at": AT, "phone": phone}) for key, phone in phones.items()
    ]
    fields = {"timestamp": "at", "phone": "phone", "action_source": "'phone_call'"}
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    cfg = config(sandbox, tmp_path, streams, workers=workers, default_phone_region="AU")
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    sent = {e["id"]: e["user"]["phone_numbers_sha256"] for e in sandbox.events(PIXEL_ID)}
    digest = lambda digits: hashlib.sha256(digits.encode()).hexdigest()  # noqa: E731
    assert sent == {
        "uk": [digest("442079460958")],
        "local": [digest("61293744000")],
        "e164": [digest("442079460958")],
    }


@pytest.mark.parametrize("workers", [0, 2])
def test_a_number_written_with_full_width_digits_or_unicode_dashes_hashes_as_the_number(
    workers, sandbox, tmp_path
):
    """Japanese forms write full-width digits, web pages a no-break hyphen (U+2011) so that a
    number does not wrap, copied text a zero-width space: written with its "+81" or "+1", such
    a number was left out ("not a phone number ... with its country code"), though the same
    number without its + was hashed."""
    text = {"type": "string"}
    lines = [schema("leads", {"id": text, "at": text, "phone": text}, ["id"])]
    phones = {
        "ascii": "+81 90-1234-5678",
        "full-width": "+81 " + full_width("90-1234-5678"),
        "full-width plus": "\uff0b\uff18\uff11 90\u30fc1234\u30fc5678",  # (katakana long mark)
        "no-break hyphens": "+81\u201190\u20111234\u20115678",
        "zero-width space": "+81 90 1234 5678\u200b",
        "direction marks": "\u202a+81 90 1234 5678\u202c",
        "national": full_width("090") + "-1234-5678",
    }
    lines += [
        record("leads", {"id": key, "at": AT, "phone": phone}) for key, phone in phones.items()
    ]
    fields = {"timestamp": "at", "phone": "phone", "action_source": "'phone_call'"}
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    cfg = config(sandbox, tmp_path, streams, workers=workers, default_phone_region="JP")
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "phone is not" not in run.output
    sent = {e["id"]: e["user"]["phone_numbers_sha256"] for e in sandbox.events(PIXEL_ID)}
    # (the official rule: the country calling code kept, separators and the leading + removed)
    assert sent == {key: [hashlib.sha256(b"819012345678").hexdigest()] for key in phones}


@pytest.mark.parametrize("workers", [0, 2])
def test_an_email_in_a_page_s_path_or_a_catalog_id_is_never_sent_raw(workers, sandbox, tmp_path):
    """The query string was cut from source_url (it carries ?email=), but an address in the
    path (a newsletter's confirmation page, `;email=`) went to the API raw, and so did one in a
    content id or a plan id (a column mapped by mistake): "Don't send raw email addresses"."""
    text = {"type": "string"}
    columns = {"id": text, "at": text, "url": text, "event": text, "plan": text}
    lines = [schema("signups", {**columns, "items": {"type": "array"}}, ["id"])]
    base = {"at": AT, "event": "Newsletter Confirmed", "plan": "gold"}
    pages = {
        "path": "https://shop.example.com/newsletter/confirm/jane.doe@example.com?token=abc",
        "param": "https://shop.example.com/orders;email=jane.doe@example.com/thanks",
        "encoded": "https://shop.example.com/u/jane.doe%40example.com",
        "phone": "https://shop.example.com/call-back/+14155552671/done",
        "encoded phone": "https://shop.example.com/call/%2B14155552671",
        "plain": "https://shop.example.com/products/red+shoes",
        # (a + joining ids is no phone's sign; a handle, no address)
        "bundle": "https://shop.example.com/bundles/4006381333931+4006381333948",
        "handle": "https://shop.example.com/blog/@jane.doe/post-1",
        "word+phone": "https://shop.example.com/callback/sms+14155552671",
    }
    lines += [
        record("signups", {**base, "id": key, "url": url, "items": [{"id": "sku-1"}]})
        for key, url in pages.items()
    ]
    gift = {"id": "giftcard:Jane.Doe@Example.com", "group_id": "gift", "name": "Gift card"}
    lines += [
        record(
            "signups",
            {**base, "id": "gift", "url": pages["plain"], "items": [gift], "plan": "a@b.example"},
        ),
        record(
            "signups",
            {
                **base,
                "id": "catalog",
                "url": pages["plain"],
                "items": [{"id": "SKU-1@WH.A1"}],
                "plan": "plan@monthly.v2",
            },
        ),
        record(
            "signups",
            {
                **base,
                "id": "hidden",
                "url": pages["plain"],
                "items": [
                    {"id": "gift:jane@example.com_SKU1"},
                    {"id": "jane@example.com.1"},
                    {"id": "jane@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444"},
                ],
                "plan": "jane%40example.com",
            },
        ),
    ]
    fields = {"timestamp": "at", "source_url": "url", "action_source": "'web'"}
    fields |= {"contents": "items", "plan_id": "plan"}
    streams = {"signups": {"event_type_from": "event", "fields": fields}}
    _, sent = run_logged(sandbox, tmp_path, streams, lines, workers)
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert {key: events[key]["source_url"] for key in pages} == {
        "path": "https://shop.example.com/newsletter/confirm/",
        "param": "https://shop.example.com/orders",
        "encoded": "https://shop.example.com/u/",
        "phone": "https://shop.example.com/call-back/",
        "encoded phone": "https://shop.example.com/call/",
        "plain": "https://shop.example.com/products/red+shoes",  # (a + with no number)
        "bundle": "https://shop.example.com/bundles/4006381333931+4006381333948",
        "handle": "https://shop.example.com/blog/@jane.doe/post-1",
        "word+phone": "https://shop.example.com/callback/",
    }
    assert events["path"]["data"]["plan_id"] == "gold"
    assert events["path"]["data"]["contents"] == [{"id": "sku-1"}]
    # Addresses in ids however written: encoded, with a suffix, of an IDN domain.
    assert events["hidden"]["data"]["plan_id"] == h("jane%40example.com")
    assert events["hidden"]["data"]["contents"] == [
        {"id": h("gift:jane@example.com_SKU1")},
        {"id": h("jane@example.com.1")},  # (an address and a suffix: no versioned id)
        {"id": h("jane@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444")},
    ]
    # Catalog ids written with an @ whose end is no domain's are sent as they are.
    assert events["catalog"]["data"]["plan_id"] == "plan@monthly.v2"
    assert events["catalog"]["data"]["contents"] == [{"id": "SKU-1@WH.A1"}]
    assert events["gift"]["data"]["plan_id"] == h("a@b.example")
    assert events["gift"]["data"]["contents"] == [
        {"id": h("giftcard:Jane.Doe@Example.com"), "group_id": "gift", "name": "Gift card"}
    ]
    sent = sent.lower()
    for raw in ("jane.doe%40", "jane.doe@example", "a@b", "4155552671"):
        assert raw not in sent


@pytest.mark.parametrize("workers", [0, 2])
def test_a_phone_written_with_unicode_dashes_is_personal_data_in_free_text(
    workers, sandbox, tmp_path
):
    """A number with no-break hyphens or en dashes (as web pages write it) is hashed as the
    phone it is (16e95e1), but free text holding one went to the API raw: a city, custom_data,
    a content item's name. Its ASCII form was left out or hashed."""
    text = {"type": "string"}
    lines = [schema("calls", {"id": text, "at": text, "c": text}, ["id"])]
    numbers = {"nb": "+1\u2011415\u2011555\u20112671", "en": "+1\u2013415\u2013555\u20132671"}
    numbers["full-width"] = full_width("+1") + "\u3000" + full_width("415-555-2671")
    numbers["long mark"] = "+1 415\u30fc555\u30fc2671"
    lines += [record("calls", {"id": key, "at": AT, "c": c}) for key, c in numbers.items()]
    fields = {"timestamp": "at", "city": "c", "custom_data": "{note: c}"}
    fields |= {"contents": "[{id: 'a', name: c}]", "action_source": "'phone_call'"}
    fields["custom_event_name"] = "'call_back'"
    streams = {"calls": {"event_type": "custom", "fields": fields}}
    run, sent = run_logged(sandbox, tmp_path, streams, lines, workers)
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == sorted(numbers)
    for key, number in numbers.items():
        assert "user" not in events[key]  # (the city left out, said)
        assert events[key]["data"]["note"] == h(number)
        assert events[key]["data"]["contents"] == [{"id": "a", "name": h(number)}]
    assert "city holds a phone number" in run.stderr
    for number in numbers.values():
        assert number not in sent
        assert json.dumps(number)[1:-1] not in sent  # (as JSON escapes it)


@pytest.mark.parametrize("workers", [0, 2])
def test_an_email_or_phone_in_a_field_sent_raw_is_left_out_not_sent(workers, sandbox, tmp_path):
    """City, region and the pixel's cookie go to the API raw: a column mapped wrongly (an email
    as the city, a phone as the region) sent them raw, unhashed, without a word."""
    text = {"type": "string"}
    columns = ["id", "at", "town", "county", "cookie"]
    lines = [schema("leads", {c: text for c in columns}, ["id"])]
    wrong = ["wrong", AT, "john@example.com", "+1 415 555 2671", "Jane.Doe@Example.com"]
    right = ["right", AT, "San Francisco", "CA", "123e4567-e89b-42d3-a456-426614174000"]
    lines += [record("leads", dict(zip(columns, row, strict=True))) for row in (wrong, right)]
    fields = {"timestamp": "at", "city": "town", "state": "county", "obref": "cookie"}
    fields["action_source"] = "'other'"
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert "user" not in events["wrong"]
    assert events["right"]["user"] == {
        "cities": ["San Francisco"],
        "regions": ["CA"],
        "obref": "123e4567-e89b-42d3-a456-426614174000",
    }
    for note in ("city holds an email address", "state holds a phone number"):
        assert note in run.stderr
    assert "obref holds an email address" in run.stderr
    assert "example.com" not in run.stderr.lower()
    assert "415 555 2671" not in run.stderr  # (not "555": a log time may hold it)


def test_a_table_of_copied_events_is_told_its_user_and_data_are_not_read(sandbox, tmp_path):
    """A table shaped like the sent event itself (the official example: `user` with
    emails_sha256, `data` with amount in minor units) under `streams: {conversions: {}}`: its
    events went without user and money, with no word. Told at the SCHEMA; mapped, they go."""
    digest = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
    columns = {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "timestamp_ms": {"type": "integer"},
        "action_source": {"type": "string"},
        "user": {"type": ["object", "null"]},  # (a jsonb column: nothing declared inside)
        "data": {"type": "object", "properties": {"type": {}, "amount": {}, "currency": {}}},
    }
    event = {
        "id": "order_12345",
        "type": "order_created",
        "timestamp_ms": int(time.time() * 1000) - 60_000,
        "action_source": "offline",
        "user": {"emails_sha256": [digest], "countries": ["US"]},
        "data": {"type": "contents", "amount": 2599, "currency": "USD"},
    }
    lines = [schema("conversions", columns, ["id"]), record("conversions", event)]
    run = run_target(config(sandbox, tmp_path, {"conversions": {}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    [sent] = sandbox.events(PIXEL_ID)
    assert "user" not in sent
    assert run.stderr.count("streams.conversions: the stream's SCHEMA lists 'user', 'data'") == 1
    fields = {"email": "user.emails_sha256", "amount_minor": "data.amount"}
    fields["currency"] = "data.currency"
    sandbox.reset()
    run = run_target(
        config(sandbox, tmp_path, {"conversions": {"fields": fields}}), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    [sent] = sandbox.events(PIXEL_ID)
    assert sent["user"] == {"emails_sha256": [digest]}
    assert sent["data"] == {"type": "contents", "amount": 2599, "currency": "USD"}
    assert "named as in the event the API takes" not in run.stderr


def test_ordinary_columns_named_like_parts_of_an_event_are_not_told_of(sandbox, tmp_path):
    """A `zip_code` column (the earlier user object's name), a `user` object of another shape
    (a login), a `data` object of Stripe's: each was told it copied sent events."""
    columns = {
        "id": {"type": "string"},
        "at": {"type": "string"},
        "email": {"type": "string"},
        "zip_code": {"type": "string"},
        "user": {"type": "object", "properties": {"login": {}, "id": {}}},
        "data": {"type": ["null", "object"], "properties": {"object": {}}},  # (Stripe's)
    }
    row = {"id": "l1", "at": AT, "email": "a@example.com", "zip_code": "94107"}
    lines = [schema("leads", columns, ["id"]), record("leads", row)]
    fields = {"timestamp": "at", "email": "email", "action_source": "'other'"}
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 1
    assert "named as in the event the API takes" not in run.stderr


def test_an_integer_amount_read_by_its_name_is_told_it_goes_as_major_units(sandbox, tmp_path):
    """A Stripe-like table of charges (amount 2900: cents) under an entry that maps neither
    amount nor amount_minor: sent as 2,900.00 dollars, a hundred times the sale, without a
    word. Told at the SCHEMA; mapped either way, nothing is said."""
    columns = {
        "id": {"type": "string"},
        "created": {"type": "string"},
        "amount": {"type": ["null", "integer"]},
        "currency": {"type": "string"},
    }
    charge = {"id": "ch_1", "created": AT, "amount": 2900, "currency": "usd"}
    lines = [schema("charges", columns, ["id"]), record("charges", charge)]
    fields = {"timestamp": "created", "action_source": "'other'"}
    streams = {"charges": {"event_type": "order_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.stderr.count("streams.charges reads amount from the record's 'amount'") == 1
    assert "map amount_minor: amount" in run.stderr
    for mapped, minor in (("amount_minor", 2900), ("amount", 290000)):
        sandbox.reset()
        entry = {"event_type": "order_created", "fields": {**fields, mapped: "amount"}}
        run = run_target(config(sandbox, tmp_path, {"charges": entry}), lines, tmp_path)
        assert run.returncode == 0, run.output
        assert sandbox.events(PIXEL_ID)[0]["data"]["amount"] == minor
        assert "reads amount from the record's" not in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_a_user_field_whose_expression_fails_on_a_row_leaves_the_rest_sent(
    workers, sandbox, tmp_path
):
    """The cookbook's `email: lower(customer_email)` on a row whose email column holds a
    number: the whole lead was rejected, its phone too. The email is left out, with a note."""
    lines = [schema("leads", {"id": {"type": "string"}, "at": {"type": "string"}}, ["id"])]
    lines.append(record("leads", {"id": "l1", "at": AT, "em": 12345, "ph": "+44 7700 900123"}))
    fields = {"timestamp": "at", "email": "lower(em)", "phone": "ph"}
    fields["action_source"] = "'other'"
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    digest = hashlib.sha256(b"447700900123").hexdigest()
    assert event["user"] == {"phone_numbers_sha256": [digest]}
    assert "email: expression 'lower(em)' failed" in run.stderr
    assert "rejected=0" in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failed_user_field_s_note_never_shows_the_value(workers, sandbox, tmp_path):
    """A function whose error quotes its argument (stripe_amount of an email, a phone, a
    name): the note logged the value whole, where a rejection's reason hides it."""
    lines = [schema("leads", {"id": {"type": "string"}, "at": {"type": "string"}}, ["id"])]
    values = ["Jane.Doe@Example.com", "+1 415 555 2671", "Maria Gonzalez", "Smith"]
    values += ["jane", "o'brien", "O\u2019Brien", "Jean\u2010Luc"]  # (however written)
    values += ["Smith' \"Jones", 14155552671.5]  # (quotes inside; a number, never quoted)
    for n, value in enumerate(values):
        lines.append(record("leads", {"id": f"l{n}", "at": AT, "em": value, "uid": f"u{n}"}))
    fields = {"timestamp": "at", "email": "stripe_amount(em, 'USD')", "external_id": "uid"}
    fields["action_source"] = "'other'"
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 10
    note = "email: expression \"stripe_amount(em, 'USD')\" failed: " + (
        "(why is not logged: it may hold the value); sent without it"
    )
    assert run.stderr.count(note) == 10
    # (whole numbers, not their parts: a log line's time or a METRIC's pid may hold "415")
    for value in ("Jane", "jane", "example", "415 555 2671", "14155552671", "Maria", "Gonzalez",
                  "Smith", "brien"):  # fmt: skip
        assert value not in run.stderr.replace("stripe_amount", ""), value
    assert "Brien" not in run.stderr
    assert "Jean" not in run.stderr
    assert "Jones" not in run.stderr


def test_columns_read_by_their_names_beside_mapped_fields_are_named(sandbox, tmp_path):
    """GitHub issues mapped by id and time: their `state` (open, closed) went to the API as
    the user's region, and a countries table's `currency` rejected every lead, without a
    word. Named at the SCHEMA; a field mapped to null is not read."""
    columns = {
        "id": {"type": "integer"},
        "state": {"type": ["null", "string"]},
        "currency": {"type": ["null", "string"]},
        "title": {"type": ["null", "string"]},
    }
    lines = [schema("issues", columns, ["id"])]
    lines.append(record("issues", {"id": 7, "state": "closed", "title": "Bug"}))
    fields = {"timestamp": f"'{AT}'", "action_source": "'other'"}
    streams = {"issues": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.stderr.count("streams.issues also reads state, currency from the record's") == 1
    assert 'map the field to null (e.g. state: "`null`")' in run.stderr
    sandbox.reset()
    streams["issues"]["fields"] = {**fields, "state": "`null`", "currency": "`null`"}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert "user" not in event
    assert "also reads" not in run.stderr


def test_a_table_shaped_like_the_event_read_by_name_beside_mapped_fields_is_not_told(
    sandbox, tmp_path
):
    """The cookbook's recipe (event_type_from and a mapped time and email, the rest read by
    name: oppref, amount, currency) was told to map its oppref to null; and a lead stream was
    told of plan_id and custom_event_name columns no lead reads."""
    text = {"type": ["null", "string"]}
    columns = {name: text for name in ("id", "event_name", "occurred_at", "customer_email")}
    columns |= {"oppref": text, "amount": {"type": ["null", "number"]}, "currency": text}
    row = {"id": "o1", "event_name": "purchase", "occurred_at": AT, "oppref": "opp_abc",
           "amount": 25.99, "currency": "USD", "customer_email": "Ana@Example.com"}  # fmt: skip
    fields = {"timestamp": "occurred_at", "email": "lower(customer_email)"}
    fields["action_source"] = "'other'"
    streams = {"conversions": {"event_type_from": "event_name", "fields": fields}}
    lines = [schema("conversions", columns, ["id"]), record("conversions", row)]
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["oppref"] == "opp_abc"
    assert "also reads" not in run.stderr
    sandbox.reset()
    # tap-shopify's customers: email, phone and the account's state, read by name beside
    # mapped names (the state went out as the customer's region, ENABLED, without a word)
    customers = {name: text for name in ("id", "createdAt", "firstName", "email", "phone")}
    customers["state"] = text
    row = {"id": "c1", "createdAt": AT, "firstName": "Ana", "state": "ENABLED"}
    fields = {"timestamp": "createdAt", "first_name": "firstName", "action_source": "'other'"}
    streams = {"customers": {"event_type": "registration_completed", "fields": fields}}
    lines = [schema("customers", customers, ["id"]), record("customers", row)]
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "streams.customers also reads email, phone, state from the record's" in run.stderr
    sandbox.reset()
    leads = {"id": text, "at": text, "plan_id": text, "custom_event_name": text}
    lines = [schema("leads", leads, ["id"]), record("leads", {"id": "l1", "at": AT})]
    fields = {"timestamp": "at", "action_source": "'other'"}
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "also reads" not in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_an_export_s_null_marker_is_no_value_in_fallbacks_and_event_names(
    workers, sandbox, tmp_path
):
    """A Snowflake unload or a Postgres COPY writes NULL as \\N, which tap-csv passes on: it
    was no value for a field, but a value inside `a || b` (`\\N` in total hid revenue, in
    context_traits_email hid email, in context_app_name made a server's event a mobile app's,
    in timestamp hid original_timestamp) and a custom event's name (`null`, `n`)."""
    null = "\\N"
    columns = ["id", "event", "event_text", "timestamp", "original_timestamp", "currency"]
    columns += ["total", "revenue", "context_page_url", "context_app_name"]
    columns += ["context_traits_email", "email"]
    nullable = {"type": ["string", "null"]}
    lines = [schema("order_completed", {c: nullable for c in columns}, ["id"])]
    base = {c: null for c in columns} | {"event": "order_completed", "currency": "USD"}
    rows = [
        {"id": "m1", "event_text": "Order Completed", "timestamp": AT, "revenue": "20.00"}
        | {"email": "jane@example.com"},
        {"id": "m2", "timestamp": AT, "total": "25.00"},  # (event_text \N: the event's name)
        {"id": "m3", "event_text": "Order Completed", "original_timestamp": AT, "total": "5"},
        {"id": "m4", "event_text": "Order Completed", "timestamp": AT, "currency": null}
        | {"total": "7.00"},  # (no currency: a sale goes without its amount, as documented)
    ]
    lines += [record("order_completed", base | row) for row in rows]
    lines += [schema("events", {"id": nullable, "at": nullable, "name": nullable}, ["id"])]
    lines += [record("events", {"id": "e1", "at": AT, "name": "NULL"})]
    streams = {
        "order_completed": {"preset": "segment/tracks"},
        "events": {"event_type_from": "name", "fields": {"timestamp": "at"}},
    }
    cfg = config(sandbox, tmp_path, streams, workers=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == ["m1", "m2", "m3", "m4"], run.stderr[-3000:]
    assert "action_source" not in events["m1"]  # (a server's event: neither page nor app)
    assert events["m1"]["data"] == {"type": "contents", "amount": 2000, "currency": "USD"}
    email = hashlib.sha256(b"jane@example.com").hexdigest()
    assert events["m1"]["user"]["emails_sha256"] == [email]
    assert events["m2"]["type"] == "order_created"  # (from `event`, not a custom "n")
    assert events["m3"]["data"]["amount"] == 500  # (its original_timestamp read)
    assert events["m4"]["data"] == {"type": "contents"}
    letters = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = {m["record"]["id"]: m["dead_letter"]["reason"] for m in letters if "record" in m}
    assert reasons == {"e1": "event name 'NULL' is an export's mark of no value"}


def test_a_loader_s_soft_delete_column_is_told_with_the_filter_that_leaves_them_out(
    sandbox, tmp_path
):
    """Fivetran keeps a deleted row with `_fivetran_deleted: true`, Airbyte's CDC with
    `_ab_cdc_deleted_at`: such rows went out as conversions without a word (only tap-style
    `_sdc_deleted_at` was known). The stream is told of at its SCHEMA, with the filter."""
    text = {"type": ["string", "null"]}
    columns = {"id": text, "at": text, "_fivetran_deleted": {"type": ["boolean", "null"]}}
    lines = [schema("orders", columns, ["id"])]
    lines += [record("orders", {"id": "o1", "at": AT, "_fivetran_deleted": False})]
    lines += [record("orders", {"id": "o2", "at": AT, "_fivetran_deleted": True})]
    lines += [schema("cdc", {"id": text, "at": text, "_ab_cdc_deleted_at": text}, ["id"])]
    lines += [record("cdc", {"id": "c1", "at": AT, "_ab_cdc_deleted_at": None})]
    lines += [record("cdc", {"id": "c2", "at": AT, "_ab_cdc_deleted_at": AT})]
    fields = {"timestamp": "at", "action_source": "'other'"}
    streams = {
        "orders": {"event_type": "order_created", "fields": fields},
        "cdc": {"event_type": "lead_created", "fields": fields},
    }
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    for stream, column in (("orders", "_fivetran_deleted"), ("cdc", "_ab_cdc_deleted_at")):
        assert (
            f"Stream '{stream}' has {column}, a loader's mark of a row deleted at the source, "
            f"which its mapping does not read: a deleted row is sent as a conversion. To leave "
            f'them out, set streams.{stream}.filter: "!{column}".'
        ) in run.stderr
    # A column a CSV unload writes as text: '!_fivetran_deleted' would leave out every row
    # ('false' is true to JMESPath); the filter named compares the text.
    nullable_text = {"anyOf": [{"type": "null"}, {"type": "string"}]}  # (singer-io's way)
    columns = {"id": text, "at": text, "_fivetran_deleted": nullable_text}
    as_text = [schema("unload", columns, ["id"])]
    as_text += [record("unload", {"id": "u1", "at": AT, "_fivetran_deleted": "false"})]
    as_text += [record("unload", {"id": "u2", "at": AT, "_fivetran_deleted": "true"})]
    unload = {"unload": {"event_type": "order_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, unload), as_text, tmp_path)
    said = "set streams.unload.filter: \"_fivetran_deleted != 'true'\"."
    assert said in run.stderr
    unload["unload"]["filter"] = "_fivetran_deleted != 'true'"
    sandbox.reset()
    run = run_target(config(sandbox, tmp_path, unload), as_text, tmp_path)
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["u1"]
    # The filter it names does leave them out (and then nothing is told).
    sandbox.reset()
    streams["orders"]["filter"] = "!_fivetran_deleted"
    streams["cdc"]["filter"] = "!_ab_cdc_deleted_at"
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["c1", "o1"]
    assert "a loader's mark of a row deleted" not in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_identifiers_as_exports_and_gateways_write_them_are_sent_as_the_rules_say(
    workers, sandbox, tmp_path
):
    """`Jane Doe <jane@example.com>` and `mailto:` were hashed whole (no match, counted as an
    email); `14155552671.0` (pandas) hashed as a 12-digit number; an X-Forwarded-For with
    ports (Azure) and a postal code with Japan's 〒 were left out."""
    text = {"type": ["string", "null"]}
    columns = ["id", "at", "email", "phone", "ip", "zip"]
    lines = [schema("leads", {c: text for c in columns}, ["id"])]
    rows = {
        "l1": ["Jane Doe <jane@example.com>", "14155552671.0", "203.0.113.9:17085, 10.0.0.6"],
        "l2": ["mailto:jane@example.com", "+1 415 555 2671 ext. 12", "[2001:db8::1]:443"],
    }
    for key, (email, phone, ip) in rows.items():
        row = {
            "id": key,
            "at": AT,
            "email": email,
            "phone": phone,
            "ip": ip,
            "zip": "\u3012100-0001",
        }
        lines.append(record("leads", row))
    fields = {"timestamp": "at", "email": "email", "phone": "phone", "ip_address": "ip"}
    fields |= {"zip": "zip", "action_source": "'other'"}
    streams = {"leads": {"event_type": "lead_created", "fields": fields}}
    run = run_target(config(sandbox, tmp_path, streams, workers=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "sent without it" not in run.stderr
    users = {e["id"]: e["user"] for e in sandbox.events(PIXEL_ID)}
    digest = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    for key, address in (("l1", "203.0.113.9"), ("l2", "2001:db8::1")):
        assert users[key] == {
            "emails_sha256": [digest("jane@example.com")],
            "phone_numbers_sha256": [digest("14155552671")],
            "ip_address": address,
            "postal_codes": ["100-0001"],
        }
