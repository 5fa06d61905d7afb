"""User identifiers: the official normalisation rules and examples, the two official shapes,
lists of up to three values, and notes without PII.

Expected digests are computed here with hashlib from the normal forms the official page gives,
never with the module under test.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

import pytest

from target_openai_capi import contract
from target_openai_capi.mapping import identity, user_values
from target_openai_capi.mapping.identity import (
    USER_FIELD_STYLES,
    USER_FIELDS,
    build_user,
    unsendable_user_field,
)
from target_openai_capi.mapping.user_values import sha256_hex


def h(text: str) -> str:
    """The expected digest, computed independently of the module under test."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_known_vector() -> None:
    expected = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    assert sha256_hex("test@example.com") == expected
    user, notes = build_user({"email": "  Test@Example.COM "})
    assert user == {"emails_sha256": [expected]}
    assert notes == []


def test_the_default_style_is_the_current_official_user_object() -> None:
    assert identity.DEFAULT_USER_FIELD_STYLE == "plural"


# The newest official user object, field by field (capi-spec.md, "The user object").
OFFICIAL_PLURAL = {
    "emails_sha256",
    "phone_numbers_sha256",
    "external_ids_sha256",
    "first_names_sha256",
    "last_names_sha256",
    "regions",
    "cities",
    "postal_codes",
    "countries",
    "android_advertising_id",
    "obref",
    "ip_address",
    "user_agent",
}
# The earlier official shape (mid-2026): singular fields.
OFFICIAL_SINGULAR = {
    "email_sha256",
    "external_id_sha256",
    "country",
    "city",
    "zip_code",
    "obref",
    "ip_address",
    "user_agent",
}
NEVER_OFFICIAL = {
    "phone_number_sha256",
    "first_name_sha256",
    "last_name_sha256",
    "city_sha256",
    "state_sha256",
    "zip_code_sha256",
    "country_sha256",
    "date_of_births_sha256",
    "date_of_birth_sha256",
    "cities_sha256",
    "external_ids",
}


def test_each_style_sends_exactly_an_official_shape() -> None:
    assert set(USER_FIELD_STYLES["plural"].values()) == OFFICIAL_PLURAL
    assert set(USER_FIELD_STYLES["singular"].values()) == OFFICIAL_SINGULAR
    for names in USER_FIELD_STYLES.values():
        assert set(names) <= set(USER_FIELDS)
        assert len(set(names.values())) == len(names)


def test_the_event_schema_accepts_the_official_names_and_no_others() -> None:
    assert contract.USER_WIRE_FIELDS == OFFICIAL_PLURAL | OFFICIAL_SINGULAR
    assert not contract.USER_WIRE_FIELDS & NEVER_OFFICIAL


def test_friendly_names_map_to_the_documented_fields() -> None:
    plural = USER_FIELD_STYLES["plural"]
    assert plural["state"] == "regions"
    assert plural["zip"] == "postal_codes"
    assert plural["city"] == "cities"
    assert plural["country"] == "countries"
    assert "date_of_birth" in USER_FIELDS
    assert all("date_of_birth" not in names for names in USER_FIELD_STYLES.values())


# The official page's own examples, then more of the same rules.
@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        ("email", "test@example.com", "test@example.com"),
        ("email", "  Ada.Lovelace+news@Example.CO.UK\t", "ada.lovelace+news@example.co.uk"),
        # Invisible characters a copy and paste leaves at an end are trimmed with the spaces:
        # hashed with them, the address could never match.
        ("email", "\u200bzw@example.com", "zw@example.com"),
        ("email", "zw@example.com\u200e\ufeff\r", "zw@example.com"),
        ("email", "Jose\u0301@example.com", "jos\u00e9@example.com"),  # decomposed: the same
        # As a Japanese or Chinese input method writes it: full-width, or a kana-mode dot.
        ("email", "taro\uff20example.jp", "taro@example.jp"),
        ("email", "\uff34\uff41\uff52\uff4f\uff20\uff45\uff58.jp", "taro@ex.jp"),
        ("email", "taro\uff20example\u3002jp", "taro@example.jp"),
        ("email", "taro\uff20example\uff61jp", "taro@example.jp"),
        ("phone", "+1 (415) 555-2671", "14155552671"),  # official example
        ("phone", "001 415 555 2671", "14155552671"),  # official example
        ("phone", "+44 20.7946.0958", "442079460958"),
        ("phone", "0044 20 7946 0958", "442079460958"),
        ("phone", "14155552671", "14155552671"),  # written with its country code, no "+"
        ("phone", 14155552671, "14155552671"),
        ("first_name", "Mary Jane", "maryjane"),  # official example
        ("last_name", "O'Connor", "oconnor"),  # official example
        ("first_name", "José", "josé"),  # official example: non-ASCII kept, no accent stripping
        ("first_name", "Jose\u0301", "josé"),  # decomposed accent: the same name
        ("first_name", "  Ada ", "ada"),
        ("last_name", "Smith-Jones", "smithjones"),
        ("last_name", "VAN DER BERG", "vanderberg"),
        ("last_name", "St. John\u00a0Smith", "stjohnsmith"),  # any whitespace
        ("last_name", "ÖZTÜRK", "öztürk"),
        ("external_id", "  Cust-ABC_123 ", "Cust-ABC_123"),  # trimmed, case kept
        ("external_id", 123, "123"),
        ("external_id", Decimal("123"), "123"),
    ],
)
def test_hashed_fields_hash_the_documented_normal_form(
    field: str, raw: object, normalised: str
) -> None:
    user, notes = build_user({field: raw})
    assert user == {USER_FIELD_STYLES["plural"][field]: [h(normalised)]}
    assert notes == []


