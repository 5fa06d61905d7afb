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
from urllib.parse import unquote_plus

import phonenumbers
from iso4217 import Currency

# ISO 4217 exponents, from the same well-kept table the target uses (iso4217).
POWER = {c.code: 10**c.exponent for c in Currency if c.exponent is not None}
WEEK_MS = 7 * 86_400_000
AHEAD_MS = 10 * 60_000
# The target's default_phone_region (run.py's config sets US); None: numbers are read as written.
PHONE_REGION: str | None = "US"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Skip(Exception):
    """A record the target would not send (it reports why); the plain loop drops it."""


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_SPACE = re.compile(r"\s")
_POSTAL_CODE = re.compile(r"[A-Za-z0-9 -]{1,32}")
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+\S*")


# Values repeat (a returning customer's email and name, cities, countries): normalising and
# hashing each distinct one once is the least work, as the target's bounded cache does.
CACHE = 32_768


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- identifiers: the official normalisation (README, user identifiers); None leaves one out ---


@lru_cache(maxsize=CACHE)
def email_hash(email: str | None) -> str | None:
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
    if PHONE_REGION == "US" and len(compact) == 10 and compact.isdigit() and compact[0] > "1":
        return "1" + compact
    try:
        number = phonenumbers.parse(compact, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


@lru_cache(maxsize=CACHE)
def phone_hash(phone: str | None) -> str | None:
    compact = _PHONE_SEPARATORS.sub("", (phone or "").strip())
    if not compact:
        return None
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
    normal = "".join(unicodedata.normalize("NFC", name).lower().translate(_NO_PUNCTUATION).split())
    return sha(normal) if normal else None


def place(text: str | None) -> str | None:
    return (text or "").strip() or None


@lru_cache(maxsize=CACHE)
def id_hash(text: str | None) -> str | None:
    """An external id: trimmed, case kept, hashed."""
    text = (text or "").strip()
    return sha(text) if text else None


@lru_cache(maxsize=CACHE)
def postal_code(text: str | None) -> str | None:
    code = (text or "").strip()
    return code if _POSTAL_CODE.fullmatch(code) else None


def country(text: str | None) -> str | None:
    code = (text or "").strip().upper()
    code = "GB" if code == "UK" else code
    return code if len(code) == 2 and code.isascii() and code.isalpha() else None


@lru_cache(maxsize=CACHE)
def ip_address(text: str | None) -> str | None:
    first = (text or "").split(",", 1)[0].strip()
    if not first or _IPV4.fullmatch(first):
        return first or None
    try:
        address = ipaddress.ip_address(first)
    except ValueError:
        return None
    return None if getattr(address, "scope_id", None) else str(address)


# --- the rest of the event ---------------------------------------------------------------------


def url_param(url: str | None, name: str) -> str | None:
    """The first non-empty value of `name` in the URL's query, percent-decoded."""
    if not url:
        return None
    query = url.partition("#")[0].partition("?")[2]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name and value:
            return unquote_plus(value) if ("%" in value or "+" in value) else value
    return None


def timestamp_ms(text: str | None, now_ms: int) -> int:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise Skip("timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    ms = (moment - EPOCH) // dt.timedelta(milliseconds=1)
    if not now_ms - WEEK_MS <= ms <= now_ms + AHEAD_MS:
        raise Skip("outside the API's time window")
    return ms


def minor(amount: Decimal, power: int) -> int:
    """An exact amount in minor units; more decimals than the currency has, or < 0: no event."""
    scaled = amount * power
    if scaled < 0 or scaled != scaled.to_integral_value():
        raise Skip("amount")
    return int(scaled)
