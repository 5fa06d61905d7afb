"""One user identifier value: normalised as OpenAI documents, hashed where it must be (pure).

Rules (OpenAI's Conversions API page, newest version; the README's user identifiers table):
- email: trimmed and lowercased (NFKC first: a decomposed "é" hashes like the composed one, and
  the full-width at sign (U+FF20) and letters an input method types are the ASCII ones); must
  hold one "@" with text on both sides and no spaces. Hashed.
- phone: whitespace, parentheses, periods and hyphens removed, then a leading "+" and any leading
  zeroes: "+1 (415) 555-2671" and "001 415 555 2671" -> "14155552671"; 8 to 15 digits, the country
  calling code kept (full-width or other scripts' digits, Unicode dashes and invisible marks
  read as the ASCII number they show; a trunk 0 after the country code, "+44 (0)20 ..." or
  "+44 020 ...", left out where the country's numbers begin with no 0; an extension, a tel:
  and a float's ".0" no part of it). A number written without "+" or "00" is read as
  starting with its country code, unless `default_phone_region` is set: then it is a national
  number of that region (libphonenumber adds the country code and drops a trunk prefix:
  "(415) 555-2671", US -> "14155552671"). Hashed.
- external_id: trimmed, case and every other character kept (a whole number is written without
  decimals). Hashed.
- first_name, last_name: lowercased, every whitespace and ASCII punctuation character removed,
  non-ASCII kept, no accent stripping ("Mary Jane" -> "maryjane", "O'Connor" -> "oconnor",
  "José" -> "josé"; NFC first, so a decomposed "é" hashes like the composed one). Hashed.
- city, state (sent as `regions`): raw text, trimmed (the API lowercases and cuts at 128).
- zip: raw, trimmed; letters, digits, spaces or hyphens, at most 32 characters.
- country: a two-letter ISO 3166-1 code (or XK, AC, TA, as shops use them), sent in upper case
  ("us" -> "US"; "UK" is read as "GB").
- obref (the pixel's `__obref` cookie, only with the user's consent), user_agent: raw, non-blank.
- android_advertising_id: a raw GAID (a UUID); the all-zero id means "limited" and is left out.
- ip_address: a valid IPv4 / IPv6 address in its compressed form (from an X-Forwarded-For list
  the first address), raw; an IPv4 address written IPv4-mapped (::ffff:203.0.113.9, as
  dual-stack proxies log IPv4 clients) as the IPv4 address it is.
- A hashed field whose value already is a SHA-256 hex digest is sent as is, lowercased (an
  external id only when it is lowercase hex: its case is kept, and an id may itself be hex).
- Null, "" and blank values are skipped, as are the markers exports write for a missing value
  (NULL_MARKERS: "NULL", "None", "NaN", "undefined", "N/A", "\\N", "-", ...). A value that
  fails its rule never costs the event: it is left out and a note names the field and the
  rule, never the value.
- A field may map to one value or a list of them (several emails): the plural style sends up to
  three distinct values as a list (the API uses the first three); the singular style, one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import string
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

import phonenumbers

from target_openai_capi.contract.built import user_value_rule
from target_openai_capi.contract.schema import is_ipv4_text
from target_openai_capi.mapping.personal_text import (
    holds_email,
    holds_personal_text,
    may_hold_email,
)
from target_openai_capi.mapping.user_fields import USER_FIELD_STYLES

# Normalised, then SHA-256; never sent raw.
HASHED_FIELDS = frozenset({"email", "phone", "external_id", "first_name", "last_name"})
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
# The slash between digits German numbers are written with (030/123456); not one between two
# numbers ("+1 415 555 2671 / 2672": two numbers are none).
_SLASH_IN_A_NUMBER = re.compile(r"(?<=\d)\s*/\s*(?=\d)")
# What is written around a number and no part of it: a tel: link's scheme, an extension
# ("ext. 12", "x123", "#12"), and the ".0" of a whole number a spreadsheet or pandas wrote as a
# float ("14155552671.0": its 0 is no digit of the number).
_TEL_SCHEME = re.compile(r"tel:", re.IGNORECASE)
# (found from its word on, which one look tells: not from every run of blanks before it)
_EXTENSION = re.compile(r"(?:;ext=|ext\.?:?|extension:?|x|#)[ \t]*\d{1,7}$", re.IGNORECASE)
_FLOAT_WRITTEN = re.compile(r"\+?\d+\.0+")
# No number is written in more (libphonenumber refuses longer text too).
_LONGEST_PHONE_TEXT = 250
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_ZERO_KEEPING_CODES = ("39", "378", "379")  # Italy, San Marino, Vatican: "+39 06 ..."
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
# Two-letter codes ISO does not assign that shops and payment platforms use (Shopify's and
# Stripe's country codes): Kosovo, and Ascension and Tristan da Cunha (reserved by ISO). The
# newest page asks only for "raw two-letter country codes, such as `US`".
_COUNTRY_CODES_IN_USE = "XK AC TA"
COUNTRIES = frozenset(_COUNTRY_CODES.split() + _COUNTRY_CODES_IN_USE.split())
# Not ISO, but what people write for the United Kingdom.
_COUNTRY_ALIASES = {"UK": "GB"}


class Rejected(Exception):
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
        raise Rejected(reason)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (Decimal, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        # A JSON number read as Decimal may look like 1.6505551234E+10: write it out in full
        # (not 1e-99999999999: a billion zeros, gigabytes, are no identifier either).
        if number.is_finite() and number.adjusted() < 30:
            if number == number.to_integral_value():
                return str(int(number))
            if number.adjusted() > -30:
                return format(number, "f")
    raise Rejected(reason)


def _string(value: object, reason: str) -> str:
    if not isinstance(value, str):
        raise Rejected(reason)
    return value.strip()


def _trim_invisible(text: str) -> str:
    """Trimmed of whitespace and of the invisible characters copying and pasting leaves at
    either end (zero-width spaces, direction marks, a byte order mark, control characters)."""
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]) in "CcCf"):
        start += 1
    while end > start and (
        text[end - 1].isspace() or unicodedata.category(text[end - 1]) in "CcCf"
    ):
        end -= 1
    return text[start:end]


# No address is longer (RFC 5321: a local part of 64, a domain of 255): a longer text is none,
# and is not normalised first (NFKC of 15 MB of U+FDFA, eighteen characters each, took 8 s).
_LONGEST_EMAIL = 320


def _email(value: object, region: str | None) -> str:
    text = _text(value, "is not an email address")
    if len(text) > _LONGEST_EMAIL:
        raise Rejected("is not an email address")
    if not text.isascii():  # (NFKC: see the module's docstring)
        # (and an input method's ideographic full stop, in kana mode, the domain's dot that it
        # is: an email column holds an address, as IDNA reads a domain)
        text = unicodedata.normalize("NFKC", text).replace("\u3002", ".")
    text = text.lower()
    if not text.isprintable():  # (an invisible character: at an end it is trimmed, inside no
        text = _trim_invisible(text)  # address holds one, so the value is left out)
        if not text.isprintable():
            raise Rejected("is not an email address")
    if _WRAPPED.search(text) and not _PLAIN_EMAIL.fullmatch(text):  # (a wrapper's signs)
        text = _unwrapped_email(text)
    local, at, domain = text.partition("@")
    # (Printable text holds no whitespace but the space: tests/test_mapping_identity.py.)
    if not at or not local or not domain or "@" in domain or " " in text:
        raise Rejected("is not an email address")
    return text


# What only an address with something around it holds: a bracket, a quote, mailto:, or a sign
# after it.
_WRAPPED = re.compile(r"[<>\"']|^mailto:|[.,;]$")
# An address as most are written: no wrapper to take off.
_PLAIN_EMAIL = re.compile(r"[^\s@<>\"':]+@[^\s@<>\"']*[^\s@<>\"'.,;]")
# An address inside what mail programs and exports write around it: `Jane Doe <jane@x.com>`,
# `<jane@x.com>`, `mailto:jane@x.com`, quotes.
_ANGLED = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def _unwrapped_email(text: str) -> str:
    """The address of `Name <address>`, `mailto:address?subject=...`, `"address"`, `address.`
    or `address,` (a sentence's or a list's sign after it): hashed wrapped, it could match no
    one, though counted as an email. A quote inside an address (`'thooft@x.nl`) is its own."""
    text = text.rstrip(".,;")
    angled = _ANGLED.search(text) if "<" in text and text.endswith(">") else None
    if angled is not None and angled.end() == len(text):
        text = angled.group(1)
    if text.startswith("mailto:"):
        text = text[7:].partition("?")[0].strip()
    if len(text) > 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    # (a quote is an address's own before its @, never in its domain: one at the end is not)
    return text.rstrip(".\"'")


_PHONE_RULE = "is not a phone number of 8 to 15 digits with its country code"


# Dashes a number is written with besides the ASCII hyphen (category Pd: U+2010, the no-break
# hyphen U+2011 that web pages use so that a number does not wrap, en and em dashes, ...), the
# minus sign, and the katakana prolonged sound mark (U+30FC) Japanese forms hold as a hyphen.
_DASH_LIKE = frozenset("\u2212\u30fc")


def _joined_at_its_slash(text: str) -> str:
    """A number written with a slash after its area code (German: `030/123456`, `030 / 123456`,
    `+49 30 / 1234567`) as one; a slash after a whole number (`+1 415 555 2671 / 2672`, another
    number or line) is left, so that the text is refused: two numbers are none."""
    found = _SLASH_IN_A_NUMBER.search(text)
    if found is None or sum(ch.isdigit() for ch in text[: found.start()]) >= 7:
        return text
    return text[: found.start()] + text[found.end() :]


def _ascii_phone_text(text: str, dash: str = " ") -> str:
    """A phone number written with other characters than ASCII as the ASCII one it is: digits of
    any script (full-width, Arabic-Indic, Devanagari, ...) as 0-9, a full-width + and brackets
    as ASCII (NFKC), any dash a space, and invisible characters (zero-width spaces, direction
    marks: format characters) dropped; not a superscript or circled digit.
    "+81 \uff19\uff10\uff0d1234" and "+1\u2011415\u2011555\u20112671"
    are the numbers they show."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif category == "Pd" or ch in _DASH_LIKE:
            out.append(dash)
        elif category != "Cf":
            folded = unicodedata.normalize("NFKC", ch)  # (full-width +, brackets, spaces)
            # A footnote's superscript, a circled or bracketed digit, is no digit of a number:
            # left as it is, the number is refused (NFKC would make it one more digit).
            out.append(ch if any(c.isdigit() for c in folded) else folded)
    return "".join(out)