def test_national_numbers_use_default_phone_region() -> None:
    user, notes = build_user({"phone": "(415) 555-2671"}, default_phone_region="US")
    assert user == {"phone_numbers_sha256": [h("14155552671")]}
    user, notes = build_user({"phone": "020 7946 0958"}, default_phone_region="gb")
    assert user == {"phone_numbers_sha256": [h("442079460958")]}  # trunk prefix 0 dropped
    # A number written internationally ignores the region.
    user, _ = build_user({"phone": "+33 1 23 45 67 89"}, default_phone_region="US")
    assert user == {"phone_numbers_sha256": [h("33123456789")]}
    assert notes == []


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        # The country code written without its "+": the code was sent twice (494915112345678).
        ("4915112345678", "DE", "4915112345678"),
        ("447911 123456", "GB", "447911123456"),
        ("015112345678", "DE", "4915112345678"),  # the national form, as before
        ("3912345678", "IT", "393912345678"),  # a national number that starts like +39: valid
        # Valid both ways: national where the region writes no trunk 0 (Italy: a mobile, not
        # the Rome line +39 06 858784), or where the other reading is a service number.
        ("390 685 8784", "IT", "393906858784"),
        ("91180 07474", "IN", "919118007474"),  # (not the toll-free +91 1800 7474)
        ("(55) 4003-2641", "BR", "555540032641"),  # area code 55 (not shared-cost +55 4003)
        # Possible only locally (no area code): hashed as if whole, with no area code.
        ("555-2671", "US", None),  # (1 + 5552671: 8 digits, inside the rule's 8-15)
    ],
)
def test_a_number_with_its_country_code_but_no_plus_is_read_once(raw, region, digits) -> None:
    user, notes = build_user({"phone": raw}, default_phone_region=region)
    if digits is None:
        assert user == {}
        assert notes == [
            f"phone is not a phone number of default_phone_region {region}; sent without it"
        ]
    else:
        assert user == {"phone_numbers_sha256": [h(digits)]}
        assert notes == []


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # Dialled out of the region its own way, which is not 00: the digits after it are the
        # number (the literal rule took AU's 0011 for zeroes and a 11, sending 11442079460958).
        ("0011 44 20 7946 0958", "AU"),
        ("0011 44 (0)20 7946 0958", "AU"),
        ("001 44 20 7946 0958", "KR"),
        ("002 44 20 7946 0958", "TW"),
        ("0021 44 20 7946 0958", "BR"),  # (a carrier's code in the way out)
        # 00 where it is no way out: read as the documented rule reads it, as before
        ("00 44 20 7946 0958", "AU"),
        ("0044 20 7946 0958", "US"),
        ("00 44 20 7946 0958", "GB"),
    ],
)
def test_a_number_dialled_out_of_the_region_its_own_way_is_the_number_dialled(raw, region) -> None:
    user, notes = build_user({"phone": raw}, default_phone_region=region)
    assert user == {"phone_numbers_sha256": [h("442079460958")]}
    assert notes == []


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        # 00 and a country code, where a carrier's way out begins alike (AU 001x, BR 00xx,
        # KR 00x): the number 00 + country code makes is the number (AU's "001 415 ..." was
        # read past a way out "0014" and hashed as 155552671, no one's number).
        ("001 415 555 2671", "AU", "14155552671"),
        ("001 212 555 0100", "BR", "12125550100"),
        ("0041 22 123 4567", "BR", "41221234567"),
        ("0043 1 234 5678", "BR", "4312345678"),
        ("0061 2 9374 4000", "KR", "61293744000"),
        ("0086 138 0013 8000", "KR", "8613800138000"),
        ("0011 1 415 555 2671", "AU", "14155552671"),  # (AU's own way out, then +1)
        # A way out and +1: "00 1 1 415..." is no number digit for digit (libphonenumber
        # reads +1 1 415... as +1 415..., the second 1 taken for a national prefix)
        ("001 1 415 555 2671", "KR", "14155552671"),
        ("001 1 212 555 0123", "SG", "12125550123"),
        ("0011 32 12345678", "AU", "3212345678"),  # (+1 132 123 45678 is none either)
        ("0011 44 20 7946 0958", "BO", "442079460958"),  # (00 and 0010-0019, a carrier's)
        # A national trunk 0 written after the country code, as "+44 (0)20 ..." is: no digit
        # of the number (libphonenumber's reading, E.164), where the country's numbers do not
        # begin with 0. Kept, the hash was of 4402079460958, a number of no one, and the same
        # person's "+44 (0)20 ..." another hash. Italy's 0 is its numbers' own.
        ("0044 020 7946 0958", "GB", "442079460958"),
        ("+44 020 7946 0958", "GB", "442079460958"),
        ("+44 020 7946 0958", None, "442079460958"),
        ("+33 06 12 34 56 78", None, "33612345678"),
        ("+61 0412 345 678", None, "61412345678"),
        ("+39 06 6982 1234", None, "390669821234"),
    ],
)
def test_a_number_written_00_and_its_country_code_is_that_number_in_every_region(
    raw, region, digits
) -> None:
    user, notes = build_user({"phone": raw}, default_phone_region=region)
    assert user == {"phone_numbers_sha256": [h(digits)]}
    assert notes == []


