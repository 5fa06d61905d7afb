"""The sink's schema verdict and the config's start-up checks, driven directly (no CLI)."""

from __future__ import annotations

import logging

import pytest
from conftest import API_KEY, PIXEL_ID
from singer_sdk.exceptions import ConfigValidationError, InvalidRecord
from support import now_ms

from target_openai_capi.config import compile_streams, fill_from_environment, setting, without_key
from target_openai_capi.pipeline.accounting import SKIPPED_STREAM, STAGE_SCHEMA
from target_openai_capi.reading.envelope import RecordEnvelope
from target_openai_capi.sink import ConversionsSink, JsonschemaRecordValidator
from target_openai_capi.target import TargetOpenAICapi

# Nothing is sent in these tests: the URL is never called.
URL = "http://127.0.0.1:9/v1/events"
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "ts": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "notes": {"type": "integer"},  # never read by the mapping
    },
}
STREAMS = {"orders": {"event_type": "order_created", "fields": {"timestamp_ms": "ts"}}}


def sink_for(stream: str, **config: object) -> ConversionsSink:
    target = TargetOpenAICapi(
        config={"pixel_id": PIXEL_ID, "api_key": API_KEY, "api_url": URL, "streams": STREAMS}
        | config,
        validate_config=True,
    )
    target._process_schema_message(
        {"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": ["id"]}
    )
    sink = target.get_sink(stream)
    assert isinstance(sink, ConversionsSink)
    return sink


def test_a_record_that_matches_the_schema_where_it_is_read_passes():
    sink = sink_for("orders")
    record = {"id": "o1", "ts": now_ms(), "email": None, "notes": "not an integer, not read"}
    assert sink.schema_verdict(RecordEnvelope("orders", record)) is None


def test_a_record_that_breaks_the_schema_where_it_is_read_is_rejected_naming_the_field():
    sink = sink_for("orders")
    verdict = sink.schema_verdict(RecordEnvelope("orders", {"id": "o1", "ts": "yesterday"}))
    assert verdict is not None
    assert verdict.stage == STAGE_SCHEMA
    assert "record.ts must be integer" in verdict.reason
    assert "yesterday" not in verdict.reason  # the value stays out of the reason


def test_a_record_without_its_key_property_is_rejected():
    sink = sink_for("orders")
    verdict = sink.schema_verdict(RecordEnvelope("orders", {"ts": now_ms()}))
    assert verdict is not None
    assert verdict.reason == "record lacks key properties ['id']"


def test_a_record_the_reader_checked_is_not_checked_again():
    sink = sink_for("orders")
    envelope = RecordEnvelope("orders", {"id": "o1", "ts": "x"}, schema_checked=True)
    assert sink.schema_verdict(envelope) is None


def test_the_sink_plans_a_decoding_that_checks_the_schema_for_its_read_paths():
    decoding = sink_for("orders").record_decoding()
    assert decoding is not None
    assert decoding.checks_schema
    assert decoding.decoder.decode(b'{"id": "o1", "ts": 5, "notes": "x"}') == {"id": "o1", "ts": 5}


def test_without_validation_the_plan_only_reads():
    decoding = sink_for("orders", validate_records=False).record_decoding()
    assert decoding is not None
    assert not decoding.checks_schema


def test_a_record_of_an_unmapped_stream_is_counted_and_skipped():
    sink = sink_for("refunds")
    sink.add(RecordEnvelope("refunds", {"id": "r1"}))
    assert sink.pipeline.account.outcomes["refunds"][SKIPPED_STREAM] == 1
    assert sink.record_decoding() is not None  # only its key properties are decoded


def test_stream_entries_compile_with_their_errors_and_warnings():
    mappings, errors, warnings = compile_streams(
        {
            "streams": {
                "orders": {"event_type": "order_created", "fields": {"date_of_birth": "dob"}},
                "broken": {"event_type": "not_a_type"},
            }
        }
    )
    assert list(mappings) == ["orders"]
    (error,) = errors
    assert "broken" in error
    assert "not_a_type" in error
    (warning,) = warnings
    assert warning.startswith("streams.orders.fields.date_of_birth is not sent")


def test_a_stream_entry_that_does_not_compile_stops_the_target_at_start_up():
    with pytest.raises(ConfigValidationError):
        TargetOpenAICapi(
            config={
                "pixel_id": PIXEL_ID,
                "api_key": API_KEY,
                "api_url": URL,
                "streams": {"broken": {"event_type": "not_a_type"}},
            },
            validate_config=True,
        )


