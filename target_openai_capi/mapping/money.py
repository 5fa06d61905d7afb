"""Exact money: ISO 4217 currency codes and amounts in the currency's minor units.

Rules (they go to the README):
- Arithmetic is decimal and exact; nothing passes through binary floating point. A float input
  is read as its shortest repr (`19.99` stays 19.99), never as its binary expansion.
- A numeric string is a JSON-style number after trimming: optional sign, digits, optional
  decimals, optional exponent (" 25.99 ", "1e2", "+3.50" are accepted). Thousands separators,
  currency symbols, underscores, "NaN" and "Infinity" are not: they are ambiguous or not money.
- More decimals than the currency allows is an error, never a rounding: JPY 1500.5 is rejected,
  USD "10.500" is 1050 (trailing zeros are not extra precision).
- Negative amounts, booleans, null and more than 10**15 minor units are errors.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow

from target_openai_capi.contract.currencies import CURRENCY_EXPONENTS, WITHOUT_MINOR_UNIT
from target_openai_capi.mapping.errors import MappingError, quote, type_name
from target_openai_capi.mapping.user_values import text_of_no_value

# Ten quadrillion minor units (ten trillion dollars) is no real order: a bigger value is a unit
# mistake (cents mapped as dollars twice, a timestamp mapped as an amount), not a sale.
MAX_MINOR_UNITS = 10**15

# Currencies without a minor unit (XAU, XDR, ...) cannot carry an amount and count as unknown.
_EXPONENTS = CURRENCY_EXPONENTS
_POWERS: dict[int, int] = {e: 10**e for e in set(_EXPONENTS.values())}

# A private context so that nothing another module does to decimal's global context changes
# results here; Inexact is trapped so that a value with more digits than `prec` is an error
# instead of a silent rounding.
_CTX = Context(prec=60, traps=[InvalidOperation, Inexact, Overflow])

# Above this many integer digits a value is absurd for any currency; checked before scaling so
# that "1e999999" costs nothing.
_MAX_ADJUSTED = 20

# (one way only to split a run of digits: `\d+\.?\d*` tried every split of one that failed to
# match, 20,000 digits and an "x" took 8 s)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# Prices repeat (a shop's catalogue, shipping fees): the minor units of each Decimal amount
# converted lately, per currency exponent (a Decimal's hash is cached on it; its value, not how
# it is written, decides the result). Bounded: a full table is emptied.
_KNOWN_MINOR: dict[int, dict[Decimal, int]] = {exponent: {} for exponent in _POWERS}
KNOWN_AMOUNTS_KEPT = 4096


# Where Stripe's amounts are not in ISO 4217 minor units (docs.stripe.com/currencies): its
# zero-decimal currencies (MGA among them, two decimals in ISO) and three-decimal ones; ISK,
# which ISO gives no decimals, Stripe still counts in hundredths. Any other currency: two.
_STRIPE_ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF"
STRIPE_DECIMALS = {
    **dict.fromkeys(_STRIPE_ZERO_DECIMAL.split(" "), 0),
    **dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 3),
}


def stripe_amount(amount: object, currency: object) -> Decimal | None:
    """A Stripe amount (`unit_amount`, `amount`: Stripe's own minor units) in major units, exact:
    ISK 500 is 5 krónur, MGA 5000 is 5000 ariary, USD 2599 is 25.99. Null stays null."""
    if amount is None:
        return None
    code = currency_code(currency)
    decimals = STRIPE_DECIMALS.get(code, 2)
    if code not in STRIPE_DECIMALS and code != "ISK" and _EXPONENTS[code] != 2:
        # (IQD, LYD, CLF...: no currency Stripe charges in; its units there are not known)
        raise MappingError(f"Stripe's minor unit of {code} is not known", "amount")
    units = Decimal(parse_number(amount, "amount"))
    if units.adjusted() > _MAX_ADJUSTED:
        raise MappingError(f"amount {quote(amount)} is too large to be money", "amount")
    if units != units.to_integral_value():
        raise MappingError(f"a Stripe amount is a whole number, not {quote(amount)}", "amount")
    if code == "ISK" and units % 100:  # (hundredths of a currency without decimals)
        raise MappingError(
            f"a Stripe ISK amount counts hundredths of whole krónur, so is a multiple of 100, "
            f"not {quote(amount)}",
            "amount",
        )
    return units.scaleb(-decimals, _CTX)


def money_value(value: object) -> object:
    """An amount, amount_minor, currency or quantity as given, None for a text an export writes
    for a missing value ("NULL", "N/A", "\\N", a blank): a row without money has none, as null
    is none (event.py, assembler.py and stripe_amount() read money through it). NaN is no such
    text: an amount of NaN is a sum made of nothing, and stays a rejection (text_of_no_value)."""
    if type(value) is str and text_of_no_value(value):
        return None
    return value


def currency_code(value: object) -> str:
    """Return the ISO 4217 code for a currency value ("usd", " USD " -> "USD")."""
    if not isinstance(value, str):
        raise MappingError(f"currency is {type_name(value)}, not an ISO 4217 code", "currency")
    code = value.strip().upper()
    if code in _EXPONENTS:
        return code
    if code in WITHOUT_MINOR_UNIT:  # (gold, SDRs, XXX: ISO 4217 codes, though not money's)
        raise MappingError(
            f"currency {quote(value.strip())} has no minor unit, so no amount can be sent in it",
            "currency",
        )
    raise MappingError(
        f"unknown currency {quote(value.strip())} (not a current ISO 4217 code)", "currency"
    )


def currency_exponent(code: str) -> int:
    """Return the currency's ISO 4217 exponent (USD 2, JPY 0, KWD 3)."""
    exponent = _EXPONENTS.get(code)
    if exponent is None:
        exponent = _EXPONENTS[currency_code(code)]
    return exponent


# What an amount in text must look like (the value itself may be hidden in logs), and a
# count or an amount in minor units (amount_minor, quantity: whole numbers).
_PLAIN_NUMBER = " (write it plainly, as 1299.99: no currency sign, no thousands separator)"
_WHOLE_NUMBER = " (write it as a whole number, as {}: no {}, no thousands separator)"


def _number_hint(field: str) -> str:
    if field.startswith("timestamp"):
        return ""
    if field.endswith("quantity"):
        return _WHOLE_NUMBER.format(2, "unit")
    if field.endswith("amount_minor"):
        return _WHOLE_NUMBER.format(129999, "currency sign")
    return _PLAIN_NUMBER


def parse_number(value: object, field: str) -> Decimal | int:
    """Read a number exactly: int stays int; Decimal, float and numeric strings become Decimal."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[return-value]
    if kind is Decimal:
        number: Decimal = value  # type: ignore[assignment]
    elif kind is float:
        number = Decimal(repr(value))
    elif isinstance(value, bool) or value is None:
        raise MappingError(f"{field} is {type_name(value)}, not a number", field)
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            raise MappingError(
                f"{field} {quote(value)} is not a number{_number_hint(field)}", field
            )
        number = Decimal(text)
    elif isinstance(value, int):  # an int subclass other than bool
        return int(value)
    elif isinstance(value, (Decimal, float)):
        number = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(value)
    else:
        raise MappingError(f"{field} is {type_name(value)}, not a number", field)
    if not number.is_finite():
        raise MappingError(f"{field} {quote(value)} is not a finite number", field)
    return number


def _check_range(minor: int, shown: object, field: str, unit: str = "minor units") -> int:
    """Reject negative and absurd amounts; return the amount."""
    if minor < 0:
        raise MappingError(f"{field} {quote(shown)} is negative", field)
    if minor > MAX_MINOR_UNITS:
        raise MappingError(f"{field} {quote(shown)} is too large (more than 10**15 {unit})", field)
    return minor


def to_minor_units(amount: object, currency: str, field: str = "amount") -> int:
    """Convert an amount in major units (25.99) to exact integer minor units (2599)."""
    exponent = currency_exponent(currency)
    # (Equal values give one answer within _MAX_ADJUSTED; past it, 0E+25 is refused and 0 not.)
    if type(amount) is Decimal and amount.is_finite() and amount.adjusted() <= _MAX_ADJUSTED:
        known = _KNOWN_MINOR[exponent]
        minor = known.get(amount)
        if minor is None:
            minor = _decimal_to_minor_units(amount, exponent, currency, field)
            if len(known) >= KNOWN_AMOUNTS_KEPT:
                known.clear()
            known[amount] = minor
        return minor
    number = parse_number(amount, field)
    if type(number) is int:
        return _check_range(number * _POWERS[exponent], amount, field)
    assert isinstance(number, Decimal)  # for mypy: parse_number returns int or Decimal
    return _decimal_to_minor_units(number, exponent, currency, field)


def _decimal_to_minor_units(number: Decimal, exponent: int, currency: str, field: str) -> int:
    """A finite Decimal amount in exact minor units of a currency of `exponent` decimals."""
    if number < 0:
        raise MappingError(f"{field} {quote(number)} is negative", field)
    if number.adjusted() > _MAX_ADJUSTED:
        raise MappingError(
            f"{field} {quote(number)} is too large (more than 10**15 minor units)", field
        )
    try:
        scaled = number.scaleb(exponent, _CTX)
    except Inexact:  # more significant digits than the context holds: certainly too precise
        scaled = None
    if scaled is None or scaled != scaled.to_integral_value(context=_CTX):
        code = currency_code(currency)
        raise MappingError(
            f"{field} {quote(number)} has more decimals than {code} allows ({exponent})", field
        )
    return _check_range(int(scaled), number, field)


def minor_units(value: object, field: str = "amount_minor", unit: str = "minor units") -> int:
    """Read an amount that already is in minor units (Stripe's 2599) as an int; with `unit`
    "items", a count (an item's quantity), said so in the reasons."""
    if type(value) is int:
        return _check_range(value, value, field, unit)
    number = parse_number(value, field)
    if isinstance(number, Decimal):
        if number.adjusted() > _MAX_ADJUSTED:
            raise MappingError(
                f"{field} {quote(number)} is too large (more than 10**15 {unit})", field
            )
        if number != number.to_integral_value(context=_CTX):
            hint = (
                " (map major units such as 25.99 to `amount` instead)"
                if unit == "minor units"
                else ""
            )
            raise MappingError(
                f"{field} {quote(number)} is not a whole number of {unit}{hint}", field
            )
        number = int(number)
    return _check_range(number, value, field, unit)
