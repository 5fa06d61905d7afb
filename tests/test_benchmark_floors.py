"""The benchmark floors do the target's job: the same events, and any stream runs through them.

run.py's ratios compare the target with the plain loop (benchmarks/plain_loop.py) and the raw
floor (raw_floor.py). A floor that sends other events than the target, or stops on a stream it
was not written for (another generator's orders), makes those ratios say nothing. These tests run
the real CLI against the sandbox on each record shape of benchmarks/generate.py and compare what
the sandbox received with what each floor builds; then run each floor's script on a stream of
orders no generator of ours writes.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from conftest import API_KEY, PIXEL_ID
from support import record, run_target, schema, state, target_config

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import agree  # noqa: E402
import floor_rules  # noqa: E402
import generate  # noqa: E402

# The currencies benchmarks/generate.py writes for full and sparse orders.
BASE_CURRENCIES = {"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "KWD"}


@pytest.mark.parametrize(("shape", "records"), [("full", 300), ("sparse", 300), ("varied", 800)])
def test_the_floors_send_exactly_the_events_the_target_sends(shape, records, sandbox, tmp_path):
    source = tmp_path / f"{shape}.singer"
    with source.open("wb") as out:
        generate.write_stream(out, records, seed=11, shape=shape)
    config = target_config(
        sandbox.url,
        tmp_path,
        {"orders": {"preset": "tap-shopify/orders"}},
        default_phone_region="US",
    )
    run = run_target(config, source.read_bytes(), tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    sent = sandbox.events()
    plain, raw = agree.floor_events(source)
    for built in (plain, raw):
        same, difference = agree.compare(sent, built)
        assert difference is None, difference
        assert same == len(sent) == len(built)
    if shape != "varied":
        assert len(sent) == records
        return
    # Varied orders take every path of the preset and the rules: the floors agree on them all.
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = Counter(letter["dead_letter"]["reason"].split(" ")[0] for letter in dead[1:])
    assert dead[0]["type"] == "SCHEMA"  # (the schema of the records after it)
    # Too old or ahead; finer than the minor unit; a web order without a page (the contract).
    assert set(reasons) <= {"timestamp_ms:", "amount", "source_url:"}, reasons
    assert reasons["timestamp_ms:"] > 0
    assert reasons["source_url:"] > 0
    assert len(sent) + len(dead) - 1 < records  # test orders are filtered: neither
    items = [item for event in sent for item in event["data"].get("contents", [])]
    assert {item.get("amount") for item in items} >= {0}  # free items: 0 is not a fallback
    assert {event["data"]["currency"] for event in sent} - BASE_CURRENCIES
    assert any(event["data"].get("contents") == [] for event in sent)
    assert any(len(event["data"].get("contents", [])) >= 11 for event in sent)
    assert any("emails_sha256" not in event.get("user", {}) for event in sent)
    assert any(event["timestamp_ms"] % 1000 for event in sent)


def _iso_minutes_ago(minutes: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - minutes * 60))


def _foreign_stream() -> list[str]:
    """Orders no generator of ours writes: fields missing or of other types, values the API
    refuses, lines that are no Singer message."""
    now = _iso_minutes_ago(5)
    url = "https://shop.example.com/orders/1"
    good = {
        "id": "gid://shopify/Order/1",
        "createdAt": now,
        "statusPageUrl": url,
        "email": "Buyer@Example.com",
        "phone": "(415) 555-0134",  # as written: the config sets no default_phone_region
        "totalPriceSet": {"shopMoney": {"amount": 12.5, "currencyCode": "CHF"}},
        "lineItems": [{"title": "Mug", "quantity": 1}],
    }

    def order(**changes: object) -> str:
        return record("orders", {**good, **changes})

    def money(amount: object, code: str) -> dict[str, object]:
        return {"shopMoney": {"amount": amount, "currencyCode": code}}

    return [
        schema("orders", {"id": {"type": "string"}}, ["id"]),
        order(),
        order(id="2", lineItems=None, customer=None, email=None),
        record("orders", {"id": "3", "createdAt": now, "sourceName": "pos"}),  # no more
        order(id="4", createdAt="2020-01-01T00:00:00Z"),  # stale
        order(id="5", totalPriceSet=money(1, "XYZ")),  # no such currency
        order(id="6", lineItems=[{"quantity": "two"}]),
        order(id="7", createdAt=int(time.time()) - 300),  # epoch seconds
        order(id="7b", createdAt=f"{time.time() - 300:.3f}"),  # and as text, with a fraction
        order(id="8", totalPriceSet=money(0.001, "USD")),  # finer than a cent
        order(id="9", billingAddress="somewhere", customer=[1]),
        order(id="10", statusPageUrl=None),  # a web order without its page
        order(id="11", test=True),
        order(id=None),
        order(id="12", lineItems=[{"sku": "A", "quantity": 2}, "not an item", None]),
        order(id="13", test=0),  # JMESPath's truth: 0 is true, a test order
        order(id="14", lineItems={"edges": []}),  # a connection, not a list: no contents
        order(id="15", lineItems=[{"sku": " ", "quantity": 1}]),  # an item id of spaces: none
        order(id="16", billingAddress={"countryCodeV2": "XK", "city": "Prishtina"}),
        order(
            id="17",
            customAttributes=[{"key": "oppref", "value": None}, {"key": "oppref", "value": "a1"}],
        ),
        order(
            id="18", customerJourneySummary={"lastVisit": {"landingPage": "/?x=1&amp;oppref=b2"}}
        ),
        order(id="19", lineItems=[{"sku": "B", "quantity": 2.0}]),
        order(id="20", totalPriceSet=money("NaN", "USD")),
        order(id="21", totalPriceSet=money(1e18, "USD")),
        order(id="22", statusPageUrl="  ", sourceName="pos"),
        order(id="23", email=False, customer={"email": "second@example.com", "id": 42}),
        order(id="24", email="B4C9A289323B21A01C3E940F150EB9B8C542587F1ABFD8F0E1CC1FFC5E475514"),
        "not json at all",
        '{"type": "RECORD", "stream": "orders", "record": ["a", "list"]}',
        state({"bookmarks": {"orders": {"updatedAt": now}}}),
    ]


@pytest.mark.parametrize("script", ["plain_loop.py", "raw_floor.py"])
def test_a_floor_runs_through_orders_it_was_not_written_for(script, sandbox, tmp_path):
    """It sends what the target sends (a floor that stopped, or sent an event the API refuses,
    would fail its whole batch and measure nothing) and writes the tap's STATE."""
    lines = _foreign_stream()
    config = target_config(sandbox.url, tmp_path, {"orders": {"preset": "tap-shopify/orders"}})
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    by_target = sorted(sandbox.events(), key=lambda event: event["id"])
    # (22: a page of spaces is no page, and a pos order needs none)
    sent = ["12", "14", "15", "16", "17", "18", "19", "2", "22", "23", "24", "3", "7", "7b", "9"]
    assert [event["id"] for event in by_target] == [*sent, "gid://shopify/Order/1"]
    sandbox.reset()
    settings = ["--api-url", sandbox.url, "--pixel-id", PIXEL_ID, "--api-key", API_KEY,
                "--batch-size", "2", "--default-phone-region", ""]  # fmt: skip
    if script == "plain_loop.py":  # the target's own config file, as run_target wrote it
        settings = ["--config", str(tmp_path / "config.json")]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *settings],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"sent={len(sent) + 1} skipped=" in done.stderr
    assert sorted(sandbox.events(), key=lambda event: event["id"]) == by_target
    assert json.loads(done.stdout.splitlines()[-1]) == json.loads(lines[-1])["value"]


