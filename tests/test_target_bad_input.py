"""A corpus of bad input: none crashes with a traceback; each says what is wrong or records why."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

import pytest
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD, now_ms, record, run_target, schema

GOOD_ID = "good"


def good_record() -> str:
    return record(
        "conversions", {"id": GOOD_ID, "type": "lead_created", "timestamp_ms": now_ms() - 60_000}
    )


def order(**fields) -> str:
    rec = {
        "id": "bad",
        "type": "order_created",
        "timestamp_ms": now_ms() - 60_000,
        "amount": "10.00",
        "currency": "USD",
        **fields,
    }
    return record("conversions", rec)


SCHEMA = schema("conversions", {"id": {"type": "string"}, "type": {"type": "string"}}, ["id"])

# name -> (input lines after the SCHEMA, the stage it is rejected at, words in the reason)
RECORD_CORPUS = {
    "malformed JSON line": (['{"type": "RECORD", "stream": '], "input", "not valid JSON"),
    "record that is not an object": (
        ['{"type": "RECORD", "stream": "conversions", "record": [1, 2]}'],
        "input",
        "not a JSON object",
    ),
    "RECORD without a stream": (['{"type": "RECORD", "record": {}}'], "input", "stream"),
    "RECORD before its SCHEMA": ([record("orders", {"id": 1})], "input", "before its SCHEMA"),
    "schema-invalid record": (
        [record("conversions", {"id": 123, "type": "lead_created"})],
        "schema",
        "record.id",
    ),
    "unknown currency": ([order(currency="XYZ")], "mapping", "XYZ"),
    "too many decimals": ([order(amount="10.001")], "mapping", "decimals"),
    "negative amount": ([order(amount="-5.00")], "mapping", "amount"),
    "non-numeric amount": ([order(amount="ten dollars")], "mapping", "amount"),
    "unparseable timestamp": (
        [record("conversions", {"id": "bad", "type": "lead_created", "timestamp": "last tuesday"})],
        "mapping",
        "timestamp",
    ),
    "stale timestamp": (
        [
            record(
                "conversions",
                {"id": "bad", "type": "lead_created", "timestamp_ms": now_ms() - 8 * 86_400_000},
            )
        ],
        "window",
        "older than 7 days",
    ),
    # Values of the wrong kind are named in JSON's words, as the record wrote them.
    "opt_out an array": (
        [
            record(
                "conversions",
                {
                    "id": "bad",
                    "type": "lead_created",
                    "timestamp_ms": now_ms() - 60_000,
                    "opt_out": [True, None, 1.5],
                },
            )
        ],
        "mapping",
        "opt_out [true, null, 1.5] is not a boolean",
    ),
    "oppref an object": (
        [
            record(
                "conversions",
                {
                    "id": "bad",
                    "type": "lead_created",
                    "timestamp_ms": now_ms() - 60_000,
                    "oppref": {"id": "abc"},
                },
            )
        ],
        "mapping",
        "oppref must be a string or a number, not an object",
    ),
    # A placeholder date (Go's and .NET's zero time, SQL's 1900-01-01) is older than 7 days
    # too, and so is the epoch itself: refused at the window, as a time of 1971 is.
    "placeholder date": (
        [record("conversions", {"id": "bad", "type": "lead_created", "timestamp": "0001-01-01"})],
        "window",
        "older than 7 days (timestamp '0001-01-01' is before 1970-01-01)",
    ),
    "the epoch": (
        [
            record(
                "conversions",
                {"id": "bad", "type": "lead_created", "timestamp": "1970-01-01T00:00:00Z"},
            )
        ],
        "window",
        "older than 7 days",
    ),
    # Too old, and not sendable for another reason too: too old comes first (no fix sends it),
    # whether the other reason is the contract's or the mapping's (a currency, read first).
    "stale and of an unknown currency": (
        [
            record(
                "conversions",
                {
                    "id": "bad",
                    "type": "order_created",
                    "timestamp_ms": now_ms() - 8 * 86_400_000,
                    "amount": "10.00",
                    "currency": "XYZ",
                },
            )
        ],
        "window",
        "older than 7 days (and unknown currency 'XYZ'",
    ),
    "timestamp_ms zero": (
        [record("conversions", {"id": "bad", "type": "lead_created", "timestamp_ms": 0})],
        "window",
        "older than 7 days (timestamp_ms 0 is before 2000, as milliseconds or seconds)",
    ),
    "stale web event without its page": (
        [
            record(
                "conversions",
                {
                    "id": "bad",
                    "type": "lead_created",
                    "action_source": "web",
                    "timestamp_ms": now_ms() - 8 * 86_400_000,
                },
            )
        ],
        "window",
        "older than 7 days",
    ),
    "future timestamp": (
        [
            record(
                "conversions",
                {"id": "bad", "type": "lead_created", "timestamp_ms": now_ms() + 3_600_000},
            )
        ],
        "window",
        "future",
    ),
    "1 MB id": (
        [
            record(
                "conversions",
                {"id": "x" * 1_000_000, "type": "lead_created", "timestamp_ms": now_ms()},
            )
        ],
        "mapping",
        "id",
    ),
    "unknown event type": (
        [record("conversions", {"id": "bad", "type": "", "timestamp_ms": now_ms()})],
        "mapping",
        "event name",
    ),
}


def test_a_filter_that_fails_on_one_record_rejects_that_record(sandbox, tmp_path):
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"conversions": {"filter": "starts_with(label, 'keep')"}},
    }
    ts = now_ms() - 1000
    lines = [
        SCHEMA,
        record("conversions", {"id": "n", "type": "lead_created", "timestamp_ms": ts, "label": 42}),
        record(
            "conversions",
            {"id": GOOD_ID, "type": "lead_created", "timestamp_ms": ts, "label": "keep me"},
        ),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == [GOOD_ID]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead[-1]["dead_letter"]["stage"] == "mapping"
    assert "starts_with" in dead[-1]["dead_letter"]["reason"]


def corpus_config(sandbox, tmp_path, **extra) -> dict:
    """The config the corpus runs under: dead letters kept, two streams mapped."""
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"conversions": {}, "orders": {"event_type": "order_created"}},
        **extra,
    }


def the_dead_letter(tmp_path) -> dict:
    """The one dead letter of the run (the file's header line aside)."""
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    letters = [m["dead_letter"] for m in dead if "dead_letter" in m]
    assert len(letters) == 1, dead
    return letters[0]


@pytest.mark.parametrize("name", list(RECORD_CORPUS))
def test_with_on_rejected_fail_a_bad_line_stops_the_run_named_and_recorded(name, sandbox, tmp_path):
    """on_rejected: fail stops at the bad line, and says which line it was (not "byte 57" of
    some line), and the line is in the dead-letter file as in the default mode."""
    bad_lines, stage, words = RECORD_CORPUS[name]
    config = corpus_config(sandbox, tmp_path, on_rejected="fail")
    run = run_target(config, [SCHEMA, good_record(), *bad_lines, good_record()], tmp_path)
    if stage == "window" and "older" in words:
        # No rerun sends a record older than 7 days (a tap re-reading an old row that
        # changed): kept in the dead-letter file, it does not stop the run, said once.
        assert run.returncode == 0, run.output
        assert "but a record older than 7 days does not stop the run" in run.stderr
        # Without a dead-letter file to keep it, it stops the run as any rejection does.
        del config["dead_letter_path"]
        again = run_target(config, [SCHEMA, good_record(), *bad_lines], tmp_path)
        assert again.returncode == 1, again.output
        assert "on_rejected is 'fail'" in again.stderr
        assert "No rerun can send a record older than 7 days: set dead_letter_path" in (
            again.stderr
        )
    else:
        assert run.returncode == 1, run.output
    assert "Traceback" not in run.output
    letter = the_dead_letter(tmp_path)
    assert letter["stage"] == stage
    assert words in letter["reason"]
    if stage == "input":
        assert letter["line_number"] == 3
        assert "line 3" in run.stderr.split("ERROR")[1]  # the first error names the line


@pytest.mark.parametrize("name", list(RECORD_CORPUS))
def test_bad_records_are_rejected_with_a_reason_and_the_rest_arrive(name, sandbox, tmp_path):
    bad_lines, stage, words = RECORD_CORPUS[name]
    config = corpus_config(sandbox, tmp_path)
    run = run_target(config, [SCHEMA, *bad_lines, good_record()], tmp_path)
    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == [GOOD_ID]
    letter = the_dead_letter(tmp_path)
    assert letter["stage"] == stage
    assert words in letter["reason"]
    assert "rejected=1" in run.stderr
    assert API_KEY not in run.output + (tmp_path / "dead.jsonl").read_text()


def test_non_utf8_bytes_and_a_1mb_field_do_not_stop_the_run(sandbox, tmp_path):
    big = record(
        "conversions",
        {"id": "big", "type": "lead_created", "timestamp_ms": now_ms(), "note": "y" * 1_000_000},
    )
    data = (
        b"\n".join(
            [
                SCHEMA.encode(),
                b'{"type": "RECORD", "\xff\xfe": 1}',
                big.encode(),
                good_record().encode(),
            ]
        )
        + b"\n"
    )
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"conversions": {}},
    }
    run = run_target(config, data, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["big", GOOD_ID]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead[0]["dead_letter"]["stage"] == "input"
    assert "UTF-8" in dead[0]["dead_letter"]["reason"]


# name -> (config changes, words the error must contain)
CONFIG_CORPUS = {
    "batch_size 5000": ({"batch_size": 5000}, "batch_size"),
    # (once crashed after delivery: a deadline past the clock's range, on every run)
    "request_timeout_seconds 1e10": ({"request_timeout_seconds": 1e10}, "request_timeout_seconds"),
    "max_retry_seconds 1e10": ({"max_retry_seconds": 1e10}, "max_retry_seconds"),
    "missing api_key": ({"api_key": None}, "api_key"),
    "http to a public host": ({"api_url": "http://bzr.openai.com/v1/events"}, "loopback"),
    "unknown field name": ({"streams": {"conversions": {"fields": {"emial": "email"}}}}, "emial"),
    "bad expression": ({"streams": {"conversions": {"fields": {"id": "a.[b"}}}}, "fields.id"),
    "unknown event type": ({"streams": {"conversions": {"event_type": "purchase"}}}, "purchase"),
    # One value for every event that no event may have: found at start-up, not at each record.
    "a constant that is no action source": (
        {"streams": {"conversions": {"fields": {"action_source": "'webb'"}}}},
        "fields.action_source: 'webb' is not an action source",
    ),
    # (each record was a validation or a window rejection, the run exiting 0, STATE moving on)
    "a constant web source of app installs": (
        {
            "streams": {
                "conversions": {
                    "event_type": "app_installed",
                    "fields": {"action_source": "'web'", "source_url": "'https://app.example/'"},
                }
            }
        },
        "fields.action_source: 'web' is no source of app_installed events",
    ),
    "a constant time of 2020": (
        {"streams": {"conversions": {"fields": {"timestamp": "'2020-01-01T00:00:00Z'"}}}},
        "fields.timestamp: '2020-01-01T00:00:00Z' would be the time of every event, and the "
        "API refuses it (timestamp_ms: older than 7 days)",
    ),
    "a constant that is no currency": (
        {"streams": {"conversions": {"fields": {"currency": "'usdd'"}}}},
        "fields.currency: unknown currency 'usdd'",
    ),
    "a constant page that is no URL": (
        {"streams": {"conversions": {"fields": {"source_url": "'/contact/thank-you'"}}}},
        "fields.source_url: '/contact/thank-you' is not a URL with a scheme and a host",
    ),
    "a constant id": (
        {"streams": {"conversions": {"fields": {"id": "'lead'"}}}},
        "fields.id: 'lead' would be the id of every event",
    ),
    "a constant amount too precise for its constant currency": (
        {"streams": {"conversions": {"fields": {"amount": "'12.345'", "currency": "'USD'"}}}},
        "fields.amount: amount 12.345 has more decimals than USD allows",
    ),
    # (600 terms joined by || ended in a traceback at start-up)
    "a path of 201 steps": (
        {"streams": {"conversions": {"fields": {"external_id": ".".join(["a"] * 201)}}}},
        "fields.external_id: expression 'a.a.a",
    ),
    "600 alternatives": (
        {"streams": {"conversions": {"fields": {"external_id": " || ".join(["a"] * 600)}}}},
        "nests more than 200 levels deep",
    ),
    # (JMESPath's lexer reads a quoted text in time of its length squared: 29 s at 1M)
    "an expression of a million characters": (
        {"streams": {"conversions": {"fields": {"amount": "'" + "1" * 1_000_000 + "'"}}}},
        "is 1,000,002 characters long, more than 100,000",
    ),
    "500 brackets": (
        {"streams": {"conversions": {"filter": "(" * 500 + "a" + ")" * 500}}},
        "streams.conversions.filter: expression '((((",
    ),
    # (ignored, it would send for real what was meant to be validated only)
    "the API's validate_only": ({"validate_only": True}, "for a dry run"),
    "dryrun": ({"dryrun": True}, "set dry_run: true"),
}


@pytest.mark.parametrize("name", list(CONFIG_CORPUS))
def test_bad_config_fails_fast_with_a_clear_message(name, sandbox, tmp_path):
    changes, words = CONFIG_CORPUS[name]
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "streams": {"conversions": {}},
    }
    config.update(changes)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 1
    assert words in run.stderr
    assert "Traceback" not in run.output
    assert API_KEY not in run.output
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("key", [12345678901234, 1234567890.5, [12345678901234]])
def test_a_key_of_the_wrong_type_is_refused_without_being_shown(key, sandbox, tmp_path):
    """A key of digits written as a JSON number: the SDK's message quotes the value."""
    config = {"pixel_id": PIXEL_ID, "api_key": key, "api_url": sandbox.url, "streams": {}}
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 1
    assert "api_key" in run.stderr
    assert "Traceback" not in run.output
    assert "1234567890" not in run.output
    assert sandbox.stats()["requests"] == 0