def test_the_key_and_pixel_come_from_the_environment_when_the_config_lacks_them(monkeypatch):
    monkeypatch.setenv("TARGET_OPENAI_CAPI_API_KEY", "  sk-svcacct-from-env\n")
    monkeypatch.setenv("TARGET_OPENAI_CAPI_PIXEL_ID", "px_env")
    config: dict[str, object] = {"pixel_id": "", "api_key": None}
    fill_from_environment(config)
    assert config == {"pixel_id": "px_env", "api_key": "sk-svcacct-from-env"}
    kept: dict[str, object] = {"pixel_id": "px_config", "api_key": "sk-svcacct-config"}
    fill_from_environment(kept)
    assert kept == {"pixel_id": "px_config", "api_key": "sk-svcacct-config"}


def test_the_key_is_hidden_in_every_form_a_message_may_show_it():
    key = "sk-svcacct-se\\cret\n"
    messages = [f"bad key {key}", f"bad key {key.strip()}", f"repr {key!r}"]
    hidden = without_key(messages, key)
    assert hidden == ["bad key ***", "bad key ***", "repr '***'"]


def test_a_setting_left_out_has_the_config_schemas_default():
    assert setting({}, "batch_size") == 1000
    assert setting({}, "max_concurrent_requests") == 4
    assert setting({"batch_size": 10}, "batch_size") == 10


def test_start_up_warns_about_a_mapped_field_no_user_object_sends(caplog):
    with caplog.at_level(logging.WARNING):
        sink_for(
            "orders", streams={"orders": {**STREAMS["orders"], "fields": {"date_of_birth": "d"}}}
        )
    assert "streams.orders.fields.date_of_birth is not sent" in caplog.text


@pytest.mark.parametrize(
    ("url", "sent", "kept"),
    [
        (
            "https://shop.example/o/1/authenticate?key=k#s",
            "https://shop.example/o/1/authenticate",
            None,
        ),
        ("https://shop.example/p#a?b", "https://shop.example/p", None),
        (" https://shop.example/p ", "https://shop.example/p", "https://shop.example/p"),
        ("myapp://open/offer?x=1", "myapp://open/offer", None),
        (
            "https://jane%40example.com:pw@shop.example/thanks?x=1",
            "https://shop.example/thanks",
            None,
        ),
        ("https://shop.example/a@b?x=1", "https://shop.example/a@b", None),
        (
            "https://shop.example/cart;jsessionid=ABC123;v=2/pay;JSESSIONID=X?x=1",
            "https://shop.example/cart;v=2/pay",
            None,
        ),
        # Whitespace in the path or query encoded, as a browser sends the page's address.
        (
            "https://shop.example/thank you\u00a0page?q=a b",
            "https://shop.example/thank%20you%C2%A0page",
            "https://shop.example/thank%20you%C2%A0page?q=a%20b",
        ),
        ("https://shop example/p x", "https://shop example/p%20x", "https://shop example/p%20x"),
        # Tabs and newlines a browser drops (a URL copied across a line break in a CSV cell).
        (
            "https://shop.example/thank\n-you\t",
            "https://shop.example/thank-you",
            "https://shop.example/thank-you",
        ),
        (  # (read before the session id is looked for)
            "https://shop.example/cart;js\nessionid=ABC",
            "https://shop.example/cart",
            "https://shop.example/cart;jsessionid=ABC",
        ),
    ],
)
def test_source_url_is_sent_as_origin_and_path_unless_the_stream_keeps_its_query(url, sent, kept):
    from target_openai_capi.mapping.event import source_url_text

    assert source_url_text(url, keep_query=False) == sent
    assert source_url_text(url, keep_query=True) == (kept or url)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("javascript://alert(1)", "source_url is a javascript: URL, not a page's"),
        (" JavaScript:void(0)//x", "source_url is a javascript: URL, not a page's"),
        ("data://text/html,hi", "source_url is a data: URL, not a page's"),
        ("file:///etc/passwd", "source_url is a file: URL, not a page's"),
        # Tabs and newlines are dropped before the scheme is read, as a browser does.
        ("java\tscript://alert(1)", "source_url is a javascript: URL, not a page's"),
        ("da\nta://text/html,hi", "source_url is a data: URL, not a page's"),
        ("http://[::1/thanks", "source_url is not a URL (Invalid IPv6 URL)"),
    ],
)
def test_a_source_url_of_no_page_is_a_mapping_error(url, said):
    from target_openai_capi.mapping.errors import MappingError
    from target_openai_capi.mapping.event import source_url_text

    for keep_query in (False, True):
        with pytest.raises(MappingError) as raised:
            source_url_text(url, keep_query=keep_query)
        assert str(raised.value) == said
    assert source_url_text("http://[::1]:8080/thanks", keep_query=False) == (
        "http://[::1]:8080/thanks"
    )
    assert source_url_text("dashboard://home", keep_query=False) == "dashboard://home"