def test_the_plain_loop_keeps_amounts_exact_and_a_zero_price_as_a_price():
    line = record(
        "orders",
        {
            "id": "o1",
            "createdAt": _iso_minutes_ago(1),
            "sourceName": "pos",
            "totalPriceSet": {"shopMoney": {"amount": 0.3, "currencyCode": "KWD"}},
            "lineItems": [
                {
                    "sku": "A",
                    "discountedUnitPriceSet": {"shopMoney": {"amount": 0}},
                    "originalUnitPriceSet": {"shopMoney": {"amount": 9.99}},
                }
            ],
        },
    )
    event = agree.plain_loop.to_event(agree.plain_loop._DECODER.decode(line))
    assert event is not None
    # 0.3 KWD is 300 fils (three decimals, no float on the way); JMESPath's `||` keeps a 0.
    assert event["data"] == {
        "type": "contents",
        "amount": 300,
        "currency": "KWD",
        "contents": [{"id": "A", "amount": 0}],
    }


def test_the_floors_ten_digit_shortcut_is_what_libphonenumber_makes_of_a_us_number():
    rng = random.Random(5)
    numbers = [str(rng.randrange(2_000_000_000, 10_000_000_000)) for _ in range(3000)]
    numbers += ["2000000000", "9999999999", "2125550134"]
    for compact in numbers:
        number = phonenumbers.parse(compact, "US")
        assert phonenumbers.is_possible_number(number)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert floor_rules.national_digits(compact) == e164[1:], compact
    # Other national numbers go to libphonenumber itself.
    assert floor_rules.national_digits("12125550134") == "12125550134"
    assert floor_rules.national_digits("1234567890") == "11234567890"
    assert floor_rules.national_digits("12") is None
    # Digits that are not ASCII are not the shortcut's: libphonenumber reads them its own way.
    full_width = "".join(chr(0xFF10 + int(digit)) for digit in "4155550134")
    assert floor_rules.national_digits(full_width) == "14155550134"


def test_the_concurrency_run_waits_the_latency_and_overlaps_requests(tmp_path):
    """run.py's concurrency figures: the counting server really waits `--latency-ms` before it
    answers (one request at a time takes at least requests x latency), requests overlap when
    more may be in flight, and every run delivers every event, against both servers."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--skip-throughput",
         "--concurrency-records", "300", "--latency-ms", "300", "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    figures = json.loads(out.read_text())["concurrency"]
    runs = {key: value for key, value in figures.items() if "max_concurrent_requests" in key}
    assert set(runs) == {
        *(f"target batch_size=50 max_concurrent_requests={n}" for n in (1, 4, 8, 16)),
        *(f"target batch_size=1000 max_concurrent_requests={n}" for n in (1, 4, 8)),
        *(f"target sandbox batch_size=50 max_concurrent_requests={n}" for n in (1, 16)),
    }
    assert {run["accepted"] for run in runs.values()} == {300}
    for server in ("target", "target sandbox"):
        one = runs[f"{server} batch_size=50 max_concurrent_requests=1"]
        assert one["requests"] == 6
        assert one["max_in_flight"] == 1
        assert one["wall_s"] >= 6 * 0.300  # (the run takes under a second without it)
        assert runs[f"{server} batch_size=50 max_concurrent_requests=16"]["max_in_flight"] > 1
    assert "16 in flight / 1 in flight" in done.stdout