def test_a_setting_the_target_does_not_have_is_named_in_a_warning(sandbox, tmp_path):
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "streams": {"conversions": {}},
        "batchsize": 5,
        "stream_maps": {},  # (the SDK's settings are the target's too)
        "validate_records": True,
        "flattening_enabled": False,
    }
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 0, run.output
    warned = [line for line in run.stderr.splitlines() if "is not a setting" in line]
    assert len(warned) == 1
    assert "'batchsize' is not a setting of target-openai-capi: ignored" in warned[0]
    assert "(did you mean 'batch_size'?)" in warned[0]
    assert sandbox.stats()["accepted"] == 1


def test_a_misspelt_required_setting_is_named_with_the_one_meant(sandbox, tmp_path):
    config = {"pixel_id": PIXEL_ID, "apikey": API_KEY, "api_url": sandbox.url, "streams": {}}
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 1
    assert "'apikey' is not a setting of target-openai-capi: ignored (did you mean 'api_key'?)" in (
        run.stderr
    )
    assert "'api_key' is a required property" in run.stderr
    assert API_KEY not in run.output
    assert sandbox.stats()["requests"] == 0


def test_an_advertiser_key_stops_the_run_saying_which_key_is_needed(sandbox, tmp_path):
    wrong_key = "sk-svcacct-not-the-right-one"
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": wrong_key,
        "api_url": sandbox.url,
        "streams": {"conversions": {}},
    }
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 1
    assert "401" in run.stderr
    assert "Conversions API key" in run.stderr
    assert wrong_key not in run.output
    assert "Traceback" not in run.output
    assert run.states == []


