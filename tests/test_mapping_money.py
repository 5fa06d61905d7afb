"""Exact money: currency codes, major -> minor units, already-minor amounts."""

from __future__ import annotations

from decimal import Decimal, getcontext, localcontext

import pytest

from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.money import (
    currency_code,
    currency_exponent,
    minor_units,
    stripe_amount,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("USD", "USD"),
        ("usd", "USD"),
        (" USD ", "USD"),
        ("eur", "EUR"),
        ("jpy", "JPY"),
        # New in 2024-2025 (the Zimbabwe Gold, the Caribbean guilder): iso4217 1.11, which the
        # dependency's floor let in, refused them (1.13 has them).
        ("ZWG", "ZWG"),
        ("xcg", "XCG"),
    ],
)
def test_currency_code_normalises(value: str, expected: str) -> None:
    assert currency_code(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("XYZ", "unknown currency 'XYZ' (not a current ISO 4217 code)"),
        (" xyz ", "unknown currency 'xyz' (not a current ISO 4217 code)"),
        ("XAU", "currency 'XAU' has no minor unit, so no amount can be sent in it"),  # gold
        ("XXX", "currency 'XXX' has no minor unit, so no amount can be sent in it"),
        (
            "HRK",
            "unknown currency 'HRK' (not a current ISO 4217 code)",
        ),  # the kuna, withdrawn in 2023
        ("", "unknown currency '' (not a current ISO 4217 code)"),
        ("US Dollar", "unknown currency 'US Dollar' (not a current ISO 4217 code)"),
        (None, "currency is null, not an ISO 4217 code"),
        (840, "currency is a number, not an ISO 4217 code"),
    ],
)
def test_currency_code_rejects(value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        currency_code(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
        ("jpy", 0),
    ],
)
def test_currency_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_currency_exponent_unknown() -> None:
    with pytest.raises(MappingError, match="currency 'XAU' has no minor unit"):
        currency_exponent("XAU")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("19.99", "USD", 1999),
        (Decimal("19.99"), "USD", 1999),
        (Decimal("19.99") * 3, "USD", 5997),  # callers multiply in Decimal: exactly 59.97
        (19.99, "USD", 1999),  # a float is read as its repr, not its binary expansion
        (19.99 * 3, "USD", 5997),  # 59.97 as a float repr is still 59.97
        (129.99, "USD", 12999),
        (25, "USD", 2500),
        (0, "USD", 0),
        ("0", "USD", 0),
        (Decimal("-0"), "USD", 0),
        ("10.500", "USD", 1050),  # trailing zeros are not extra precision
        ("10.5", "USD", 1050),
        (" 25.99 ", "USD", 2599),
        ("+3.50", "USD", 350),
        (".5", "USD", 50),
        ("5.", "USD", 500),
        (" 1e2 ", "USD", 10000),  # exponent notation is a number
        ("2.5E1", "USD", 2500),
        (Decimal("1E+2"), "USD", 10000),
        ("1500", "JPY", 1500),
        (Decimal("1500.000"), "JPY", 1500),
        (1500.0, "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("1.2", "KWD", 1200),
        ("1.2345", "CLF", 12345),
        ("19.99", " usd ", 1999),
        ("10000000000000", "USD", 10**15),  # exactly the limit
    ],
)
def test_to_minor_units(amount: object, currency: str, expected: int) -> None:
    result = to_minor_units(amount, currency)
    assert result == expected
    assert type(result) is int


def test_float_traps_are_not_silently_rounded() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in binary floating point: a rejection, never 30.
    with pytest.raises(MappingError) as caught:
        to_minor_units(0.1 + 0.2, "USD")
    assert str(caught.value) == "amount 0.30000000000000004 has more decimals than USD allows (2)"
    # Summed as Decimal (the SDK's type for JSON numbers) the same values are exact.
    assert to_minor_units(Decimal("0.1") + Decimal("0.2"), "USD") == 30