def _libphonenumber_digits(raw: str, region: str) -> str | None:
    """What libphonenumber itself makes of a national number: the E.164 digits, or None."""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    # (a number without its area code, possible only locally, is not a number to send)
    if (
        phonenumbers.is_possible_number_with_reason(number)
        != phonenumbers.ValidationResult.IS_POSSIBLE
    ):
        return None
    # (nor one outside the region's plan: its general pattern, in the US ten digits from 2-9)
    pattern = phonenumbers.PhoneMetadata.metadata_for_region(region).general_desc
    if not re.fullmatch(pattern.national_number_pattern, str(number.national_number)):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164[1:]


def test_us_national_numbers_read_as_libphonenumber_reads_them() -> None:
    """Ten digits are read without libphonenumber in the US (its parse costs a hundred times
    more): what comes out is what libphonenumber makes of the same text, for every kind of
    number written in the national form."""
    import random

    rng = random.Random(15)
    samples = ["2015550123", "9999999999", "2000000000", "1415555267", "0415555267", "415555267"]
    samples += ["".join(rng.choice("0123456789") for _ in range(10)) for _ in range(3_000)]
    samples += [rng.choice("23456789") + str(rng.randrange(10**9)).zfill(9) for _ in range(3_000)]
    samples += ["\u0664\u0661\u0665\u0665\u0665\u0665\u0662\u0666\u0667\u0661"]  # Arabic-Indic
    samples += ["\uff14\uff11\uff15" + "5552671", "415555267\uff11"]  # full-width digits
    for raw in samples:
        if raw.startswith("00"):
            continue  # an international number (the documented rule, not libphonenumber)
        expected = _libphonenumber_digits(raw, "US")
        if expected is not None and not 8 <= len(expected) <= 15:
            expected = None
        try:
            digits: str | None = user_values._phone(raw, "US")
        except user_values.Rejected:
            digits = None
        assert digits == expected, raw


def test_printable_text_holds_no_whitespace_but_the_space() -> None:
    """An email is refused for whitespace with `" " in text` once it is printable: no other
    character Python's `\\s` matches is printable."""
    import re
    import sys

    space = re.compile(r"\s")
    found = [
        hex(point)
        for point in range(sys.maxunicode + 1)
        if chr(point).isprintable() and space.match(chr(point))
    ]
    assert found == ["0x20"]
    user, notes = build_user({"email": "a\u00a0b@example.com"})
    assert user == {}
    assert notes == ["email is not an email address; sent without it"]


def test_ipv6_addresses_are_read_as_ipaddress_reads_any_address() -> None:
    """Text that is not IPv4 is parsed as IPv6 alone: the same answer as ipaddress.ip_address,
    which tries IPv4 first, on every kind of address text."""
    import ipaddress
    import random

    def by_ip_address(text: str) -> str | None:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
        if getattr(address, "scope_id", None):
            return None
        mapped = getattr(address, "ipv4_mapped", None)
        return str(address if mapped is None else mapped)

    rng = random.Random(6)
    samples = ["::", "::1", "1::", "::1.2.3.4", "::ffff:1.2.3.4", "2001:DB8::0:1", "fe80::1%1"]
    samples += ["1.2.3.4", "01.2.3.4", "1.2.3", "", ":", ":::", "1:2:3:4:5:6:7:8:9", "g::1"]
    alphabet = "0123456789abcdefABCDEF:.%"
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 24))) for _ in range(20_000)
    ]
    samples += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(2_000)]
    samples += [ipaddress.IPv6Address(rng.getrandbits(128)).exploded for _ in range(2_000)]
    made = 0
    for text in samples:
        try:
            sent: str | None = user_values._ip_address(text, None)
        except user_values.Rejected:
            sent = None
        assert sent == by_ip_address(text.strip()), text
        if sent is not None:
            made += 1
            assert all(rule(sent) for rule, _ in user_values._SENDABLE["ip_address"]), text
    assert made > 4_000


@pytest.mark.parametrize("region", [None, "GB", "US"])
@pytest.mark.parametrize(
    "raw", ["+44 (0)20 7946 0958", "0044 (0) 20 7946 0958", "+44(0)2079460958", "+44 20 7946 0958"]
)
def test_the_trunk_zero_written_in_parentheses_is_no_part_of_an_international_number(
    raw: str, region: str | None
) -> None:
    # (UK, German, Swiss numbers are often written so; the 0 is not dialled from abroad.)
    user, notes = build_user({"phone": raw}, default_phone_region=region)
    assert user == {"phone_numbers_sha256": [h("442079460958")]}
    assert notes == []


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        # In the numbering plan though not (yet) valid to libphonenumber: kept, as a number of
        # a range opened after its data was written would be.
        ("555 123 4567", "US", "15551234567"),
        ("(555) 123-4567", "US", "15551234567"),
        ("06 12 34 56 78", "FR", "33612345678"),
        ("0412 345 678", "AU", "61412345678"),
        ("030 1234567", "DE", "49301234567"),
    ],
)
def test_a_national_number_in_its_country_s_plan_is_sent(
    raw: str, region: str, digits: str
) -> None:
    assert build_user({"phone": raw}, default_phone_region=region) == (
        {"phone_numbers_sha256": [h(digits)]},
        [],
    )