def _phone(value: object, region: str | None) -> str:
    text = _text(value, _PHONE_RULE)
    if len(text) > _LONGEST_PHONE_TEXT:
        raise Rejected(_PHONE_RULE)
    if not text.isascii():
        text = _ascii_phone_text(text).strip()
    if text[:1] in "tT" and _TEL_SCHEME.match(text):
        text = text[4:].strip()
    if "." in text and _FLOAT_WRITTEN.fullmatch(text):
        text = text.partition(".")[0]
    elif "x" in text or "X" in text or "#" in text:
        extension = _EXTENSION.search(text)
        if extension is not None:
            text = text[: extension.start()].rstrip(" \t,;")
    if "/" in text:
        text = _joined_at_its_slash(text.strip("/ "))
    compact = _PHONE_SEPARATORS.sub("", text)
    dialled = None
    if region is not None and compact.startswith("00"):
        dialled = _dialled_out_of(compact, region)
    if dialled is not None:
        digits = dialled
    elif region is None or compact.startswith(("+", "00")):
        if "(" in text and compact.startswith(("+", "00")):
            # "+44 (0)20 7946 0958": the national trunk 0, written in parentheses after the
            # country code, is not dialled from abroad and is no part of the number; but in
            # Italy, San Marino and the Vatican the 0 is part of it.
            cut = _PHONE_SEPARATORS.sub("", _TRUNK_ZERO.sub("", text))
            if not cut.lstrip("+0").startswith(_ZERO_KEEPING_CODES):
                compact = cut
        digits = compact.removeprefix("+").lstrip("0")  # the documented rule, to the letter
        if digits.isdigit():
            digits = _without_trunk_prefix(digits)
    elif (
        region == "US"
        and len(compact) == 10
        and compact.isascii()
        and compact.isdigit()
        and compact[0] > "1"
    ):
        digits = "1" + compact  # what libphonenumber makes of it, at a hundredth of its cost
    else:
        digits = _national_number_digits(compact, region)
    low, high = PHONE_DIGITS
    if not (digits.isascii() and digits.isdigit() and low <= len(digits) <= high):
        raise Rejected(_PHONE_RULE)
    return digits


