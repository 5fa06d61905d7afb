"""The rules both benchmark floors (plain_loop.py, raw_floor.py) apply to an order's values:
what the target does to them (the official normalisation of identifiers, exact money, the API's
time window), written plainly. A value an identifier rule refuses is left out (None); a record
the API would refuse raises Skip, and the floor drops it, as the target rejects it."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import string
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers
from iso4217 import Currency

# The target's table of assigned ISO 3166-1 codes, the preset's url_param() itself and the cut
# of source_url (pure, and what the job is: the floors need not write the same parsing of a URL
# again).
from target_openai_capi.mapping.event import (
    without_query_and_credentials as without_query_and_credentials,
)
from target_openai_capi.mapping.expression_functions import url_param as url_param
from target_openai_capi.mapping.user_values import COUNTRIES, _written_without_plus

# ISO 4217 exponents, from the same well-kept table the target uses (iso4217).
POWER = {c.code: 10**c.exponent for c in Currency if c.exponent is not None}
WEEK_MS = 7 * 86_400_000
MAX_MINOR = 10**15  # the target's bound on amounts and quantities
MAX_ID = 256
AHEAD_MS = 10 * 60_000
# The target's default_phone_region (run.py's config sets US); None: numbers are read as written.
PHONE_REGION: str | None = "US"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Skip(Exception):
    """A record the target would not send (it reports why); the plain loop drops it."""


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_SPACE = re.compile(r"\s")
_POSTAL_CODE = re.compile(r"[A-Za-z0-9 -]{1,32}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # ASCII digits only (not \d)
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+\S*")


# Values repeat (a returning customer's email and name, cities, countries): normalising and
# hashing each distinct one once is the least work, as the target's bounded cache does.
CACHE = 32_768


def sha(text: str) -> str | None:
    """SHA-256 of the UTF-8 text; None for text that is not valid Unicode (a lone surrogate)."""
    try:
        return hashlib.sha256(text.encode()).hexdigest()
    except UnicodeEncodeError:
        return None


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _digest(value: str | None) -> str | None:
    """A value that already is a SHA-256 digest (64 hex characters), lowercased: the target
    sends it as it is instead of hashing it again."""
    text = (value or "").strip()
    return text.lower() if len(text) == 64 and _SHA256_HEX.fullmatch(text) else None


# --- identifiers: the official normalisation (README, user identifiers); None leaves one out ---


@lru_cache(maxsize=CACHE)
def email_hash(email: str | None) -> str | None:
    if digest := _digest(email):
        return digest
    text = (email or "").strip().lower()
    local, at, domain = text.partition("@")
    if not local or not at or not domain or "@" in domain or _SPACE.search(text):
        return None
    return sha(text)


@lru_cache(maxsize=1024)
def national_digits(compact: str) -> str | None:
    """A number written without its country code, read as one of PHONE_REGION (libphonenumber;
    the region is set before the first number is read, and not changed).
    Ten digits with an area code (2-9 first) are what libphonenumber makes of them in the US:
    1 and the ten (tests/test_benchmark_floors.py compares them), at a hundredth of its cost."""
    ten = len(compact) == 10 and compact.isascii() and compact.isdigit() and compact[0] > "1"
    if PHONE_REGION == "US" and ten:
        return "1" + compact
    try:
        parsed = phonenumbers.parse(compact, PHONE_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    # (the country code written without its "+": the target's rule, user_values.py)
    whole = _written_without_plus(compact, PHONE_REGION, parsed)
    if whole is not None:
        return phonenumbers.format_number(whole, phonenumbers.PhoneNumberFormat.E164)[1:]
    if parsed is None:
        return None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:  # (not "local only")
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


@lru_cache(maxsize=CACHE)
def phone_hash(phone: str | None) -> str | None:
    if digest := _digest(phone):
        return digest
    compact = _PHONE_SEPARATORS.sub("", (phone or "").strip())
    if not compact:
        return None
    if "(" in phone and compact.startswith(("+", "00")):  # "+44 (0)20 ...": the trunk 0
        cut = _PHONE_SEPARATORS.sub("", _TRUNK_ZERO.sub("", phone))
        if not cut.lstrip("+0").startswith(("39", "378", "379")):  # (Italy keeps its 0)
            compact = cut
    if PHONE_REGION is None or compact.startswith(("+", "00")):
        digits: str | None = compact.removeprefix("+").lstrip("0")
    else:
        digits = national_digits(compact) if len(compact) <= 250 else None
    if not digits or not (digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15):
        return None
    return sha(digits)


@lru_cache(maxsize=CACHE)
def name_hash(name: str | None) -> str | None:
    if not name:
        return None
    if digest := _digest(name):
        return digest
    normal = "".join(unicodedata.normalize("NFC", name).lower().translate(_NO_PUNCTUATION).split())
    return sha(normal) if normal else None


def place(text: str | None) -> str | None:
    """Raw text, trimmed; None for blank text or text that is not valid Unicode."""
    text = (text or "").strip()
    if not text or (not text.isascii() and sha(text) is None):
        return None
    return text


@lru_cache(maxsize=CACHE)
def id_hash(text: str | None) -> str | None:
    """An external id: trimmed, case kept, hashed (a lowercase digest is sent as it is)."""
    text = (text or "").strip()
    if text and text == text.lower() and _digest(text):
        return text
    return sha(text) if text else None


@lru_cache(maxsize=CACHE)
def postal_code(text: str | None) -> str | None:
    code = (text or "").strip()
    return code if _POSTAL_CODE.fullmatch(code) else None


def country(text: str | None) -> str | None:
    """An assigned ISO 3166-1 alpha-2 code (the target's table of them), "UK" read as GB."""
    code = (text or "").strip().upper()
    code = "GB" if code == "UK" else code
    return code if code in COUNTRIES else None


@lru_cache(maxsize=CACHE)
def ip_address(text: str | None) -> str | None:
    first = (text or "").split(",", 1)[0].strip()
    if not first or _IPV4.fullmatch(first):
        return first or None
    try:
        address = ipaddress.ip_address(first)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(address if mapped is None else mapped)


# --- the rest of the event ---------------------------------------------------------------------


def timestamp_ms(value: str | int | Decimal | None, now_ms: int) -> int:
    """An ISO 8601 date-time (naive is UTC) or epoch seconds, as epoch ms within the window."""
    if isinstance(value, str) and value.strip()[4:5] == "-":  # (the extended form only)
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Skip("timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        ms = (moment - EPOCH) // dt.timedelta(milliseconds=1)
    else:
        seconds = number(value.strip() if isinstance(value, str) else value)
        if seconds is None:
            raise Skip("timestamp")
        ms = int(seconds * 1000)  # (sub-ms digits truncated; times before 1970 are outside)
    if not now_ms - WEEK_MS <= ms <= now_ms + AHEAD_MS:
        raise Skip("outside the API's time window")
    return ms


def money(code: str | None, amount: Decimal | None) -> tuple[dict[str, Any], int | None]:
    """The event's data with its amount and currency (`||` already applied to the code), and
    the currency's power of ten for item amounts (None: no currency); raises Skip."""
    data: dict[str, Any] = {"type": "contents"}
    power = None
    if code:
        code = code.strip().upper()
        if code not in POWER:
            raise Skip("currency")
        power = POWER[code]
    if amount is not None:
        data["amount"] = item_amount(amount, power)
    if code:
        data["currency"] = code
    return data, power


def item_amount(amount: Decimal, power: int | None) -> int:
    """An amount in the event's currency (power: money's), in minor units; raises Skip."""
    if power is None:
        raise Skip("amount without a currency")
    return minor(amount, power)


def number(value: object) -> Decimal | None:
    """A finite number: an int, a Decimal, or a JSON-style numeric string; else None."""
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value.strip()):
            return None
        value = Decimal(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    result = Decimal(value)
    return result if result.is_finite() and result.adjusted() < 30 else None


def minor(amount: Decimal, power: int) -> int:
    """An exact amount in minor units; more decimals than the currency has, < 0 or more than
    10**15 minor units: no event."""
    if not amount.is_finite():
        raise Skip("amount")
    scaled = amount * power
    if scaled < 0 or scaled > MAX_MINOR or scaled != scaled.to_integral_value():
        raise Skip("amount")
    return int(scaled)


# --- fields of the event: the same in both floors ----------------------------------------------


def text(value: object) -> str | None:
    """A value the preset reads as text: a string, a whole number written out; None for what
    JMESPath's `||` passes over (null, false, "") or a value no text rule takes."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def first(*values: str | None) -> str | None:
    """JMESPath's `a || b || c` over text: the first that is not null or ""."""
    for value in values:
        if value:
            return value
    return None


def required_text(value: str | None, field: str) -> str | None:
    """A value as the target sends it: trimmed; text that is only spaces is an error."""
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise Skip(f"{field} is empty")
    return stripped


def optional_text(value: str | None) -> str | None:
    """A content item's text as the target sends it: trimmed; only spaces is no value."""
    return (value.strip() or None) if value is not None else None


def order_id(value: str | None) -> str:
    result = required_text(value, "id")
    if result is None or len(result) > MAX_ID:
        raise Skip("id")
    return result


def source_url(value: str | None) -> str | None:
    """The page URL without its query string and fragment, as the target sends it; only
    spaces is no value."""
    if value is None or not value.strip():
        return None
    url = value.strip()
    url = without_query_and_credentials(url)
    if not url or len(url) > 8192 or not URL.fullmatch(url):
        raise Skip("source_url")
    return url


def quantity(value: object) -> int | None:
    """A whole number of items (an int, or a number or numeric string with no fraction)."""
    if value is None:
        return None
    if type(value) is int:
        whole = value
    else:
        exact = number(value)
        if exact is None or exact != exact.to_integral_value():
            raise Skip("quantity")
        whole = int(exact)
    if not 0 <= whole <= MAX_MINOR:
        raise Skip("quantity")
    return whole


def is_true(value: object) -> bool:
    """JMESPath's truthiness (0 is true, as are every number and non-empty string)."""
    return not (value is None or value is False or value == "" or value == [] or value == {})