@pytest.mark.parametrize(
    ("raw", "digits"),
    [("+39 (0)6 6982 1234", "390669821234"), ("+378 (0)549 123456", "3780549123456")],
)
def test_in_italy_and_san_marino_the_zero_is_part_of_the_number(raw: str, digits: str) -> None:
    assert build_user({"phone": raw})[0] == {"phone_numbers_sha256": [h(digits)]}


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # What is written around a number: an extension, a tel: link, the ".0" of a whole
        # number pandas or a spreadsheet wrote as a float (its 0 was hashed as a digit:
        # 141555526710, or refused), a German slash.
        ("+1 415 555 2671 ext 12", None),
        ("+1 415 555 2671 ext. 12", "US"),
        ("+1 415 555 2671 x123", None),
        ("+1 415 555 2671 #12", None),
        ("tel:+1-415-555-2671", None),
        ("14155552671.0", None),
        ("4155552671.0", "US"),
        ("+1 415/555 2671", None),
    ],
)
def test_what_is_written_around_a_number_is_no_part_of_it(raw: str, region: str | None) -> None:
    user = build_user({"phone": raw}, default_phone_region=region)
    assert user == ({"phone_numbers_sha256": [h("14155552671")]}, [])


@pytest.mark.parametrize(
    "raw",
    [
        "+971 50 123 4567",
        # Arabic-Indic digits
        "+\u0669\u0667\u0661 \u0665\u0660 \u0661\u0662\u0663 \u0664\u0665\u0666\u0667",
        "".join(chr(ord(ch) + 0xFEE0) for ch in "+971-50-123-4567"),  # full-width
        "+971\u201350\u2014123\u22124567",  # en dash, em dash, minus sign
        "\ufeff+971 50 123 4567\u200e",  # a byte order mark, a direction mark
    ],
)
def test_a_number_in_other_digits_or_dashes_is_the_number_it_shows(raw: str) -> None:
    assert build_user({"phone": raw}) == ({"phone_numbers_sha256": [h("971501234567")]}, [])


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+1 415", None),  # 4 digits: fewer than 8
        ("+1 415 555 2671 9999 99", None),  # 17 digits: more than 15
        ("call me", None),
        ("12", "US"),
        (True, None),
        # Of a US number's length, but no US number begins with 0 (a French, an Australian
        # customer's, written nationally): they were hashed as +1 0612345678, which no one has.
        ("06 12 34 56 78", "US"),
        ("0412 345 678", "US"),
        ("(061) 234-5678", "US"),
        # A footnote's superscript, a circled digit: no digit of the number (NFKC made them 1
        # and 9 of it, a number of no one).
        ("+1 415 555 2671\u00b9", None),
        ("+44 20 7946 095\u2468", None),
    ],
)
def test_a_phone_outside_the_rule_is_left_out_with_a_note(raw: object, region: str | None) -> None:
    user, notes = build_user({"phone": raw, "email": "a@b.co"}, default_phone_region=region)
    assert user == {"emails_sha256": [h("a@b.co")]}  # one bad identifier never costs the event
    assert len(notes) == 1
    assert notes[0].startswith("phone is not a phone number")


@pytest.mark.parametrize(
    ("field", "raw", "sent"),
    [
        ("city", " San Francisco ", "San Francisco"),  # raw, trimmed (the API lowercases)
        ("city", "MÜNCHEN", "MÜNCHEN"),
        ("state", "CA", "CA"),
        ("zip", "94107", "94107"),
        ("zip", " SW1A 1AA ", "SW1A 1AA"),
        ("zip", "100-0001", "100-0001"),
        ("zip", 94107, "94107"),
        ("country", "US", "US"),
        ("country", " fr ", "FR"),
        ("country", "UK", "GB"),
        # Not assigned by ISO, but Shopify's and Stripe's codes; the page asks for "raw two-letter
        # country codes, such as `US`": Kosovo's orders keep their country.
        ("country", "xk", "XK"),
        ("country", "AC", "AC"),
    ],
)
def test_geography_is_sent_raw(field: str, raw: object, sent: str) -> None:
    user, notes = build_user({field: raw})
    assert user == {USER_FIELD_STYLES["plural"][field]: [sent]}
    assert notes == []


@pytest.mark.parametrize(
    ("field", "raw", "reason"),
    [
        ("email", "not-an-email", "is not an email address"),
        ("email", "a b@c.de", "is not an email address"),
        ("email", "rtl\u202e@example.com", "is not an email address"),  # inside: no address
        ("email", "x\x00@example.com", "is not an email address"),
        ("zip", "9410#7", "is not a postal code"),
        ("zip", "1" * 33, "is not a postal code"),
        ("country", "USA", "is not a two-letter ISO 3166-1 country code"),
        ("country", "ZZ", "is not a two-letter ISO 3166-1 country code"),
        ("city", 12, "is not text"),
        ("first_name", "...", "is empty once normalised"),
        ("ip_address", "999.1.1.1", "is not an IPv4 or IPv6 address"),
        ("android_advertising_id", "not-a-uuid", "is not a Google advertising id"),
        (
            "android_advertising_id",
            "00000000-0000-0000-0000-000000000000",
            "is the all-zero id",
        ),
        ("obref", 5, "is not text"),
    ],
)
def test_values_outside_their_rule_are_left_out_with_a_note(
    field: str, raw: object, reason: str
) -> None:
    user, notes = build_user({field: raw})
    assert user == {}
    assert len(notes) == 1
    assert notes[0].startswith(f"{field} {reason}")
    assert notes[0].endswith("; sent without it")


