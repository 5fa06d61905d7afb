"""User identifiers: normalise, then SHA-256 (lowercase hex), under the configured wire names.

Rules (they go to the README):
- email: trimmed and lowercased; must hold exactly one "@" with text on both sides and no spaces.
- phone: parsed with `phonenumbers` (a number without "+" uses `default_phone_region`), must be a
  possible number, then E.164 digits without the "+" ("+1 (650) 555-1234" -> "16505551234"); an
  extension is dropped.
- first_name, last_name, city, state: trimmed, lowercased, inner whitespace collapsed to one space.
- zip: lowercased, all spaces removed; a US ZIP+4 ("94103-1234") keeps its first five digits;
  other hyphens stay ("100-0001"). A zip stored as a number keeps no leading zero: store it as text.
- country: ISO 3166-1 alpha-2 in any case, sent lowercased ("US" -> "us"; "UK" is read as "gb");
  names ("United States") and alpha-3 codes are not accepted.
- date_of_birth: an ISO date ("1990-05-17", a date-time's date part, or a date object) ->
  "19900517".
- external_id: trimmed text (whole numbers written without decimals), case kept, then hashed.
- Any hashed field whose value already is a SHA-256 hex digest (64 hex characters) is sent as
  is, lowercased, not hashed again.
- ip_address (a valid IPv4 / IPv6 address, sent in its compressed form; from an
  X-Forwarded-For list the first address) and user_agent (non-empty text) are sent raw.
- Null, "" and blank values are skipped. A value that fails its rule is not fatal: the field is
  left out and a note says why, without the value.
- singular style: one string per field (from a list value, the first value that normalises);
  plural style: an array of distinct hashes per hashed field. ip_address and user_agent are one
  string in both styles.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
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
    "date_of_birth",
    "ip_address",
    "user_agent",
)

# THE one place with wire names (the API documents no `user` schema and integrations disagree;
# see the spec's "User fields"). A friendly name missing from a style's dict is not sent in that
# style: no integration using that style names a field for it.
USER_FIELD_STYLES: dict[str, dict[str, str]] = {
    # OpenAI's pixel documentation, Commanders Act, Stape; first/last name and state as Datalyr.
    "singular": {
        "email": "email_sha256",
        "phone": "phone_number_sha256",
        "external_id": "external_id_sha256",
        "first_name": "first_name_sha256",
        "last_name": "last_name_sha256",
        "city": "city_sha256",
        "state": "state_sha256",
        "zip": "zip_code_sha256",
        "country": "country_sha256",
        "ip_address": "ip_address",
        "user_agent": "user_agent",
    },
    # RudderStack's open-source OpenAI destination: arrays of hashes.
    "plural": {
        "email": "emails_sha256",
        "phone": "phone_numbers_sha256",
        "external_id": "external_ids_sha256",
        "first_name": "first_names_sha256",
        "last_name": "last_names_sha256",
        "date_of_birth": "date_of_births_sha256",
        "ip_address": "ip_address",
        "user_agent": "user_agent",
    },
}

# Integrations disagree on whether the hashed phone keeps E.164's leading "+" (the spec: "phone
# to digits with country code"). This is the one place to change it: set it to "+".
PHONE_PREFIX = ""

# Sent raw (not hashed) and always as one string.
_RAW_FIELDS = frozenset({"ip_address", "user_agent"})

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SPACE = re.compile(r"\s")
_US_ZIP4 = re.compile(r"(\d{5})-\d{4}")
_ISO_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:[Tt ].*)?")

# ISO 3166-1 alpha-2, officially assigned codes (249).
_COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.lower().split()
)
# Not ISO, but what people write for the United Kingdom.
_COUNTRY_ALIASES = {"uk": "gb"}


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


def _email(value: object, region: str | None) -> str:
    text = _text(value, "is not an email address").lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "@" in domain or _SPACE.search(text):
        raise _Rejected("is not an email address")
    return text


def _phone(value: object, region: str | None) -> str:
    return _e164_digits(_text(value, "is not a valid phone number"), region)


# Parsing is by far the costliest normalisation (about 40 us a number), and repeat customers
# repeat their numbers: results are cached, in a bounded cache so memory stays flat.
PHONE_CACHE_SIZE = 16_384


@lru_cache(maxsize=PHONE_CACHE_SIZE)
def _e164_digits(text: str, region: str | None) -> str:
    digits = _international_digits(text)
    if digits is not None:
        return PHONE_PREFIX + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as e:
        if e.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and not region:
            raise _Rejected(
                "has no country code (+...) and default_phone_region is not set"
            ) from None
        raise _Rejected("is not a valid phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise _Rejected("is not a valid phone number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PHONE_PREFIX + e164[1:]


_PUNCTUATION = str.maketrans("", "", " -.()")
_MAX_PHONE_INPUT = 250  # libphonenumber refuses longer input (TOO_LONG)


def _international_digits(text: str) -> str | None:
    """The E.164 digits of a number written "+<country code><number>", as libphonenumber's
    parse and format would give them, for the plain common case; None: ask libphonenumber.

    parse costs ~20-40 µs; this ~3 µs. It takes only digits with spaces, dashes, dots and
    brackets, and leaves to libphonenumber every number whose national part starts like a
    national prefix (which parse may strip, e.g. "+44 07911 ...") or a leading zero, and every
    number that is not possible for its country (which parse then rejects with its reason).
    tests/test_mapping_identity.py checks it against libphonenumber on thousands of numbers.
    """
    if not text.startswith("+") or len(text) > _MAX_PHONE_INPUT:
        return None
    digits = text[1:].translate(_PUNCTUATION)
    if not (digits.isascii() and digits.isdigit()) or digits.startswith("0"):
        return None
    for size in (1, 2, 3):  # country codes are prefix-free, as parse reads them
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not 2 <= len(national) <= 17 or national.startswith("0"):
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    if not phonenumbers.is_possible_number(number):
        return None
    return digits


def _words(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise _Rejected("is not text")
    return " ".join(value.split()).lower()


def _zip(value: object, region: str | None) -> str:
    text = "".join(_text(value, "is not a postal code").split()).lower()
    match = _US_ZIP4.fullmatch(text)
    return match.group(1) if match else text


def _country(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise _Rejected("is not an ISO 3166-1 alpha-2 country code")
    code = value.strip().lower()
    code = _COUNTRY_ALIASES.get(code, code)
    if code not in _COUNTRIES:
        raise _Rejected("is not an ISO 3166-1 alpha-2 country code")
    return code


def _date_of_birth(value: object, region: str | None) -> str:
    reason = "is not an ISO 8601 date (YYYY-MM-DD)"
    if isinstance(value, (date, datetime)):
        return value.strftime("%Y%m%d")
    if not isinstance(value, str):
        raise _Rejected(reason)
    match = _ISO_DATE.fullmatch(value.strip())
    if match is None:
        raise _Rejected(reason)
    year, month, day = match.groups()
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        raise _Rejected(reason) from None
    return year + month + day


def _external_id(value: object, region: str | None) -> str:
    return _text(value, "is not text or a number")


def _ip_address(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise _Rejected("is not an IPv4 or IPv6 address")
    first = value.split(",", 1)[0].strip()  # X-Forwarded-For: the client comes first
    try:
        return str(ipaddress.ip_address(first))
    except ValueError:
        raise _Rejected("is not an IPv4 or IPv6 address") from None


def _user_agent(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise _Rejected("is not text")
    return value.strip()


_NORMALISERS: dict[str, Callable[[object, str | None], str]] = {
    "email": _email,
    "phone": _phone,
    "external_id": _external_id,
    "first_name": _words,
    "last_name": _words,
    "city": _words,
    "state": _words,
    "zip": _zip,
    "country": _country,
    "date_of_birth": _date_of_birth,
    "ip_address": _ip_address,
    "user_agent": _user_agent,
}
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _normalise(name: str, value: object, region: str | None) -> str:
    """The value to send for one field: raw, passed-through digest, or hash of the normal form."""
    if name in _RAW_FIELDS:
        return _NORMALISERS[name](value, region)
    if isinstance(value, str) and _SHA256_HEX.fullmatch(value.strip()):
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


def _normalised(name: str, value: object, region: str | None) -> str:
    if type(value) is str:
        result, reason = _normalise_text(name, value, region)
        if reason is not None:
            raise _Rejected(reason)
        return result
    return _normalise(name, value, region)


def build_user(
    values: Mapping[str, object],
    style: str = "singular",
    default_phone_region: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build the event's `user` object from friendly-name values; return it and notes."""
    wire = USER_FIELD_STYLES.get(style)
    if wire is None:
        raise ValueError(
            f"unknown user field style {style!r}; expected one of {list(USER_FIELD_STYLES)}"
        )
    region = default_phone_region.upper() if default_phone_region else None
    if region is not None and region not in _REGIONS:
        raise ValueError(
            f"default_phone_region {default_phone_region!r} is not a known region "
            "(use an ISO 3166-1 alpha-2 code such as 'US')"
        )
    user: dict[str, Any] = {}
    notes: list[str] = []
    for name, raw in values.items():
        if name not in _NORMALISERS:
            raise ValueError(
                f"unknown user field {name!r}; expected one of {', '.join(USER_FIELDS)}"
            )
        key = wire.get(name)
        if key is None or _blank(raw):
            continue
        if not isinstance(raw, (list, tuple)):  # one value: the common case, kept short
            try:
                result = _normalised(name, raw, region)
            except _Rejected as e:
                notes.append(f"{name} {e.reason}; sent without it")
                continue
            user[key] = [result] if style == "plural" and name not in _RAW_FIELDS else result
            continue
        items = [v for v in raw if not _blank(v)]
        many = style == "plural" and name not in _RAW_FIELDS
        sent: list[str] = []
        reasons: list[str] = []
        for position, item in enumerate(items, 1):
            try:
                result = _normalised(name, item, region)
            except _Rejected as e:
                reasons.append(e.reason)
                if many and len(items) > 1:
                    notes.append(
                        f"{name} value {position} of {len(items)} {e.reason}; sent without it"
                    )
                continue
            if result not in sent:
                sent.append(result)
            if not many:
                break
        if not sent:
            if reasons and not (many and len(items) > 1):
                notes.append(f"{name} {reasons[0]}; sent without it")
            continue
        if not many and len(items) > 1:
            notes.append(f"{name} has {len(items)} values; sent one ({style} user style)")
        user[key] = sent if many else sent[0]
    return user, notes