def _without_trunk_prefix(digits: str) -> str:
    """Digits of a number written with its country code and then its national trunk prefix
    ("+44 020 7946 0958", as "+44 (0)20 ..." is): the number without it, as libphonenumber reads
    it (E.164), where that is a valid number and the country's numbers do not begin with 0
    (Italy's do: kept). Any other digits as they are."""
    if "0" not in digits[1:4]:  # (no 0 after a country code of 1 to 3 digits)
        return digits
    for length in (1, 2, 3):
        code = digits[:length]
        if int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            if digits[length : length + 1] == "0" and code not in _ZERO_KEEPING_CODES:
                return _e164_of(digits)
            return digits
    return digits


@lru_cache(maxsize=256)
def _e164_of(digits: str) -> str:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return digits
    if number.italian_leading_zero or not phonenumbers.is_valid_number(number):
        return digits
    return _e164_digits(number)


# libphonenumber's parse costs ~20-60 us a number. The number as written is already cached with
# its hash (`_normalise_text`, below); this cache only serves the same number written another way
# ("(415) 555-2671", "415-555-2671"), so it is small: a large one kept filling long after the
# text cache was full (a few MiB more at 1M orders than at 100k, benchmarks/RESULTS.md).
@lru_cache(maxsize=1024)
def _national_number_digits(compact: str, region: str) -> str:
    """A number written in the national form of `region`, as country code + national digits."""
    if len(compact) > 250:  # libphonenumber refuses longer input (TOO_LONG)
        raise Rejected(_PHONE_RULE)
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        number = None
    international = _written_without_plus(compact, region, number)
    if international is not None:
        return _e164_digits(international)
    if number is None:
        raise Rejected(f"is not a phone number of default_phone_region {region}")
    # (IS_POSSIBLE_LOCAL_ONLY, a number without its area code, is not enough: no number reaches
    # anyone without it, and the area code hashed would be the wrong one)
    if phonenumbers.is_possible_number_with_reason(number) != _IS_POSSIBLE or not _in_the_plan(
        number
    ):
        raise Rejected(f"is not a phone number of default_phone_region {region}")
    return _e164_digits(number)