def test_a_source_url_that_is_only_a_query_is_a_mapping_error_and_the_option_a_boolean():
    from target_openai_capi.mapping.errors import MappingError
    from target_openai_capi.mapping.event import source_url_text

    with pytest.raises(MappingError, match="source_url is empty without its query string"):
        source_url_text("?email=jane@example.com", keep_query=False)
    _, errors, _ = compile_streams(
        {"streams": {"s": {"event_type": "page_viewed", "keep_source_url_query": "yes"}}}
    )
    assert errors == ["streams.s.keep_source_url_query: must be true or false"]


@pytest.mark.parametrize(
    ("action_source", "error"),
    [
        (
            "web",
            "streams.s.fields.action_source: web reads a property named web; for the value "
            "write 'web' (in quotes)",
        ),
        ("email", "streams.s.fields.action_source: email reads a property named email"),
        ("'web'", None),
        ("channel", None),  # a property holding the source
        ('"web"', None),  # a property named web, quoted: said on purpose
    ],
)
def test_action_source_written_as_a_bare_value_is_a_config_error(action_source, error):
    """`action_source: web` read the record's property `web` (null): every event went out
    without its source, and web events failed for want of the page."""
    fields = {"action_source": action_source}
    _, errors, _ = compile_streams(
        {"streams": {"s": {"event_type": "page_viewed", "fields": fields}}}
    )
    if error is None:
        assert errors == []
    else:
        [found] = errors
        assert found.startswith(error)


def test_a_schema_rule_the_check_cannot_apply_is_a_rejection_not_a_crash() -> None:
    """Given a float multipleOf as the tap wrote it (the target leaves it out before the check,
    schema_check.for_record_checks), fastjsonschema divides the exact decimal by a float: the
    record is rejected with a reason instead of the run stopping at it."""
    from decimal import Decimal

    from target_openai_capi.sink import FastRecordValidator

    check = FastRecordValidator({"properties": {"a": {"type": "number", "multipleOf": 0.01}}})
    with pytest.raises(InvalidRecord, match="SCHEMA could not be applied to the record"):
        check.validate({"a": Decimal("1.5")})


def test_properties_a_schema_does_not_allow_are_named_in_the_same_order_every_run():
    """fastjsonschema names them as a Python set, whose order changes from one process to the
    next: the same record's dead letter had another reason at each run."""
    import fastjsonschema

    from target_openai_capi.pipeline.schema_verdict import fast_schema_problem

    validate = fastjsonschema.compile({"type": "object", "additionalProperties": False})
    names = [f"p{n:02d}" for n in range(20)]
    problem = fast_schema_problem(validate, {name: 1 for name in reversed(names)})
    listed = ", ".join(repr(name) for name in names)
    assert problem == f"record must not contain {{{listed}}} properties"


@pytest.mark.parametrize(
    ("schema", "record", "words"),
    [
        ({"properties": {"ph": {"type": "string"}}}, {"ph": 14155550123}, 'type "string"'),
        ({"properties": {"ph": {"maxLength": 3}}}, {"ph": "+14155550123"}, "maxLength 3"),
        ({"properties": {"ph": {"enum": ["a"]}}}, {"ph": "jane@example.com"}, 'enum ["a"]'),
        ({"properties": {"ph": False}}, {"ph": "+14155550123"}, "a false schema"),
    ],
    ids=["type", "maxLength", "enum", "false"],
)
def test_jsonschema_s_rejections_name_the_field_and_rule_not_the_value(schema, record, words):
    """jsonschema's own messages quote the value (`14155550123 is not of type 'string'`)."""
    validator = JsonschemaRecordValidator({"type": "object", **schema})
    with pytest.raises(InvalidRecord) as caught:
        validator.validate(record)
    message = str(caught.value)
    assert words in message
    assert str(record["ph"]).lstrip("+") not in message