def test_result_does_not_depend_on_global_decimal_context() -> None:
    with localcontext() as ctx:
        ctx.prec = 3
        assert to_minor_units(Decimal("123456.78"), "USD") == 12345678
        assert to_minor_units("123456.78", "USD") == 12345678
    assert getcontext().prec == 28


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("1500.5", "JPY", "amount 1500.5 has more decimals than JPY allows (0)"),
        ("19.999", "USD", "amount 19.999 has more decimals than USD allows (2)"),
        (19.999, "USD", "amount 19.999 has more decimals than USD allows (2)"),
        ("1.2345", "KWD", "amount 1.2345 has more decimals than KWD allows (3)"),
        ("1e-999999", "USD", "amount 1E-999999 has more decimals than USD allows (2)"),
        ("19.99" + "0" * 60 + "1", "USD", "has more decimals than USD allows (2)"),
        (True, "USD", "amount is a boolean, not a number"),
        (False, "USD", "amount is a boolean, not a number"),
        (None, "USD", "amount is null, not a number"),
        (-1, "USD", "amount -1 is negative"),
        ("-0.01", "USD", "amount -0.01 is negative"),
        (Decimal("-5"), "USD", "amount -5 is negative"),
        ("NaN", "USD", "amount 'NaN' is not a number"),
        ("Infinity", "USD", "amount 'Infinity' is not a number"),
        (Decimal("NaN"), "USD", "amount NaN is not a finite number"),
        (float("inf"), "USD", "amount inf is not a finite number"),
        (float("nan"), "USD", "amount nan is not a finite number"),
        ("abc", "USD", "amount 'abc' is not a number"),
        ("", "USD", "amount '' is not a number"),
        ("$25.99", "USD", "amount '$25.99' is not a number"),
        ("1,299.00", "USD", "amount '1,299.00' is not a number"),
        ("1_000", "USD", "amount '1_000' is not a number"),
        ("25.99 USD", "USD", "amount '25.99 USD' is not a number"),
        ([1], "USD", "amount is an array, not a number"),
        ({"amount": 1}, "USD", "amount is an object, not a number"),
        ("10000000000000.01", "USD", "is too large (more than 10**15 minor units)"),
        (10**14, "USD", "amount 100000000000000 is too large (more than 10**15 minor units)"),
        ("1e999999", "USD", "amount 1E+999999 is too large (more than 10**15 minor units)"),
        ("19.99", "XYZ", "unknown currency 'XYZ' (not a current ISO 4217 code)"),
        ("19.99", "XAU", "currency 'XAU' has no minor unit, so no amount can be sent in it"),
    ],
)
def test_to_minor_units_rejects(amount: object, currency: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        to_minor_units(amount, currency)
    assert message in str(caught.value)


def test_amounts_converted_before_give_the_same_answer_however_they_are_written() -> None:
    """Decimal amounts are remembered by value per currency exponent: a price seen before, or
    the same value written another way, gives what converting it afresh gives, and an amount
    refused is refused again with the same reason; the table stays bounded."""
    import random

    from target_openai_capi.mapping import money

    def afresh(amount: Decimal, currency: str) -> int | str:
        try:
            return money.to_minor_units(str(amount), currency)  # (text: never remembered)
        except MappingError as e:
            return str(e).replace(repr(str(amount)), repr(amount))

    rng = random.Random(7)
    written = [
        "19.99", "19.990", "1999E-2", "0.5", "0.50", "5E-1", "-0", "0", "0.000", "10.005",
        "1500.5", "1500.0", "-1.00", "12.3456", "1E+14", "1E+21", "12345678901234.56",
    ]  # fmt: skip
    written += [f"{rng.randrange(0, 10**6)}.{rng.randrange(0, 1000):03d}" for _ in range(3_000)]
    money._KNOWN_MINOR[2].clear()
    for text in written * 2 + rng.sample(written, 500):
        for currency in ("USD", "JPY", "KWD"):
            amount = Decimal(text)
            try:
                got: int | str = to_minor_units(amount, currency)
            except MappingError as e:
                got = str(e)
            assert got == afresh(amount, currency), (text, currency)
    assert to_minor_units(Decimal("19.990"), "USD") == 1999
    assert 0 < len(money._KNOWN_MINOR[2]) <= money.KNOWN_AMOUNTS_KEPT
    # Zeros are equal however written, but 0E+25 has 26 integer digits: refused, even once
    # 0 is remembered.
    assert to_minor_units(Decimal("0"), "USD") == 0
    with pytest.raises(MappingError, match="too large"):
        to_minor_units(Decimal("0E+25"), "USD")


def test_field_name_is_in_the_message() -> None:
    with pytest.raises(MappingError) as caught:
        to_minor_units("1.001", "USD", field="contents[2].amount")
    assert str(caught.value) == "contents[2].amount 1.001 has more decimals than USD allows (2)"
    assert caught.value.field == "contents[2].amount"


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(MappingError) as caught:
        to_minor_units("y" * 500, "USD")
    message = str(caught.value)
    assert message.count("y") < 50  # the value cut short
    assert message.endswith(
        "(write it plainly, as 1299.99: no currency sign, no thousands separator)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2599, 2599),
        (0, 0),
        ("2599", 2599),
        (" 2599 ", 2599),
        (Decimal("2599"), 2599),
        (Decimal("2599.0"), 2599),
        ("2599.00", 2599),
        (2599.0, 2599),
        (Decimal("1E+3"), 1000),
        (10**15, 10**15),
    ],
)
def test_minor_units(value: object, expected: int) -> None:
    result = minor_units(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Decimal("25.99"),
            "amount_minor 25.99 is not a whole number of minor units "
            "(map major units such as 25.99 to `amount` instead)",
        ),
        ("25.5", "amount_minor 25.5 is not a whole number of minor units"),
        (25.5, "amount_minor 25.5 is not a whole number of minor units"),
        (-1, "amount_minor -1 is negative"),
        ("-100", "amount_minor '-100' is negative"),
        (True, "amount_minor is a boolean, not a number"),
        (None, "amount_minor is null, not a number"),
        ("ten", "amount_minor 'ten' is not a number"),
        ("NaN", "amount_minor 'NaN' is not a number"),
        (10**15 + 1, "amount_minor 1000000000000001 is too large"),
        ("1e999999", "amount_minor 1E+999999 is too large"),
    ],
)
def test_minor_units_rejects(value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        minor_units(value)
    assert message in str(caught.value)


# --- line items: each field read and checked, the item named in every reason -----------------


def _contents_of(items: object) -> object:
    from target_openai_capi.mapping.event import build_event
    from target_openai_capi.mapping.stream_mapping import compile_stream_mapping

    mapping = compile_stream_mapping(
        "orders",
        {
            "event_type": "order_created",
            "fields": {"id": "id", "timestamp_ms": "at", "currency": "cur", "contents": "items"},
        },
    )
    record = {"id": "o1", "at": 1_764_590_400_000, "cur": "USD", "items": items}
    try:
        event, _ = build_event(mapping, record, ["id"])
    except MappingError as exc:
        return str(exc)
    return event["data"]["contents"]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            [{"id": " sku-1 ", "name": "Tee", "quantity": 2, "amount": "19.99"}],
            [{"id": "sku-1", "name": "Tee", "quantity": 2, "amount": 1999}],
        ),
        ([{"id": 7, "quantity": Decimal("3")}], [{"id": "7", "quantity": 3}]),
        ([{"id": Decimal("7.0")}], [{"id": "7"}]),
        # Every item field is optional: an empty text is no value, never the event's end.
        ([{"id": "a"}, {"id": "   "}], [{"id": "a"}, {}]),
        ([{"id": "a", "name": "", "group_id": " ", "content_type": ""}], [{"id": "a"}]),
        (
            [{"id": "a", "variant_dict": {"size": " ", "color": "red"}}],
            [{"id": "a", "variant_dict": {"color": "red"}}],
        ),
        ([{"id": "a", "variant_dict": {"size": ""}}], [{"id": "a"}]),
        ([{"id": True}], "contents[0].id must be a string or a number, not a boolean"),
        (
            [{"content_type": ["x"]}],
            "contents[0].content_type must be a string or a number, not an array",
        ),
        ([{"quantity": -1}], "contents[0].quantity -1 is negative"),
        (
            [{"quantity": 10**16}],
            "contents[0].quantity 10000000000000000 is too large (more than 10**15 items)",
        ),
        ([{"quantity": Decimal("1.5")}], "contents[0].quantity 1.5 is not a whole number of items"),
        ([{"quantity": 0}], [{"quantity": 0}]),
        ([{"quantity": True}], "contents[0].quantity is a boolean, not a number"),
        ([{"quantity": "2"}], [{"quantity": 2}]),
        ([{"amount": "-1"}], "contents[0].amount -1 is negative"),
    ],
)
def test_line_items_are_read_field_by_field(items: object, expected: object) -> None:
    assert _contents_of(items) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [
        (2599, "usd", Decimal("25.99")),
        (50000, "ISK", Decimal("500")),
        (5000, "mga", Decimal("5000")),
        (1234, "KWD", Decimal("1.234")),
        ("500", "jpy", Decimal("500")),
        (None, "usd", None),
    ],
)
def test_stripe_amounts_in_major_units(amount, currency, major):
    assert stripe_amount(amount, currency) == major


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (25.5, "usd"),
        (100, None),
        (100, "xyz"),
        ("1e30", "usd"),  # (its % 1 raised InvalidOperation in decimal's default context)
        (Decimal("1E-999999999"), "usd"),  # (not a whole number: it was read as 0)
        (1000, "IQD"),  # three decimals in ISO, none Stripe charges in: its units unknown
    ],
)
def test_a_stripe_amount_that_cannot_be_read_is_a_mapping_error(amount, currency):
    with pytest.raises(MappingError):
        stripe_amount(amount, currency)