@lru_cache(maxsize=256)
def _dialled_out_of(compact: str, region: str) -> str | None:
    """The digits of a number written with a way out of `region` that is not 00 and a country
    code (AU 0011, KR 001, BR 0021 and its carriers', HK 001: "0011 44 20 7946 0958" is +44 20
    7946 0958, not 11 44...), else None: the documented rule (leading zeroes off) reads the
    rest, and so a number that 00 and a country code make (AU's carriers' 001x look like
    00 1...)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    way_out = None if metadata is None else metadata.international_prefix
    if way_out is None or len(compact) > 250 or _only_00(way_out):
        return None  # (where 00 is the one way out, the documented rule reads it)
    digits = compact.lstrip("0")
    try:  # 00 and a country code: a number so read, digit for digit, is the number (AU's
        # 001 415 555 2671 too; libphonenumber would take +1 1 650... for +1 650..., dropping
        # the second 1 as a national prefix: not digit for digit)
        literal = phonenumbers.parse("+" + digits)
        if phonenumbers.is_valid_number(literal) and _e164_digits(literal) == digits:
            return None
    except phonenumbers.NumberParseException:
        pass
    try:
        number = phonenumbers.parse(compact, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code_source != phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD:
        return None
    possible = phonenumbers.is_possible_number_with_reason(number) == _IS_POSSIBLE
    return _e164_digits(number) if possible and _in_the_plan(number) else None


@lru_cache(maxsize=64)
def _only_00(way_out: str) -> bool:
    """The region's way out is 00 and nothing longer (GB, DE: not HK's 001, 0030..., nor
    Bolivia's 0010-0019), tried with up to three more digits (no way out is longer)."""
    if not re.fullmatch(way_out, "00"):
        return False
    pattern = re.compile(way_out)
    return not any(
        pattern.fullmatch(f"00{number:0{width}d}")
        for width in (1, 2, 3)
        for number in range(10**width)
    )