def test_an_unknown_pixel_stops_the_run_naming_the_pixel_not_the_key(sandbox, tmp_path):
    config = {
        "pixel_id": "px_nope",
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "streams": {"conversions": {}},
    }
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 1
    assert "The API does not know pixel id 'px_nope' for this key (403: unknown pid)" in run.stderr
    assert "Check pixel_id" in run.stderr
    assert API_KEY not in run.output
    assert "Traceback" not in run.output


def test_a_stream_keyed_by_email_never_logs_the_email(sandbox, tmp_path):
    email = "Secret.Person@Example.com"
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {
            "leads": {"event_type": "lead_created", "fields": {"id": "email", "timestamp": "at"}}
        },
    }
    lines = [
        schema("leads", {"email": {"type": "string"}}, ["email"]),
        record("leads", {"email": email, "at": "last tuesday"}),
        record("leads", {"email": "other@example.com", "at": "2001-01-01T00:00:00Z"}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "rejected=2" in run.stderr
    assert email.lower() not in run.output.lower()
    assert "other@example.com" not in run.output
    assert email in (tmp_path / "dead.jsonl").read_text()  # kept for replay, as received


def test_a_run_started_with_its_input_closed_says_so(sandbox, tmp_path):
    """`target-openai-capi --config c.json <&-`: 'Unexpected error ... This is a bug'."""
    config = {"pixel_id": PIXEL_ID, "api_key": API_KEY, "api_url": sandbox.url, "streams": {}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json")],
        capture_output=True,
        preexec_fn=lambda: os.close(0),  # (the child's standard input, before exec)
        check=False,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "There is no input: standard input is closed" in err
    assert "bug" not in err


def test_a_run_started_with_its_output_closed_says_so_before_sending(sandbox, tmp_path):
    """`>&-`: the events went out, then 'Unexpected error (AttributeError ...) This is a bug';
    with a dead-letter file, that file took descriptor 1 and was refused as 'the target's
    standard output'. Nothing is sent: the STATE saying what was would be lost."""
    config = corpus_config(sandbox, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json")],
        input=("\n".join([SCHEMA, good_record()]) + "\n").encode(),
        capture_output=True,
        preexec_fn=lambda: os.close(1),  # (the child's standard output, before exec)
        check=False,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "standard output is closed: the STATE messages" in err
    assert "bug" not in err
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("option", ["--test", "--version"])
def test_a_check_whose_answer_cannot_be_printed_says_so_plainly(option, sandbox, tmp_path):
    """`--test > /dev/full` ended in an OSError traceback; `--test >&-` and `--version >&-`
    spoke of STATE messages, which neither writes."""
    (tmp_path / "config.json").write_text(json.dumps(corpus_config(sandbox, tmp_path)))
    command = [*TARGET_CMD, "--config", str(tmp_path / "config.json"), option]
    closed = subprocess.run(
        command, capture_output=True, preexec_fn=lambda: os.close(1), check=False, timeout=60
    )
    err = closed.stderr.decode()
    assert closed.returncode == 1
    assert f"standard output is closed: what {option} prints would be lost" in err
    assert "STATE" not in err
    if option == "--test":
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                command, stdout=full, stderr=subprocess.PIPE, check=False, timeout=60
            )
        err = done.stderr.decode()
        assert done.returncode == 1
        assert "(standard output could not be written: No space left on device)" in err
        assert "OK: the key, pixel id" in err  # (the answer, in the log instead)
        assert "Traceback" not in err


@pytest.mark.parametrize(
    "options", [["--about"], ["--about", "--format=markdown"], ["--version"], ["--help"]]
)
def test_an_answer_to_a_full_disk_says_so_without_a_traceback(options):
    """`--about > /dev/full` (and --version, --help) ended in an OSError traceback."""
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*TARGET_CMD, *options], stdout=full, stderr=subprocess.PIPE, check=False, timeout=60
        )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err.strip() == (
        f"target-openai-capi: what {options[0]} prints could not be written to standard output "
        "(No space left on device)"
    )


@pytest.mark.parametrize("variable", ["LOGLEVEL", "TARGET_OPENAI_CAPI_LOGLEVEL"])
def test_a_log_level_that_is_none_is_said_at_start(variable, sandbox, tmp_path):
    """`LOGLEVEL=verbose` ended in the SDK's traceback (ValueError: Unknown level)."""
    (tmp_path / "config.json").write_text(json.dumps(corpus_config(sandbox, tmp_path)))
    command = [*TARGET_CMD, "--config", str(tmp_path / "config.json")]
    env = {k: v for k, v in os.environ.items() if not k.endswith("LOGLEVEL")}

    def run_at(level: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            command,
            input=f"{SCHEMA}\n{good_record()}\n".encode(),
            capture_output=True,
            env={**env, variable: level},
            check=False,
            timeout=60,
        )

    bad = run_at("verbose")
    err = bad.stderr.decode()
    assert bad.returncode == 1
    assert err.strip() == (
        f"target-openai-capi: {variable}='verbose' is not a log level: one of DEBUG, INFO, "
        "WARNING, ERROR, CRITICAL"
    )
    assert sandbox.stats()["requests"] == 0
    good = run_at("warning")
    assert good.returncode == 0, good.stderr.decode()
    assert " INFO " not in good.stderr.decode()
    assert sandbox.stats()["accepted"] == 1


def test_an_unknown_setting_of_a_long_name_is_said_in_one_short_line(sandbox, tmp_path):
    """A misplaced 4 MB value as a setting's name was said whole, in one 4 MB log line."""
    config = corpus_config(sandbox, tmp_path)
    config["x" * 200_000] = 1
    run = run_target(config, [SCHEMA, good_record()], tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    said = [line for line in run.stderr.splitlines() if "is not a setting" in line]
    assert len(said) == 1
    assert said[0].endswith(f"'{'x' * 77}...' is not a setting of target-openai-capi: ignored")
    assert max(len(line) for line in run.stderr.splitlines()) < 2_000
    assert sandbox.stats()["accepted"] == 1


def test_a_run_started_with_its_log_closed_still_delivers(sandbox, tmp_path):
    """`2>&-`: the dead-letter file took descriptor 2 and was refused as 'standard error': the
    run stopped, nothing sent, and no word anywhere. Without a log, the run goes on."""
    config = corpus_config(sandbox, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    stale = record(
        "conversions",
        {"id": "old", "type": "lead_created", "timestamp_ms": now_ms() - 9 * 86_400_000},
    )
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json")],
        input=("\n".join([SCHEMA, good_record(), stale, '{"type": "STATE", "value": {"b": 1}}'])
               + "\n").encode(),
        stdout=subprocess.PIPE,
        preexec_fn=lambda: os.close(2),
        check=False,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == [GOOD_ID]
    assert json.loads(proc.stdout.decode().splitlines()[-1]) == {"b": 1}
    assert '"old"' in (tmp_path / "dead.jsonl").read_text()


# --- runs that share one dead-letter file (pipelines of one loader config, at once) -----------


def _started(config_path, head: list[str]) -> subprocess.Popen[bytes]:
    """The CLI with `head` written to it and its input left open."""
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdin is not None
    proc.stdin.write(("\n".join(head) + "\n").encode())
    proc.stdin.flush()
    return proc


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _shared_config(sandbox, tmp_path, name: str, **extra) -> tuple[dict, object]:
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "shared-dead.jsonl"),
        "worker_processes": 0,
        "streams": {"conversions": {}},
        **extra,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return config, path


def test_a_run_that_rejected_nothing_keeps_the_dead_letters_another_run_wrote(sandbox, tmp_path):
    """Run A creates the shared file at start-up and rejects nothing; run B, beside it, writes
    a dead letter there. A removed the file at its end (it had created it and left it empty, it
    thought), and B's rejected record was lost, though B said it was in the file."""
    shared = tmp_path / "shared-dead.jsonl"
    _, a_config = _shared_config(sandbox, tmp_path, "a")
    _, b_config = _shared_config(sandbox, tmp_path, "b")
    first = _started(a_config, [SCHEMA, good_record()])
    _wait_for(shared.exists, "run A to create the dead-letter file")
    second = run_target(json.loads(b_config.read_text()), [SCHEMA, order(currency="XYZ")], tmp_path)
    assert second.returncode == 0, second.output
    assert "rejected=1" in second.stderr
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert shared.exists()
    lines = [json.loads(line) for line in shared.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["SCHEMA", "RECORD"]
    assert lines[1]["dead_letter"]["stage"] == "mapping"
    # One run alone, which rejects nothing, still leaves no empty file behind.
    shared.unlink()
    alone = run_target(json.loads(a_config.read_text()), [SCHEMA, good_record()], tmp_path)
    assert alone.returncode == 0, alone.output
    assert not shared.exists()


def test_records_of_runs_sharing_a_dead_letter_file_replay_under_their_own_schema(
    sandbox, tmp_path
):
    """Run A dead-letters a record under its SCHEMA; run B, beside it, writes its own SCHEMA of
    the same stream (another type of a column) and a record; A's next dead letter followed B's
    SCHEMA line, and a replay checked it against B's schema: rejected for a reason it never had."""
    shared = tmp_path / "shared-dead.jsonl"
    props = {"id": {"type": "string"}, "created": {"type": "string"}}
    a_schema = schema("conversions", props, ["id"])
    b_schema = schema("conversions", {**props, "created": {"type": "integer"}}, ["id"])
    when = now_ms() - 60_000
    fields = {"type": "order_created", "amount": "10.00", "currency": "XYZ"}
    mapping = {"conversions": {"fields": {"timestamp": "created"}}}
    _, a_config = _shared_config(sandbox, tmp_path, "a", streams=mapping)
    _, b_config = _shared_config(sandbox, tmp_path, "b", streams=mapping)
    iso = __import__("datetime").datetime.fromtimestamp(when / 1000).astimezone().isoformat()

    def rec(key: str, created: object) -> str:
        return record("conversions", {"id": key, "created": created, **fields})

    first = _started(a_config, [a_schema, rec("a1", iso)])
    _wait_for(lambda: shared.exists() and "a1" in shared.read_text(), "a1's dead letter")
    second = run_target(
        json.loads(b_config.read_text()), [b_schema, rec("b1", when // 1000)], tmp_path
    )
    assert second.returncode == 0, second.output
    assert first.stdin is not None
    first.stdin.write((rec("a2", iso) + "\n").encode())
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    # Fixed, the file replays: every record under the SCHEMA it came with.
    fixed = {"conversions": {"fields": {"timestamp": "created", "currency": "'USD'"}}}
    config = {**json.loads(a_config.read_text()), "streams": fixed}
    config["dead_letter_path"] = str(tmp_path / "after-replay.jsonl")
    replay = run_target(config, shared.read_bytes(), tmp_path)
    assert replay.returncode == 0, replay.output
    assert "sent=3" in replay.stderr, replay.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["a1", "a2", "b1"]


def _hooked(tmp_path, sitecustomize: str) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(sitecustomize)
    return {**os.environ, "PYTHONPATH": str(hook)}


def _bad_orders(n: int) -> bytes:
    return (
        "\n".join([SCHEMA, *(order(id=f"b{i}", currency="XYZ") for i in range(n))]) + "\n"
    ).encode()


def _run_with(env: dict[str, str], config_path, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TARGET_CMD, "--config", str(config_path)],
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_dead_letters_on_a_file_system_without_locks_are_written_unlocked(sandbox, tmp_path):
    """On NFS without lockd (ENOLCK) the lock taken for runs sharing the file failed every
    dead letter: the run stopped at its first rejection, and every rerun there again."""
    env = _hooked(
        tmp_path,
        "import errno, fcntl\n"
        "def flock(fd, op):\n    raise OSError(errno.ENOLCK, 'No locks available')\n"
        "fcntl.flock = flock\n",
    )
    _, path = _shared_config(sandbox, tmp_path, "c")
    done = _run_with(env, path, _bad_orders(5))
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "rejected=5" in err
    lines = (tmp_path / "shared-dead.jsonl").read_text().splitlines()
    assert len(lines) == 6  # its SCHEMA and the five


def test_a_dead_letter_lock_held_for_good_delays_a_run_but_does_not_hang_it(sandbox, tmp_path):
    """A lock another program holds (a user's `flock`, a run stopped mid-write) held every
    write of the run, for good."""
    import fcntl

    env = _hooked(
        tmp_path,
        "import target_openai_capi.pipeline.dead_letter as d\nd.LOCK_WAIT_SECONDS = 0.5\n",
    )
    _, path = _shared_config(sandbox, tmp_path, "c")
    dead = tmp_path / "shared-dead.jsonl"
    dead.touch()
    with open(dead, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        done = _run_with(env, path, _bad_orders(3))
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "rejected=3" in err
    assert len(dead.read_text().splitlines()) == 4


def test_a_replay_found_while_a_dead_letter_waits_for_its_lock_keeps_that_dead_letter(tmp_path):
    """Input that turns out to hold dead letters (`cat new.jsonl dead.jsonl | ...`) makes the
    run switch to a file of its own for rejections, closing the first. The quiet-input thread
    writing a dead letter meanwhile (here: waiting for another run's lock on the shared file)
    then wrote to the closed file: "Unexpected error (TypeError ...)", exit 1, and the refused
    record counted nowhere. The switch now waits for that write."""
    from target_openai_capi.sandbox import start_sandbox

    # (a sandbox that refuses a body past 50 kB: an event of 120 kB is refused alone)
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}, max_body_bytes=50_000) as api:
        _replay_while_a_dead_letter_waits(api, tmp_path)


def _replay_while_a_dead_letter_waits(api, tmp_path) -> None:
    import fcntl
    import time

    dead = tmp_path / "shared-dead.jsonl"
    dead.touch()  # (another run's: this one did not create it)
    config, path = _shared_config(api, tmp_path, "c", batch_size=5)
    config["streams"] = {
        "ev": {
            "event_type": "custom",
            "fields": {
                "id": "id",
                "timestamp_ms": "ts",
                "custom_event_name": "'evt'",
                "action_source": "'other'",
                "custom_data": "{blob: blob}",
            },
        }
    }
    path.write_text(json.dumps(config))
    stamp = now_ms() - 3_600_000

    def rec(n: int, blob: str = "s") -> dict:
        return {
            "type": "RECORD",
            "stream": "ev",
            "record": {"n": n, "id": f"e{n}", "ts": stamp + n, "blob": blob},
        }

    properties = {
        name: {"type": kind}
        for name, kind in [
            ("n", "integer"),
            ("id", "string"),
            ("ts", "integer"),
            ("blob", "string"),
        ]
    }
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None

    def send(*messages: str | dict) -> None:
        for message in messages:
            text = message if isinstance(message, str) else json.dumps(message)
            with contextlib.suppress(BrokenPipeError):  # (it stopped: its log says why)
                proc.stdin.write(text.encode() + b"\n")
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.flush()

    send(schema("ev", properties, ["n"]))
    # A batch of five, one of whose events the API refuses alone (too large for its body).
    send(*(rec(n, "x" * 120_000 if n == 2 else "s") for n in range(5)))
    with open(dead, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another run writing to the shared file
        time.sleep(2.5)  # the quiet-input thread settles the batch: its dead letter waits
        letter = {"stage": "api", "reason": "x", "rejected_at": "2026-12-01T00:00:00+00:00"}
        replayed = {**rec(100), "dead_letter": letter}
        send(replayed)
        time.sleep(0.5)
    send(*(rec(n) for n in range(6, 9)))
    _, stderr = proc.communicate(timeout=120)
    err = stderr.decode()
    assert proc.returncode == 0, err
    assert "Unexpected error" not in err
    assert "The input holds dead letters (a replay)" in err
    assert "received=9 sent=8" in err
    assert "rejected=1" in err
    # In the file it was meant for (or, on a machine too slow to settle the batch within the
    # pause, in the replay's own file: the switch came first), whole, once.
    letters = [
        json.loads(line)
        for written in (dead, *tmp_path.glob("shared-dead.replay-*.jsonl"))
        for line in written.read_text().splitlines()
    ]
    assert [letter["record"]["n"] for letter in letters if letter["type"] == "RECORD"] == [2]


def test_where_no_lock_is_taken_an_empty_file_is_closed_before_it_is_removed(tmp_path, monkeypatch):
    """Windows (no fcntl) removes no open file: the empty file this run created was removed
    while still open, which fails there, and was left behind."""
    from pathlib import Path

    import target_openai_capi.pipeline.dead_letter as dead_letter

    monkeypatch.setattr(dead_letter, "fcntl", None)
    path = tmp_path / "dead.jsonl"
    letters = dead_letter.DeadLetterFile(path)
    letters.open()
    opened = letters._fd
    removed_while_open = []
    unlink = Path.unlink

    def windows_unlink(self, missing_ok=False):
        try:
            os.fstat(opened)
        except OSError:
            return unlink(self, missing_ok=missing_ok)
        removed_while_open.append(self)
        raise PermissionError(32, "The process cannot access the file")

    monkeypatch.setattr(Path, "unlink", windows_unlink)
    letters.close()
    assert removed_while_open == []
    assert not path.exists()