def test_a_stripe_isk_amount_of_a_fraction_of_a_krona_says_so() -> None:
    """ISK 55 in Stripe's units is 0.55 krónur, which Stripe never charges: the reason quoted
    0.55, a value the record never held ("amount 0.55 has more decimals than ISK allows")."""
    with pytest.raises(MappingError) as caught:
        stripe_amount(55, "isk")
    assert str(caught.value) == (
        "a Stripe ISK amount counts hundredths of whole krónur, so is a multiple of 100, not 55"
    )


@pytest.mark.parametrize(
    ("value", "field", "hint"),
    [
        ("$2599", "amount_minor", "(write it as a whole number, as 129999: no currency sign, "),
        ("2 pcs", "contents[0].quantity", "(write it as a whole number, as 2: no unit, "),
        ("1,000", "contents[3].amount_minor", "(write it as a whole number, as 129999: "),
        ("$12", "contents[0].amount", "(write it plainly, as 1299.99: no currency sign, "),
    ],
)
def test_a_number_that_is_none_is_told_how_its_field_writes_one(value, field, hint) -> None:
    """A quantity or an amount_minor is a whole number: the hint for amounts (1299.99) led the
    user to a second rejection ("is not a whole number")."""
    unit = "items" if field.endswith("quantity") else "minor units"
    with pytest.raises(MappingError) as caught:
        _ = (
            to_minor_units(value, "USD", field)
            if field.endswith("].amount")
            else minor_units(value, field, unit)
        )
    assert hint in str(caught.value)