def _in_the_plan(number: phonenumbers.PhoneNumber) -> bool:
    """The number's digits are in its country's numbering plan (its regions' general pattern):
    of the right length is not enough, `06 12 34 56 78` read in the US would be +1 0612345678,
    which no number is (none there begins with 0 or 1; the ten-digit path of `_phone` asks the
    same). Looser than libphonenumber's `is_valid_number`, which would refuse numbers of ranges
    opened after its data was written."""
    national = phonenumbers.national_significant_number(number)
    if number.country_code is None:
        return False
    return any(
        pattern.fullmatch(national)
        for region in phonenumbers.region_codes_for_country_code(number.country_code)
        if (pattern := _general_pattern(region)) is not None
    )


@lru_cache(maxsize=512)  # (the regions libphonenumber knows: ~250)
def _general_pattern(region: str) -> re.Pattern[str] | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = None if metadata is None else metadata.general_desc
    if general is None or not general.national_number_pattern:
        return None
    return re.compile(general.national_number_pattern)


_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_SERVICE_NUMBERS = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOICEMAIL,
    }
)


def _written_without_plus(
    compact: str, region: str, national: phonenumbers.PhoneNumber | None
) -> phonenumbers.PhoneNumber | None:
    """The number, when `compact` is an international number written without its "+"
    (4915112345678 in Germany, where libphonenumber would also read it as national digits and
    the country code would be sent twice); else None. Taken so only when the national reading
    is not a valid number, or when the region dials a trunk prefix (a national number is
    written with its 0) and the international reading is a customer's line, not a service
    number: in Italy (no trunk prefix) 390 685 8784 is a mobile, and in Brazil (55) 4003-2641
    a number of area code 55."""
    code = str(phonenumbers.country_code_for_region(region))
    if not (compact.isascii() and compact.isdigit() and compact.startswith(code)):
        return None
    try:
        international = phonenumbers.parse("+" + compact, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(international):
        return None
    if national is None or not phonenumbers.is_valid_number(national):
        return international
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    trunk = metadata is not None and bool(metadata.national_prefix)
    if trunk and phonenumbers.number_type(international) not in _SERVICE_NUMBERS:
        return international
    return None


def _e164_digits(number: phonenumbers.PhoneNumber) -> str:
    """Country code and national digits, as E.164 writes them without the "+"."""
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164[1:]


def _person_name(value: object, region: str | None) -> str:
    if not isinstance(value, str):
        raise Rejected("is not text")
    lowered = unicodedata.normalize("NFC", value).lower().translate(_ASCII_PUNCTUATION)
    return "".join(lowered.split())


def _place(value: object, region: str | None) -> str:
    return _not_personal(_string(value, "is not text"))


def _not_personal(text: str) -> str:
    """A field sent raw (a city, a region, the pixel's cookie) holding an email address or a
    +phone number (a column mapped wrongly) is left out: none is sent raw."""
    reason = holds_personal_text(text)
    if reason is not None:
        raise Rejected(reason)
    return text


def _postal_code(value: object, region: str | None) -> str:
    reason = "is not a postal code (letters, digits, spaces or hyphens, at most 32 characters)"
    text = _text(value, reason)
    if not text.isascii() and len(text) <= 40:
        # Japan's postal mark (〒), full-width digits and hyphens as Japanese input writes them,
        # a Unicode hyphen: the code they show.
        text = _ascii_phone_text(text.removeprefix("\u3012"), dash="-").strip()
    if not _POSTAL_CODE.fullmatch(text):
        raise Rejected(reason)
    return text


def _country(value: object, region: str | None) -> str:
    code = _string(value, "is not a two-letter ISO 3166-1 country code").upper()
    code = _COUNTRY_ALIASES.get(code, code)
    if code not in COUNTRIES:
        raise Rejected("is not a two-letter ISO 3166-1 country code")
    return code


def _external_id(value: object, region: str | None) -> str:
    return _text(value, "is not text or a number")


def _obref(value: object, region: str | None) -> str:
    return _not_personal(_string(value, "is not text (the pixel's __obref cookie)"))


def _advertising_id(value: object, region: str | None) -> str:
    text = _string(value, "is not a Google advertising id (a UUID)")
    if not _UUID.fullmatch(text):
        raise Rejected("is not a Google advertising id (a UUID)")
    if text == _ALL_ZERO_UUID:
        raise Rejected("is the all-zero id of a user who limited ad tracking")
    return text


def _ip_address(value: object, region: str | None) -> str:
    first = _string(value, "is not an IPv4 or IPv6 address").split(",", 1)[0].strip()
    if is_ipv4_text(first):
        return first  # what ipaddress would give, at a fifth of the cost
    first = _without_port(first)
    if is_ipv4_text(first):
        return first
    try:  # X-Forwarded-For: the client comes first. (Not IPv4: is_ipv4_text takes all of it.)
        address = ipaddress.IPv6Address(first)
    except ValueError:
        raise Rejected("is not an IPv4 or IPv6 address") from None
    if address.scope_id:  # fe80::1%eth0: a link-local zone, not a client
        raise Rejected("is an IPv6 address with a zone id (%...), not a client address")
    mapped = address.ipv4_mapped  # ::ffff:203.0.113.9 (a dual-stack proxy)
    return str(address if mapped is None else mapped)


def _without_port(address: str) -> str:
    """An address with its client's port taken off, as Azure's gateway writes X-Forwarded-For
    (`203.0.113.9:17085`, `[2001:db8::1]:443`); any other text as it is."""
    if address.startswith("["):
        inside, bracket, port = address[1:].partition("]")
        return inside if bracket and (not port or _PORT.fullmatch(port)) else address
    host, colon, port = address.partition(":")
    return host if colon and ":" not in port and _PORT.fullmatch(colon + port) else address


_PORT = re.compile(r":\d{1,5}")


def _user_agent(value: object, region: str | None) -> str:
    text = _string(value, "is not text")
    # (an email address only: a log that writes spaces as + holds "+301.0.0.29.124", a version)
    if may_hold_email(text) and holds_email(text):
        raise Rejected("holds an email address")
    return text


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
# Regions libphonenumber knows: the values default_phone_region may take.
PHONE_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


# What exports write for a missing value (SQL NULL, pandas NaN, JavaScript undefined, str(None),
# spreadsheets' N/A, MySQL/Postgres COPY's \N, a web server's "-"): no identifier of anyone.
# Written as names are ("Nan", "Null") they are kept: names people have; "NA" is Namibia. A
# name written "nan" or "NAN" is read as pandas' marker and lost.
NULL_MARKERS = frozenset(
    {"null", "NULL", "None", "none", "NONE", "nil", "NaN", "nan", "NAN", "undefined"}
    | {"N/A", "n/a", "#N/A", "\\N", "-"}
)


def blank(value: object) -> bool:
    """Null, empty or blank, or one of the NULL_MARKERS: a user field skipped as absent."""
    if value is None:
        return True
    if type(value) is str:  # (the usual text: one set lookup, no call)
        return not value or (value[0] in NO_VALUE_STARTS and false_text(value))
    return isinstance(value, str) and false_text(value)


_NO_VALUE_TEXTS = NULL_MARKERS - {"NaN", "nan", "NAN"}
# The first characters of a text of no value (whitespace, or a marker's first): any other text
# is a value at the cost of one set lookup.
NO_VALUE_STARTS = frozenset(
    {marker[0] for marker in NULL_MARKERS}
    | set("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000")
    | {chr(c) for c in range(0x2000, 0x200B)}  # (str.isspace's characters, all of them)
)


def text_of_no_value(text: str, markers: frozenset[str] = _NO_VALUE_TEXTS) -> bool:
    """A field's text that is no value: empty, blank, or an export's mark of a missing one,
    padded too (a CHAR(20) column's `NULL` and spaces): NULL_MARKERS but NaN, which in an
    amount is a number that is none, a rejection (money.py)."""
    if not text:
        return True
    if text[0] not in NO_VALUE_STARTS:  # (no marker, no blank, padded or not, begins so)
        return False
    if len(text) <= 9 and text in markers:
        return True
    if text[0].isspace() or text[-1].isspace():
        text = text.strip()
        return not text or (len(text) <= 9 and text in markers)
    return False


def false_text(text: str) -> bool:
    """A text an expression's `||`, `&&`, `!` and filters take for false: one of no value, or
    pandas' NaN (a missing cell: `em || em2` takes em2 then; NULL_MARKERS, as `blank`)."""
    return text_of_no_value(text, NULL_MARKERS)


def _is_digest(name: str, text: str) -> bool:
    """A value that already is a SHA-256 digest: 64 hex characters. For external ids (whose
    case is kept and which may be hex themselves) only lowercase ones, as hashes are written."""
    if len(text) != 64 or not _SHA256_HEX.fullmatch(text):
        return False
    return name != "external_id" or text == text.lower()


# The contract's rules for a value of each field, under every name a style sends it by
# (contract/built.py user_value_rule): a value is made only if the API takes it, so the check of a
# built event need not look at its user values again (certainly_valid's `normalised_user`).
_SENDABLE: dict[str, list[tuple[Callable[[object], bool], str]]] = {
    name: list(
        dict.fromkeys(  # (a rule both styles share is checked once)
            user_value_rule(style[name]) for style in USER_FIELD_STYLES.values() if name in style
        )
    )
    for name in _NORMALISERS
}
# Fields whose normaliser only ever makes a value its rule takes: an IP address is either text
# `is_ipv4_text` accepted or what ipaddress writes of an address it parsed (no zone id), which
# the ipv4 or ipv6 format takes; checking it again would parse an IPv6 address twice.
_VALID_AS_MADE = frozenset({"ip_address"})


def _normalise(name: str, value: object, region: str | None) -> str:
    """The value to send for one field: raw, passed-through digest, or hash of the normal form;
    checked against the contract's rule for it, unless it keeps the rule by construction."""
    try:
        if name not in HASHED_FIELDS:
            result = _NORMALISERS[name](value, region)
            if name in _VALID_AS_MADE:
                return result
            if not result.isascii():
                result.encode("utf-8")  # (JSON cannot carry a lone surrogate)
        elif isinstance(value, str) and _is_digest(name, value.strip()):
            result = value.strip().lower()
        else:
            normal = _NORMALISERS[name](value, region)
            if not normal:
                raise Rejected("is empty once normalised")
            # 64 lowercase hex digits: the rule of every hashed key (tests/test_mapping_identity
            # `test_every_value_made_is_one_the_event_schema_takes`); checking it costs a third of
            # making it.
            return sha256_hex(normal)
    except UnicodeEncodeError:
        raise Rejected("is not valid Unicode text") from None
    for rule, wanted in _SENDABLE[name]:
        if not rule(result):
            raise Rejected(f"is not {wanted} once normalised, as the API requires")
    return result


# Normalising and hashing a value costs a few µs, and values repeat across records (cities,
# countries, a returning customer's email and name): results for text values are cached, in a
# bounded cache so memory stays flat. Only str keys: 1, 1.0 and True would share a cache entry.
USER_VALUE_CACHE_SIZE = 32_768


# The reason _normalise_text gives for a NULL_MARKERS value: absent, to be skipped, no note.
ABSENT = "is a marker of a missing value"


@lru_cache(maxsize=USER_VALUE_CACHE_SIZE)
def _normalise_text(name: str, text: str, region: str | None) -> tuple[str, str | None]:
    """(value to send, None) or ("", reason): _normalise of a text value, cached; ("", ABSENT)
    for a marker of a missing value."""
    if blank(text):
        return "", ABSENT
    try:
        return _normalise(name, text, region), None
    except Rejected as e:
        return "", e.reason


# Longer text is normalised but not cached: the cache is bounded by entries, not bytes.
MAX_CACHED_TEXT = 256


def normalised(name: str, value: object, region: str | None) -> str:
    """_normalise, cached for short text; raises Rejected."""
    if type(value) is str and len(value) <= MAX_CACHED_TEXT:
        result, reason = _normalise_text(name, value, region)
        if reason is not None:
            raise Rejected(reason)
        return result
    return _normalise(name, value, region)