def test_raw_single_value_fields() -> None:
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    user, notes = build_user(
        {
            "obref": " 123e4567-e89b-42d3-a456-426614174000 ",
            "android_advertising_id": gaid,
            "ip_address": "2001:0db8:0000:0000:0000:0000:0000:0001",
            "user_agent": " Mozilla/5.0 ",
        }
    )
    assert user == {
        "obref": "123e4567-e89b-42d3-a456-426614174000",
        "android_advertising_id": gaid,
        "ip_address": "2001:db8::1",
        "user_agent": "Mozilla/5.0",
    }
    assert notes == []


def test_x_forwarded_for_sends_the_client_address() -> None:
    user, _ = build_user({"ip_address": "203.0.113.1, 10.0.0.1"})
    assert user == {"ip_address": "203.0.113.1"}


def test_the_official_example_user_object_comes_out_of_friendly_fields() -> None:
    # The documented example user (capi-spec.md), built from values a shop would hold.
    user, notes = build_user(
        {
            "obref": "123e4567-e89b-42d3-a456-426614174000",
            "email": h("jane@example.com"),  # an existing digest passes through
            "country": "US",
            "city": "San Francisco",
            "zip": "94107",
            "ip_address": "203.0.113.1",
            "user_agent": "Mozilla/5.0",
        }
    )
    assert user == {
        "obref": "123e4567-e89b-42d3-a456-426614174000",
        "emails_sha256": [h("jane@example.com")],
        "countries": ["US"],
        "cities": ["San Francisco"],
        "postal_codes": ["94107"],
        "ip_address": "203.0.113.1",
        "user_agent": "Mozilla/5.0",
    }
    assert notes == []


@pytest.mark.parametrize("field", ["email", "phone", "external_id", "first_name", "last_name"])
def test_existing_digests_pass_through_unhashed(field: str) -> None:
    # (An external id keeps its case, so only a lowercase digest passes as one: see below.)
    digest = h("already hashed") if field == "external_id" else h("already hashed").upper()
    user, _ = build_user({field: digest})
    assert user == {USER_FIELD_STYLES["plural"][field]: [digest.lower()]}


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_values_are_skipped_silently(blank: object) -> None:
    assert build_user({"email": blank, "city": blank, "obref": blank}) == ({}, [])


def test_lists_send_up_to_three_distinct_values_in_order() -> None:
    user, notes = build_user(
        {"email": ["A@b.co", "a@b.co ", "c@d.co", "broken", "e@f.co", "g@h.co"]}
    )
    assert user == {"emails_sha256": [h("a@b.co"), h("c@d.co"), h("e@f.co")]}
    assert notes == [
        "email value 4 of 6 is not an email address; sent without it",
        "email has 6 values; sent the first 3 distinct ones (the API uses at most three)",
    ]


def test_a_huge_list_costs_only_the_values_sent() -> None:
    emails = [f"user{i}@example.com" for i in range(100_000)]
    user_values._normalise_text.cache_clear()
    user, notes = build_user({"email": emails})
    assert user == {"emails_sha256": [h(e) for e in emails[:3]]}
    assert notes == [
        "email has 100000 values; sent the first 3 distinct ones (the API uses at most three)"
    ]
    assert user_values._normalise_text.cache_info().currsize == 3  # the others were never hashed


def test_raw_lists_count_values_the_api_would_lowercase_as_one() -> None:
    user, notes = build_user({"city": ["Paris", "PARIS", " paris ", "Lyon"]})
    assert user == {"cities": ["Paris", "Lyon"]}
    assert notes == []


def test_a_list_of_only_bad_values_is_left_out() -> None:
    user, notes = build_user({"email": ["x", "y"]})
    assert user == {}
    assert notes == [
        "email value 1 of 2 is not an email address; sent without it",
        "email value 2 of 2 is not an email address; sent without it",
    ]
    assert build_user({"email": ["x"]}) == ({}, ["email is not an email address; sent without it"])


def test_singular_style_is_the_earlier_official_shape() -> None:
    user, notes = build_user(
        {
            "email": ["broken", "Jane@Example.com", "jo@example.com"],
            "external_id": "C-1",
            "country": "us",
            "city": "San Francisco",
            "zip": "94107",
            "obref": "ob",
            "ip_address": "203.0.113.1",
            "user_agent": "Mozilla/5.0",
            "phone": "+1 415 555 2671",  # not in the earlier shape: not sent
            "first_name": "Jane",
            "state": "CA",
        },
        style="singular",
    )
    assert user == {
        "email_sha256": h("jane@example.com"),
        "external_id_sha256": h("C-1"),
        "country": "US",
        "city": "San Francisco",
        "zip_code": "94107",
        "obref": "ob",
        "ip_address": "203.0.113.1",
        "user_agent": "Mozilla/5.0",
    }
    assert "email has 3 values; sent one (the singular user field style)" in notes


