"""User identifiers: normalise as OpenAI documents, hash what must be hashed, name as the API does.

Rules (OpenAI's Conversions API page, newest version; the README's user identifiers table):
- email: trimmed and lowercased; must hold one "@" with text on both sides and no spaces. Hashed.
- phone: whitespace, parentheses, periods and hyphens removed, then a leading "+" and any leading
  zeroes: "+1 (415) 555-2671" and "001 415 555 2671" -> "14155552671"; 8 to 15 digits, the country
  calling code kept. A number written without "+" or "00" is read as starting with its country
  code, unless `default_phone_region` is set: then it is a national number of that region
  (libphonenumber adds the country code and drops a trunk prefix: "(415) 555-2671", US ->
  "14155552671"). Hashed.
- external_id: trimmed, case and every other character kept (a whole number is written without
  decimals). Hashed.
- first_name, last_name: lowercased, every whitespace and ASCII punctuation character removed,
  non-ASCII kept, no accent stripping ("Mary Jane" -> "maryjane", "O'Connor" -> "oconnor",
  "José" -> "josé"; NFC first, so a decomposed "é" hashes like the composed one). Hashed.
- city, state (sent as `regions`): raw text, trimmed (the API lowercases and cuts at 128).
- zip: raw, trimmed; letters, digits, spaces or hyphens, at most 32 characters.
- country: a two-letter ISO 3166-1 code, sent in upper case ("us" -> "US"; "UK" is read as "GB").
- obref (the pixel's `__obref` cookie, only with the user's consent), user_agent: raw, non-blank.
- android_advertising_id: a raw GAID (a UUID); the all-zero id means "limited" and is left out.
- ip_address: a valid IPv4 / IPv6 address in its compressed form (from an X-Forwarded-For list
  the first address), raw.
- A hashed field whose value already is a SHA-256 hex digest is sent as is, lowercased (an
  external id only when it is lowercase hex: its case is kept, and an id may itself be hex).
- Null, "" and blank values are skipped. A value that fails its rule never costs the event: it is
  left out and a note names the field and the rule, never the value.
- A field may map to one value or a list of them (several emails): the plural style sends up to
  three distinct values as a list (the API uses the first three); the singular style, one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers

# Friendly names a stream's `fields` may map to user identifiers.
USER_FIELDS: tuple[str, ...] = (
    "email",
    "phone",
    "external_id",
    "first_name",
    "last_name",
    "city",
    "state",
    "zip",
    "country",
    "obref",
    "android_advertising_id",
    "ip_address",
    "user_agent",
    "date_of_birth",
)

# THE one place with wire names. Only names an official version of OpenAI's page had are sent: a
# friendly name missing from a style's dict is not sent in that style (a start-up warning says so).
USER_FIELD_STYLES: dict[str, dict[str, str]] = {
    # The newest official user object: lists of hashes, raw lists of geography.
    "plural": {
        "email": "emails_sha256",
        "phone": "phone_numbers_sha256",
        "external_id": "external_ids_sha256",
        "first_name": "first_names_sha256",
        "last_name": "last_names_sha256",
        "city": "cities",
        "state": "regions",
        "zip": "postal_codes",
        "country": "countries",
        "obref": "obref",
        "android_advertising_id": "android_advertising_id",
        "ip_address": "ip_address",
        "user_agent": "user_agent",
    },
    # The earlier official shape (mid-2026), which had no phone, names or region.
    "singular": {
        "email": "email_sha256",
        "external_id": "external_id_sha256",
        "city": "city",
        "zip": "zip_code",
        "country": "country",
        "obref": "obref",
        "ip_address": "ip_address",
        "user_agent": "user_agent",
    },
}
DEFAULT_USER_FIELD_STYLE = "plural"

# The API uses the first three valid, distinct values of a list and ignores the rest.
MAX_LIST_VALUES = 3

# Normalised, then SHA-256; never sent raw.
HASHED_FIELDS = frozenset({"email", "phone", "external_id", "first_name", "last_name"})
# One string in every style (the others are lists in the plural style).
_ONE_VALUE_FIELDS = frozenset({"obref", "android_advertising_id", "ip_address", "user_agent"})

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SPACE = re.compile(r"\s")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_POSTAL_CODE = re.compile(r"[A-Za-z0-9 -]{1,32}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ALL_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)
PHONE_DIGITS = (8, 15)

# ISO 3166-1 alpha-2, officially assigned codes (249).
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
"""
_COUNTRIES = frozenset(_COUNTRY_CODES.split())
# Not ISO, but what people write for the United Kingdom.
_COUNTRY_ALIASES = {"UK": "GB"}


