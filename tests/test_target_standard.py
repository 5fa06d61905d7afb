"""The SDK's standard target tests, with the target pointed at a live sandbox: once with no
stream mapped (every record counted and skipped) and once with every stream of the suite mapped
to an event, so its records take the whole path to the sandbox."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
import singer_sdk.testing
from conftest import API_KEY, PIXEL_ID
from singer_sdk.testing import get_target_test_class

from target_openai_capi.sandbox import start_sandbox
from target_openai_capi.target import TargetOpenAICapi

# The standard suite builds its config when the class is made, so the sandbox starts here
# (on a free port) and stops with the module.
_SANDBOX = start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID})

StandardTargetTests = get_target_test_class(
    TargetOpenAICapi,
    config={
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": _SANDBOX.url,
        # The suite expects the SDK's exceptions on bad input (record before schema, missing
        # key property, invalid schema): that is this target's `fail` mode. Here no stream is
        # mapped (every record counted and skipped); TestTargetOpenAICapiMapped maps them all.
        "on_rejected": "fail",
    },
)


class TestTargetOpenAICapi(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests."""

    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls):
        yield _SANDBOX
        _SANDBOX.stop()


# Every stream the suite's files send, each mapped to a lead event: the records carry no time,
# so the events are dated at import (a JMESPath literal), well inside the 7-day window.
_SUITE_FILES = pathlib.Path(singer_sdk.testing.__file__).with_name("target_test_streams")
_NOW = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
_MAPPED = {
    stream: {"event_type": "lead_created", "fields": {"timestamp": f"'{_NOW}'"}}
    for stream in [
        "test_array_data",
        "TestCamelcase",
        "ForecastingTypeToCategory",
        "test_duplicate_records",
        "test_strings",
        "test_strings_in_arrays",
        "test_strings_in_objects",
        "test_invalid_schema",
        "test_multiple_state_messages_a",
        "test_multiple_state_messages_b",
        "test_no_pk",
        "test_optional_attributes",
        "example_stream",
        "test_record_before_schema",
        "record_missing_fields",
        "test_record_missing_key_property",
        "test_record_missing_required_property",
        "test_object_schema_no_properties",
        "test_object_schema_with_properties",
        "test_schema_updates",
        "test:SpecialChars!in?attributes",
        "test_locations",
        "test_user_in_location",
        "test_users",
    ]
}
_MAPPED_SANDBOX = start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID})

MappedStandardTargetTests = get_target_test_class(
    TargetOpenAICapi,
    config={
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": _MAPPED_SANDBOX.url,
        "on_rejected": "fail",
        "streams": _MAPPED,
    },
)


class TestTargetOpenAICapiMapped(MappedStandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests with every stream mapped to an event."""

    @pytest.fixture(scope="class")
    @classmethod
    def resource(cls):
        yield _MAPPED_SANDBOX
        _MAPPED_SANDBOX.stop()


def test_the_mapped_suite_names_every_stream_its_files_send():
    """(Otherwise a new SDK stream would run unmapped and prove nothing here.)"""
    import re

    sent = set()
    for path in _SUITE_FILES.glob("*.singer"):
        sent |= set(re.findall(r'"stream": *"([^"]*)"', path.read_text()))
    assert sent <= set(_MAPPED)


@pytest.mark.parametrize("name", ["user_location_data", "camelcase", "encoded_string_data"])
def test_a_suite_file_with_its_streams_mapped_reaches_the_sandbox(name, tmp_path):
    """The mapped suite's records, run through the CLI: every one is sent or deduplicated."""
    from conftest import API_KEY, PIXEL_ID
    from support import run_target

    data = (_SUITE_FILES / f"{name}.singer").read_bytes()
    records = data.count(b'"type": "RECORD"') + data.count(b'"type":"RECORD"')
    sandbox = start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID})
    try:
        config = {"pixel_id": PIXEL_ID, "api_key": API_KEY, "api_url": sandbox.url}
        run = run_target({**config, "streams": _MAPPED}, data, tmp_path)
        stored = sandbox.events(PIXEL_ID)
    finally:
        sandbox.stop()
    assert run.returncode == 0, run.stderr
    assert f"received={records} sent={len(stored)} " in run.stderr
    assert stored
    assert {event["type"] for event in stored} == {"lead_created"}