def test_why_a_field_is_not_sent() -> None:
    assert "no version of OpenAI's user object" in unsendable_user_field("date_of_birth", "plural")
    assert "the singular user_field_style has no field" in unsendable_user_field(
        "phone", "singular"
    )


SECRETS = {
    "email": "ada.secret@example.com@",
    "phone": "+1 650 555 12345678999",
    "first_name": 1234567,
    "country": "Secretland",
    "ip_address": "999.168.1.1",
    "zip": ["94103#"],
    "android_advertising_id": "secret-gaid",
}


@pytest.mark.parametrize("style", ["singular", "plural"])
def test_notes_never_contain_raw_values(style: str) -> None:
    values = {**SECRETS, "email": [SECRETS["email"], "other.secret@"]}
    _user, notes = build_user(values, style)
    assert notes
    text = " ".join(notes)
    for fragment in ("ada", "secret", "555", "1234567", "Secretland", "999", "94103"):
        assert fragment not in text.lower()


def test_unknown_field_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown user field 'mail'"):
        build_user({"mail": "a@b.co"})


def test_unknown_style_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown user field style 'both'"):
        build_user({"email": "a@b.co"}, "both")


def test_unknown_phone_region_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="default_phone_region 'ZZ' is not a known region"):
        build_user({"email": "a@b.co"}, default_phone_region="ZZ")


def test_cached_results_give_the_same_user_and_notes_every_time() -> None:
    values = {"email": " Repeat@Example.COM ", "zip": "94103-1234", "country": "Narnia"}
    first = build_user(values)
    assert first == build_user(values)  # the second call is served from the cache
    user, notes = first
    assert user == {"emails_sha256": [h("repeat@example.com")], "postal_codes": ["94103-1234"]}
    assert notes == ["country is not a two-letter ISO 3166-1 country code; sent without it"]


def test_the_cache_keeps_text_and_other_types_apart() -> None:
    assert build_user({"external_id": 1})[0] == {"external_ids_sha256": [h("1")]}
    # True == 1 (and hashes alike), but a boolean is not an id.
    user, notes = build_user({"external_id": True})
    assert user == {}
    assert notes == ["external_id is not text or a number; sent without it"]
    assert build_user({"external_id": Decimal("1.0")})[0] == {"external_ids_sha256": [h("1")]}


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped, as dual-stack proxies log it
        ("::FFFF:cb00:7109", "203.0.113.9"),  # (the same, written in hex)
        ("::ffff:203.0.113.9, 10.0.0.1", "203.0.113.9"),
        ("2001:DB8::0:1", "2001:db8::1"),  # other IPv6 addresses: compressed, lower case
        ("64:ff9b::cb00:7109", "64:ff9b::cb00:7109"),  # (NAT64: an IPv6 address of its own)
    ],
)
def test_an_ipv4_client_written_as_ipv6_is_sent_as_its_ipv4_address(written, sent) -> None:
    assert build_user({"ip_address": written})[0] == {"ip_address": sent}


@pytest.mark.parametrize("marker", [*sorted(user_values.NULL_MARKERS), " NULL ", "\tnan"])
def test_a_marker_of_a_missing_value_is_no_identifier(marker: str) -> None:
    """What a CSV, pandas or SQL export writes for a missing value is skipped like a null,
    silently: hashing "nan" as a first name or sending "undefined" as a city is junk."""
    fields = ["email", "phone", "first_name", "last_name", "external_id", "city", "state"]
    fields += ["zip", "country", "obref", "user_agent", "ip_address", "android_advertising_id"]
    user, notes = build_user({field: marker for field in fields} | {"email": [marker, "a@b.co"]})
    assert user == {"emails_sha256": [h("a@b.co")]}
    assert notes == []


_EVERY_WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]