class _Rejected(Exception):
    """A value that fails its field's rule; `reason` never contains the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sha256_hex(normalised: str) -> str:
    """SHA-256 of a normalised value's UTF-8 bytes, as lowercase hex."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _text(value: object, reason: str) -> str:
    """A string value trimmed, or a whole number written without decimals."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        raise _Rejected(reason)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (Decimal, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        # A JSON number read as Decimal may look like 1.6505551234E+10: write it out in full.
        if number.is_finite() and number.adjusted() < 30:
            whole = number == number.to_integral_value()
            return str(int(number)) if whole else format(number, "f")
    raise _Rejected(reason)


def _string(value: object, reason: str) -> str:
    if not isinstance(value, str):
        raise _Rejected(reason)
    return value.strip()


def _email(value: object, region: str | None) -> str:
    text = _text(value, "is not an email address").lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain or _SPACE.search(text):
        raise _Rejected("is not an email address")
    return text


_PHONE_RULE = "is not a phone number of 8 to 15 digits with its country code"


def _phone(value: object, region: str | None) -> str:
    compact = _PHONE_SEPARATORS.sub("", _text(value, _PHONE_RULE))
    if region is None or compact.startswith(("+", "00")):
        digits = compact.removeprefix("+").lstrip("0")  # the documented rule, to the letter
    else:
        digits = _national_number_digits(compact, region)
    low, high = PHONE_DIGITS
    if not (digits.isascii() and digits.isdigit() and low <= len(digits) <= high):
        raise _Rejected(_PHONE_RULE)
    return digits


# libphonenumber's parse costs ~20-40 us a number and returning customers repeat their numbers:
# results are cached, in a bounded cache so memory stays flat.
@lru_cache(maxsize=16_384)
def _national_number_digits(compact: str, region: str) -> str:
    """A number written in the national form of `region`, as country code + national digits."""
    if len(compact) > 250:  # libphonenumber refuses longer input (TOO_LONG)
        raise _Rejected(_PHONE_RULE)
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        raise _Rejected(f"is not a phone number of default_phone_region {region}") from None
    if not phonenumbers.is_possible_number(number):
        raise _Rejected(f"is not a phone number of default_phone_region {region}")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164[1:]


def _person_name(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise _Rejected("is not text")
    lowered = unicodedata.normalize("NFC", value).lower().translate(_ASCII_PUNCTUATION)
    return "".join(lowered.split())


def _place(value: object, region: str | None) -> str:
    return _string(value, "is not text")


def _postal_code(value: object, region: str | None) -> str:
    reason = "is not a postal code (letters, digits, spaces or hyphens, at most 32 characters)"
    text = _text(value, reason)
    if not _POSTAL_CODE.fullmatch(text):
        raise _Rejected(reason)
    return text


def _country(value: object, region: str | None) -> str:
    code = _string(value, "is not a two-letter ISO 3166-1 country code").upper()
    code = _COUNTRY_ALIASES.get(code, code)
    if code not in _COUNTRIES:
        raise _Rejected("is not a two-letter ISO 3166-1 country code")
    return code


def _external_id(value: object, region: str | None) -> str:
    return _text(value, "is not text or a number")


def _obref(value: object, region: str | None) -> str:
    return _string(value, "is not text (the pixel's __obref cookie)")


def _advertising_id(value: object, region: str | None) -> str:
    text = _string(value, "is not a Google advertising id (a UUID)")
    if not _UUID.fullmatch(text):
        raise _Rejected("is not a Google advertising id (a UUID)")
    if text == _ALL_ZERO_UUID:
        raise _Rejected("is the all-zero id of a user who limited ad tracking")
    return text


def _ip_address(value: object, region: str | None) -> str:
    first = _string(value, "is not an IPv4 or IPv6 address").split(",", 1)[0].strip()
    try:  # X-Forwarded-For: the client comes first
        address = ipaddress.ip_address(first)
    except ValueError:
        raise _Rejected("is not an IPv4 or IPv6 address") from None
    if getattr(address, "scope_id", None):  # fe80::1%eth0: a link-local zone, not a client
        raise _Rejected("is an IPv6 address with a zone id (%...), not a client address")
    return str(address)


def _user_agent(value: object, region: str | None) -> str:
    return _string(value, "is not text")


_NORMALISERS: dict[str, Callable[[object, str | None], str]] = {
    "email": _email,
    "phone": _phone,
    "external_id": _external_id,
    "first_name": _person_name,
    "last_name": _person_name,
    "city": _place,
    "state": _place,
    "zip": _postal_code,
    "country": _country,
    "obref": _obref,
    "android_advertising_id": _advertising_id,
    "ip_address": _ip_address,
    "user_agent": _user_agent,
}
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_digest(name: str, text: str) -> bool:
    """A value that already is a SHA-256 digest: 64 hex characters. For external ids (whose
    case is kept and which may be hex themselves) only lowercase ones, as hashes are written."""
    if not _SHA256_HEX.fullmatch(text):
        return False
    return name != "external_id" or text == text.lower()


def _normalise(name: str, value: object, region: str | None) -> str:
    """The value to send for one field: raw, passed-through digest, or hash of the normal form."""
    if name not in HASHED_FIELDS:
        return _NORMALISERS[name](value, region)
    if isinstance(value, str) and _is_digest(name, value.strip()):
        return value.strip().lower()
    normal = _NORMALISERS[name](value, region)
    if not normal:
        raise _Rejected("is empty once normalised")
    return sha256_hex(normal)


# Normalising and hashing a value costs a few µs, and values repeat across records (cities,
# countries, a returning customer's email and name): results for text values are cached, in a
# bounded cache so memory stays flat. Only str keys: 1, 1.0 and True would share a cache entry.
USER_VALUE_CACHE_SIZE = 32_768


@lru_cache(maxsize=USER_VALUE_CACHE_SIZE)
def _normalise_text(name: str, text: str, region: str | None) -> tuple[str, str | None]:
    """(value to send, None) or ("", reason): _normalise of a text value, cached."""
    try:
        return _normalise(name, text, region), None
    except _Rejected as e:
        return "", e.reason


# Longer text is normalised but not cached: the cache is bounded by entries, not bytes.
MAX_CACHED_TEXT = 256


def _normalised(name: str, value: object, region: str | None) -> str:
    if type(value) is str and len(value) <= MAX_CACHED_TEXT:
        result, reason = _normalise_text(name, value, region)
        if reason is not None:
            raise _Rejected(reason)
        return result
    return _normalise(name, value, region)


def unsendable_user_field(name: str, style: str) -> str:
    """Why a mapped friendly field is not sent in this style (for the start-up warning)."""
    if not any(name in wire for wire in USER_FIELD_STYLES.values()):
        return f"no version of OpenAI's user object has a field for {name}"
    return (
        f"the {style} user_field_style has no field for it (OpenAI's earlier user object); "
        "the plural style, OpenAI's current one, sends it"
    )


def check_user_settings(style: str, default_phone_region: str | None) -> str | None:
    """The region in upper case; raises ValueError naming a setting that is not usable."""
    if style not in USER_FIELD_STYLES:
        raise ValueError(
            f"unknown user field style {style!r}; expected one of {list(USER_FIELD_STYLES)}"
        )
    region = default_phone_region.upper() if default_phone_region else None
    if region is not None and region not in _REGIONS:
        raise ValueError(
            f"default_phone_region {default_phone_region!r} is not a known region "
            "(use an ISO 3166-1 alpha-2 code such as 'US')"
        )
    return region


def build_user(
    values: Mapping[str, object],
    style: str = DEFAULT_USER_FIELD_STYLE,
    default_phone_region: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build the event's `user` object from friendly-name values; return it and notes."""
    region = check_user_settings(style, default_phone_region)
    wire = USER_FIELD_STYLES[style]
    plural = style == "plural"
    user: dict[str, Any] = {}
    notes: list[str] = []
    for name, raw in values.items():
        if name not in USER_FIELDS:
            raise ValueError(
                f"unknown user field {name!r}; expected one of {', '.join(USER_FIELDS)}"
            )
        key = wire.get(name)
        if key is None or _blank(raw):
            continue
        many = plural and name not in _ONE_VALUE_FIELDS
        if not isinstance(raw, (list, tuple)):  # one value: the common case, kept short
            try:
                result = _normalised(name, raw, region)
            except _Rejected as e:
                notes.append(f"{name} {e.reason}; sent without it")
                continue
            user[key] = [result] if many else result
            continue
        sent = _list_values(name, [v for v in raw if not _blank(v)], region, many, notes)
        if sent:
            user[key] = sent if many else sent[0]
    return user, notes