@pytest.mark.parametrize("space", _EVERY_WHITESPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_text_of_no_value_is_known_whatever_whitespace_pads_it(space: str) -> None:
    """The rule, written plainly: a text is no value when, stripped, it is empty or a marker.
    Every character str.strip takes counts, first or last (the check looks at a text's first
    character before anything else)."""
    for text, no_value in [
        (space, True),
        (space * 3, True),
        (f"{space}NULL", True),
        (f"NULL{space}", True),
        (f"{space}-{space}", True),
        (f"{space}nan", False),  # (NaN: a number that is none, not "no value", in a field)
        (f"{space}Nancy", False),
        (f"Nancy{space}", False),
        (f"x{space}", False),
        (f"{space}x", False),
    ]:
        assert user_values.text_of_no_value(text) is no_value, repr(text)
        assert user_values.false_text(text) is (no_value or text.strip() == "nan"), repr(text)
        assert user_values.blank(text) is user_values.false_text(text), repr(text)


def test_names_and_codes_that_only_look_like_missing_values_are_kept() -> None:
    user, notes = build_user({"first_name": "Nan", "last_name": "Null", "country": "NA"})
    assert user == {
        "first_names_sha256": [h("nan")],
        "last_names_sha256": [h("null")],
        "countries": ["NA"],  # Namibia
    }
    assert notes == []


def test_an_ipv6_address_with_a_zone_id_is_left_out_not_the_event() -> None:
    user, notes = build_user({"ip_address": "fe80::1%eth0", "email": "a@b.co"})
    assert user == {"emails_sha256": [h("a@b.co")]}
    assert notes == [
        "ip_address is an IPv6 address with a zone id (%...), not a client address; sent without it"
    ]
    assert (
        contract.event_problem(
            {
                "id": "e",
                "type": "lead_created",
                "timestamp_ms": 1,
                "user": user,
                "data": {"type": "customer_action"},
            }
        )
        is None
    )


def test_an_external_id_of_uppercase_hex_is_hashed_with_its_case_kept() -> None:
    upper = "AB" * 32
    assert build_user({"external_id": upper})[0] == {"external_ids_sha256": [h(upper)]}
    lower = h("already a digest")
    assert build_user({"external_id": lower})[0] == {"external_ids_sha256": [lower]}


def test_long_values_are_not_cached() -> None:
    user_values._normalise_text.cache_clear()
    city = "x" * (user_values.MAX_CACHED_TEXT + 1)
    assert build_user({"city": city})[0] == {"cities": [city]}
    assert user_values._normalise_text.cache_info().currsize == 0


def test_a_list_for_a_one_value_field_says_why_one_was_sent() -> None:
    _user, notes = build_user({"ip_address": ["203.0.113.1", "203.0.113.2"]})
    assert notes == ["ip_address has 2 values; sent one (the field takes one value)"]


# --- every value made is one the API takes (the event check then skips user values) ----------

# Values of every kind a record may hold for a user field: ordinary, odd and hostile.
_CORPUS: list[object] = [
    "Person@Example.COM",
    "  a@b  ",
    "a@b@c",
    "+1 (415) 555-2671",
    "(415) 555-2671",
    "0044 20 7946 0958",
    "+81 80-2032-5881",
    "12",
    "Müller-Lüdenscheidt",
    "O'Brien",
    "José",
    "Jose\u0301",
    "東京",
    "New  York ",
    "\u00a0\u2003x\u2003",
    "10001",
    "SW1A 1AA",
    "100-0001",
    "K1A 0B1",
    "x" * 33,
    "us",
    "UK",
    "ZZ",
    "gid://shopify/Customer/7001033",
    "203.0.113.7",
    "203.0.113.7, 10.0.0.1",
    "2001:DB8::0:1",
    "2001:0db8:0000:0000:0000:ff00:0042:8329",
    "::",
    "::1.2.3.4",
    "::ffff:192.0.2.1",
    "fe80::1%eth0",
    "999.1.1.1",
    "38400000-8cf0-11bd-b23e-10b96e40000d",
    "00000000-0000-0000-0000-000000000000",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "\t",
    "A" * 64,
    "a" * 64,
    "\x00",
    "\ud800",
    "caf\u00e9\n",
    7001033,
    16505551234,
    Decimal("16505551234"),
    Decimal("1.5E+3"),
    3.5,
    True,
    -1,
    0,
]


@pytest.mark.parametrize("style", ["plural", "singular"])
def test_every_value_made_is_one_the_event_schema_takes(style: str) -> None:
    """What user_values.py makes for any input is accepted by the event schema itself (the JSON
    Schema validator, not the rule it was checked against): built events need no check of their
    user values (contract/built.py `normalised_user`)."""
    made = 0
    for name in identity.USER_FIELDS:
        key = identity.USER_FIELD_STYLES[style].get(name)
        if key is None:
            continue
        for raw in _CORPUS:
            user, _ = build_user({name: raw}, style, "US")
            if not user:
                continue
            made += 1
            event = {
                "id": "e1",
                "type": "order_created",
                "timestamp_ms": 1_764_590_400_000,
                "action_source": "physical_store",
                "user": user,
                "data": {"type": "contents"},
            }
            assert contract.event_problem(event) is None, (name, raw, user)
    assert made > 150 if style == "plural" else made > 100


def test_a_value_the_api_would_refuse_is_left_out_with_the_contracts_words(monkeypatch) -> None:
    """The check where values are made: were a normaliser to make a postal code the API does
    not take, the value is left out with a note, and the event goes without it."""
    monkeypatch.setitem(user_values._NORMALISERS, "zip", lambda value, region: "10001; drop")
    user_values._normalise_text.cache_clear()
    try:
        user, notes = build_user({"zip": "10001", "city": "New York"}, "plural", None)
    finally:
        user_values._normalise_text.cache_clear()
    assert user == {"cities": ["New York"]}
    assert notes == [
        "zip is not a postal code: letters, digits, spaces or hyphens, at most 32 characters "
        "once normalised, as the API requires; sent without it"
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("taro\uff20example.jp", "holds an email address"),
        ("\uff54\uff41\uff52\uff4f\uff20\uff45\uff58\uff0e\uff4a\uff50", "holds an email address"),
        ("jane\ufe6bexample.com", "holds an email address"),
        # In kana mode the dot is the ideographic full stop: in a domain of Latin letters.
        ("taro\uff20example\u3002jp", "holds an email address"),
        ("taro\uff20example\uff61co\uff61jp", "holds an email address"),
        ("see you\uff203\u300230pm", None),
        # A Latin place after an at sign, then a sentence: no address either.
        ("\u767a\u58f2\u8a18\u5ff5\uff20HMV\u3002CD\u8cfc\u5165\u8005\u9650\u5b9a", None),
        ("12\u67081\u65e5@Shibuya\u3002DJ\u5165\u308a\u307e\u3059", None),
        # A Japanese name before the at sign: an address, the text going on after a space.
        ("mail: \u592a\u90ce\uff20gmail\u3002com \u307e\u3067", "holds an email address"),
        ("\u5c71\u7530\uff20example\u3002jp", "holds an email address"),
        ("taro\uff20gmail\u3002com\u307e\u3067", "holds an email address"),  # (Japanese after)
        ("\uff54\uff41\uff52\uff4f\uff20\uff45\uff58\u3002\uff4a\uff50", "holds an email address"),
        # A Latin place, the full stop, then a Latin word and more: an announcement.
        ("\u30e9\u30a4\u30d6\uff20WWW\u3002OPEN 18:00", None),
        ("\u30bb\u30fc\u30eb\uff20Amazon\u3002Prime Day", None),
        # An at sign before a place, then a sentence: Japanese text, no address.
        ("\u9650\u5b9aT\u30b7\u30e3\u30c4@\u6e0b\u8c37\u5e97\u3002\u9001\u6599\u7121\u6599", None),
        ("\u30e9\u30a4\u30d6\uff20\u6771\u4eac\u30c9\u30fc\u30e0\u3002\u30b0\u30c3\u30ba", None),
    ],
)
def test_an_email_in_free_text_is_found_as_input_methods_write_it(text: str, why: object) -> None:
    from target_openai_capi.mapping.personal_text import holds_personal_text

    assert holds_personal_text(text) == why


@pytest.mark.parametrize(
    "raw",
    [
        "mailto:Jane@Example.com",  # (a link's address)
        "<jane@example.com>",
        "Jane Doe <jane@example.com>",  # (as mail programs write a sender)
        '"jane@example.com"',
        "jane@example.com.",  # (a sentence's full stop)
    ],
)
def test_an_address_inside_what_is_written_around_it_is_the_address(raw: str) -> None:
    """Hashed with its wrapper, it was counted as an email and could match no one."""
    assert build_user({"email": raw}) == ({"emails_sha256": [h("jane@example.com")]}, [])


@pytest.mark.parametrize(
    ("field", "raw", "sent"),
    [
        # X-Forwarded-For as Azure's gateway writes it: each address with its client's port.
        ("ip_address", "177.139.233.139:17085, 10.0.0.6", "177.139.233.139"),
        ("ip_address", "[2001:db8::1]:443", "2001:db8::1"),
        # Japan's postal mark, and the full-width digits and hyphen of Japanese input
        ("zip", "\u3012100-0001", "100-0001"),
        ("zip", "\uff11\uff10\uff10\uff0d\uff10\uff10\uff10\uff11", "100-0001"),
        ("zip", "12345\u20106789", "12345-6789"),
    ],
)
def test_a_raw_value_written_with_what_belongs_around_it_is_sent_without_it(
    field: str, raw: str, sent: str
) -> None:
    user, notes = build_user({field: raw})
    assert notes == []
    assert list(user.values()) == [[sent]] or list(user.values()) == [sent]


def test_an_email_in_a_user_agent_is_left_out_not_sent_raw() -> None:
    """An app's user agent with a contact address went to the API raw, where a city or a
    cookie holding one is left out."""
    user, notes = build_user({"user_agent": "Mozilla/5.0 (Linux) MyShopApp/3.2 (jane@example.com)"})
    assert user == {}
    assert notes == ["user_agent holds an email address; sent without it"]


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("+1 415 555 2671;ext=123", "14155552671"),  # (RFC 3966's extension)
        ("+1 415 555 2671 ext: 12", "14155552671"),
        (
            "(" + "\t" * 240 + "1",
            None,
        ),  # (blanks the extension's pattern once tried every split of)
        ("+1 415 555 2671 / 2672", None),  # (two numbers are none: a slash after a whole one)
        ("+49 30 / 1234567", "49301234567"),  # (German: the area code, a slash, the number)
        ("+49 (0)30 / 1234567", "49301234567"),
        ("555-1234 / 555-5678", None),
    ],
)
def test_a_phone_s_extension_and_slash_are_read_as_they_are_written(
    raw: str, sent: str | None
) -> None:
    user, notes = build_user({"phone": raw})
    if sent is None:
        assert user == {}
        assert notes[0].startswith("phone is not a phone number")
    else:
        assert user == {"phone_numbers_sha256": [h(sent)]}


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("mailto:jane@example.com?subject=Hi", "jane@example.com"),
        ("jane@example.com,", "jane@example.com"),
        ("<jane@example.com>.", "jane@example.com"),
        ("'thooft@x.nl", "'thooft@x.nl"),  # (a quote that is part of the address)
        ("jane@example.com'", "jane@example.com"),  # (none is in a domain)
        ("mailto: jane@example.com", "jane@example.com"),
    ],
)
def test_what_is_around_an_address_goes_and_what_is_in_it_stays(raw: str, address: str) -> None:
    assert build_user({"email": raw}) == ({"emails_sha256": [h(address)]}, [])


def test_a_user_agent_of_a_log_that_writes_spaces_as_plus_is_sent() -> None:
    """IIS logs write spaces as +: '+301.0.0.29.124' (a version) was taken for a phone."""
    agent = "Mozilla/5.0+(iPhone;+CPU+iPhone+OS+16_6)+Instagram+301.0.0.29.124+(iPhone14,5)"
    assert build_user({"user_agent": agent}) == ({"user_agent": agent}, [])