def _list_values(
    name: str, items: list[object], region: str | None, many: bool, notes: list[str]
) -> list[str]:
    """The distinct values to send from a list (three at most, one when not `many`).

    Values past the ones sent are not normalised: a list of 100,000 emails costs three.
    """
    limit = MAX_LIST_VALUES if many else 1
    sent: list[str] = []
    seen: set[str] = set()
    reasons: list[str] = []
    for position, item in enumerate(items, 1):
        if len(sent) == limit:
            what = "one" if limit == 1 else f"the first {limit} distinct ones"
            if limit > 1:
                why = "the API uses at most three"
            elif name in _ONE_VALUE_FIELDS:
                why = "the field takes one value"
            else:
                why = "the singular user field style"
            notes.append(f"{name} has {len(items)} values; sent {what} ({why})")
            break
        try:
            result = _normalised(name, item, region)
        except _Rejected as e:
            reasons.append(e.reason)
            if len(items) > 1:
                notes.append(f"{name} value {position} of {len(items)} {e.reason}; sent without it")
            continue
        key = result.casefold()  # the API lowercases raw geography: "Paris" and "PARIS" are one
        if key not in seen:
            seen.add(key)
            sent.append(result)
    if not sent and len(items) == 1 and reasons:
        notes.append(f"{name} {reasons[0]}; sent without it")
    return sent
