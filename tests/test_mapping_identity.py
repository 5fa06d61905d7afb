"""User identifiers: normalisation rules, SHA-256, wire names per style, notes without PII."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

import pytest

from target_openai_capi import contract
from target_openai_capi.mapping import identity
from target_openai_capi.mapping.identity import (
    PHONE_PREFIX,
    USER_FIELD_STYLES,
    USER_FIELDS,
    build_user,
    sha256_hex,
)


def h(text: str) -> str:
    """The expected digest, computed independently of the module under test."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_known_vector() -> None:
    expected = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    assert sha256_hex("test@example.com") == expected
    user, notes = build_user({"email": "  Test@Example.COM "})
    assert user == {"email_sha256": expected}
    assert notes == []


def test_every_field_has_a_rule_and_every_wire_name_a_field() -> None:
    assert set(identity._NORMALISERS) == set(USER_FIELDS)
    for style, names in USER_FIELD_STYLES.items():
        assert set(names) <= set(USER_FIELDS), style
        assert len(set(names.values())) == len(names), style


def test_every_wire_name_is_accepted_by_the_event_schema() -> None:
    accepted = contract.USER_FIELDS
    for style, names in USER_FIELD_STYLES.items():
        assert set(names.values()) <= accepted, style


def test_phone_prefix_is_digits_only() -> None:
    # Changing it is a deliberate decision: the spec says digits with country code.
    assert PHONE_PREFIX == ""


@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        ("email", "test@example.com", "test@example.com"),
        ("email", "  Ada.Lovelace+news@Example.CO.UK\t", "ada.lovelace+news@example.co.uk"),
        ("first_name", "  Ada ", "ada"),
        ("first_name", "Mary  Ann", "mary ann"),
        ("first_name", "José", "josé"),
        ("last_name", "O'Brien", "o'brien"),
        ("last_name", "VAN DER BERG", "van der berg"),
        ("city", " San   Francisco ", "san francisco"),
        ("city", "MÜNCHEN", "münchen"),
        ("state", "CA", "ca"),
        ("state", " New York ", "new york"),
        ("zip", "94103", "94103"),
        ("zip", "94103-1234", "94103"),  # US ZIP+4 -> the five-digit ZIP
        ("zip", "SW1A 1AA", "sw1a1aa"),
        ("zip", " 75 008 ", "75008"),
        ("zip", "100-0001", "100-0001"),  # a Japanese code keeps its hyphen
        ("zip", 94103, "94103"),
        ("zip", Decimal("94103"), "94103"),
        ("country", "US", "us"),
        ("country", "us", "us"),
        ("country", " Fr ", "fr"),
        ("country", "UK", "gb"),
        ("date_of_birth", "1990-05-17", "19900517"),
        ("date_of_birth", "19900517", "19900517"),
        ("date_of_birth", "1990-05-17T00:00:00Z", "19900517"),
        ("date_of_birth", date(1990, 5, 17), "19900517"),
        ("date_of_birth", datetime(1990, 5, 17, 8, 30), "19900517"),
        ("external_id", " cust_42 ", "cust_42"),
        ("external_id", "CUST-42", "CUST-42"),  # ids keep their case
        ("external_id", 12345, "12345"),
        ("external_id", Decimal("12345"), "12345"),
        ("external_id", Decimal("1.2345E+4"), "12345"),
        ("external_id", 12345.0, "12345"),
    ],
)
def test_hashed_fields_hash_the_normalised_value(field: str, raw: object, normalised: str) -> None:
    for style in ("singular", "plural"):
        key = USER_FIELD_STYLES[style].get(field)
        if key is None:
            continue
        user, notes = build_user({field: raw}, style)
        assert notes == []
        expected = h(normalised)
        assert user == {key: expected if style == "singular" else [expected]}


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        ("+1 (650) 555-1234", None, "16505551234"),
        ("+1 650 555 1234", "GB", "16505551234"),  # "+" wins over the default region
        ("(650) 555-1234", "US", "16505551234"),
        ("650.555.1234", "us", "16505551234"),
        ("16505551234", "US", "16505551234"),
        (16505551234, "US", "16505551234"),
        (Decimal("16505551234"), "US", "16505551234"),
        ("+1 650 555 1234 ext. 89", None, "16505551234"),  # extension dropped
        ("1-800-FLOWERS", "US", "18003569377"),
        ("+44 20 7946 0958", None, "442079460958"),  # United Kingdom
        ("020 7946 0958", "GB", "442079460958"),
        ("+49 30 901820", None, "4930901820"),  # Germany
        ("030 901820", "DE", "4930901820"),
        ("06 12 34 56 78", "FR", "33612345678"),  # France
        ("0033 6 12 34 56 78", "FR", "33612345678"),  # international prefix
        ("+91 98765 43210", None, "919876543210"),  # India
        ("098765 43210", "IN", "919876543210"),
        ("+81 3-1234-5678", None, "81312345678"),  # Japan
        ("+86 138 0013 8000", None, "8613800138000"),  # China
        ("+55 11 91234-5678", None, "5511912345678"),  # Brazil
    ],
)
def test_phone(raw: object, region: str | None, digits: str) -> None:
    user, notes = build_user({"phone": raw}, default_phone_region=region)
    assert notes == []
    assert user == {"phone_number_sha256": h(digits)}


@pytest.mark.parametrize(
    ("raw", "region", "note"),
    [
        (
            "6505551234",
            None,
            "phone has no country code (+...) and default_phone_region is not set",
        ),
        ("123", "US", "phone is not a valid phone number"),
        ("+1 650 555 12345678", None, "phone is not a valid phone number"),
        ("call me", "US", "phone is not a valid phone number"),
        (True, "US", "phone is not a valid phone number"),
        ({"n": 1}, "US", "phone is not a valid phone number"),
    ],
)
def test_invalid_phone_is_dropped_with_a_note(raw: object, region: str | None, note: str) -> None:
    user, notes = build_user({"phone": raw, "email": "a@b.co"}, default_phone_region=region)
    assert user == {"email_sha256": h("a@b.co")}
    assert notes == [note + "; sent without it"]


@pytest.mark.parametrize(
    ("field", "raw", "reason"),
    [
        ("email", "not-an-email", "is not an email address"),
        ("email", "a@@b.co", "is not an email address"),
        ("email", "a@b@c.co", "is not an email address"),
        ("email", "@example.com", "is not an email address"),
        ("email", "ada@", "is not an email address"),
        ("email", "ada lovelace@example.com", "is not an email address"),
        ("email", 42, "is not an email address"),
        ("country", "United States", "is not an ISO 3166-1 alpha-2 country code"),
        ("country", "USA", "is not an ISO 3166-1 alpha-2 country code"),
        ("country", "XX", "is not an ISO 3166-1 alpha-2 country code"),
        ("country", 840, "is not an ISO 3166-1 alpha-2 country code"),
        ("date_of_birth", "17/05/1990", "is not an ISO 8601 date (YYYY-MM-DD)"),
        ("date_of_birth", "1990-02-30", "is not an ISO 8601 date (YYYY-MM-DD)"),
        ("date_of_birth", 19900517, "is not an ISO 8601 date (YYYY-MM-DD)"),
        ("first_name", 7, "is not text"),
        ("city", Decimal("5"), "is not text"),
        ("external_id", True, "is not text or a number"),
        ("external_id", {"id": 1}, "is not text or a number"),
        ("external_id", Decimal("NaN"), "is not text or a number"),
        ("zip", True, "is not a postal code"),
        ("ip_address", "999.1.1.1", "is not an IPv4 or IPv6 address"),
        ("ip_address", "1.2.3.4:8080", "is not an IPv4 or IPv6 address"),
        ("ip_address", 16909060, "is not an IPv4 or IPv6 address"),
        ("user_agent", 5, "is not text"),
    ],
)
def test_invalid_values_are_dropped_with_a_note(field: str, raw: object, reason: str) -> None:
    style = "plural" if field == "date_of_birth" else "singular"  # no singular date_of_birth
    user, notes = build_user({field: raw, "phone": "+16505551234"}, style)
    assert user == {
        USER_FIELD_STYLES[style]["phone"]: h("16505551234")
        if style == "singular"
        else [h("16505551234")]
    }
    assert notes == [f"{field} {reason}; sent without it"]


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("203.0.113.7, 10.0.0.1, 10.0.0.2", "203.0.113.7"),  # X-Forwarded-For
        ("::ffff:203.0.113.7", "::ffff:cb00:7107"),
    ],
)
def test_ip_address_is_sent_raw_and_compressed(raw: str, sent: str) -> None:
    for style in ("singular", "plural"):
        assert build_user({"ip_address": raw}, style) == ({"ip_address": sent}, [])


def test_user_agent_is_sent_raw() -> None:
    agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15"
    for style in ("singular", "plural"):
        assert build_user({"user_agent": f"  {agent} "}, style) == ({"user_agent": agent}, [])


@pytest.mark.parametrize(
    "field", ["email", "phone", "external_id", "first_name", "city", "zip", "country"]
)
def test_existing_digests_pass_through_unhashed(field: str) -> None:
    digest = h("someone@example.com")
    key = USER_FIELD_STYLES["singular"][field]
    assert build_user({field: digest}) == ({key: digest}, [])
    assert build_user({field: f" {digest.upper()} "}) == ({key: digest}, [])


def test_a_63_character_hex_string_is_not_a_digest() -> None:
    almost = h("x")[:63]
    assert build_user({"external_id": almost}) == ({"external_id_sha256": h(almost)}, [])


@pytest.mark.parametrize("blank", [None, "", "   ", [], [None, ""]])
def test_blank_values_are_skipped_silently(blank: object) -> None:
    assert build_user({"email": blank, "phone": blank, "ip_address": blank}) == ({}, [])


def test_empty_input_gives_an_empty_user() -> None:
    assert build_user({}) == ({}, [])
    assert build_user({}, "plural") == ({}, [])


def test_singular_and_plural_wire_names() -> None:
    values = {
        "email": "a@b.co",
        "phone": "+16505551234",
        "external_id": "c1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "city": "London",
        "state": "LDN",
        "zip": "N1 9GU",
        "country": "GB",
        "date_of_birth": "1815-12-10",
        "ip_address": "203.0.113.7",
        "user_agent": "UA",
    }
    singular, notes = build_user(values, "singular")
    assert notes == []
    assert singular == {
        "email_sha256": h("a@b.co"),
        "phone_number_sha256": h("16505551234"),
        "external_id_sha256": h("c1"),
        "first_name_sha256": h("ada"),
        "last_name_sha256": h("lovelace"),
        "city_sha256": h("london"),
        "state_sha256": h("ldn"),
        "zip_code_sha256": h("n19gu"),
        "country_sha256": h("gb"),
        "ip_address": "203.0.113.7",
        "user_agent": "UA",
    }  # date_of_birth has no singular wire name: not sent
    plural, notes = build_user(values, "plural")
    assert notes == []
    assert plural == {
        "emails_sha256": [h("a@b.co")],
        "phone_numbers_sha256": [h("16505551234")],
        "external_ids_sha256": [h("c1")],
        "first_names_sha256": [h("ada")],
        "last_names_sha256": [h("lovelace")],
        "date_of_births_sha256": [h("18151210")],
        "ip_address": "203.0.113.7",
        "user_agent": "UA",
    }  # city, state, zip, country have no plural wire names: not sent


def test_plural_style_hashes_every_value_once() -> None:
    user, notes = build_user({"email": ["a@b.co", " A@B.CO ", "c@d.co", None, "broken"]}, "plural")
    assert user == {"emails_sha256": [h("a@b.co"), h("c@d.co")]}
    assert notes == ["email value 4 of 4 is not an email address; sent without it"]


def test_plural_style_with_only_bad_values() -> None:
    user, notes = build_user({"email": ["x", "y"]}, "plural")
    assert user == {}
    assert notes == [
        "email value 1 of 2 is not an email address; sent without it",
        "email value 2 of 2 is not an email address; sent without it",
    ]


def test_singular_style_takes_the_first_good_value_of_a_list() -> None:
    user, notes = build_user({"email": ["broken", "a@b.co", "c@d.co"]})
    assert user == {"email_sha256": h("a@b.co")}
    assert notes == ["email has 3 values; sent one (singular user style)"]
    assert build_user({"email": ["a@b.co"]}) == ({"email_sha256": h("a@b.co")}, [])


SECRETS = {
    "email": "ada.secret@example.com@",
    "phone": "+1 650 555 12345678",
    "first_name": 1234567,
    "country": "Secretland",
    "date_of_birth": "17/05/1990",
    "ip_address": "999.168.1.1",
    "zip": ["94103"],
}


@pytest.mark.parametrize("style", ["singular", "plural"])
def test_notes_never_contain_raw_values(style: str) -> None:
    values = {**SECRETS, "email": [SECRETS["email"], "other.secret@"]}
    _user, notes = build_user(values, style)
    assert notes
    text = " ".join(notes)
    for fragment in ("ada", "secret", "555", "1234567", "Secretland", "17/05", "999", "94103"):
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
    assert user == {"email_sha256": h("repeat@example.com"), "zip_code_sha256": h("94103")}
    assert notes == ["country is not an ISO 3166-1 alpha-2 country code; sent without it"]


def test_the_cache_keeps_text_and_other_types_apart() -> None:
    assert build_user({"external_id": 1})[0] == {"external_id_sha256": h("1")}
    # True == 1 (and hashes alike), but a boolean is not an id.
    user, notes = build_user({"external_id": True})
    assert user == {}
    assert notes == ["external_id is not text or a number; sent without it"]
    assert build_user({"external_id": Decimal("1.0")})[0] == {"external_id_sha256": h("1")}


def test_plural_style_sends_one_value_as_a_list() -> None:
    user, _ = build_user({"email": "a@b.co", "ip_address": "10.0.0.1"}, style="plural")
    assert user == {"emails_sha256": [h("a@b.co")], "ip_address": "10.0.0.1"}


def _phone_corpus() -> list[str]:
    """International numbers of every region and type, written several ways, and near misses."""
    import random

    import phonenumbers

    rng = random.Random(5)
    fmt = phonenumbers.PhoneNumberFormat
    examples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):  # every PhoneNumberType with examples
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                examples.append(number)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            examples.append(number)
    texts = []
    for number in examples:
        international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
        e164 = phonenumbers.format_number(number, fmt.E164)
        code = str(number.country_code)
        national = e164[1 + len(code) :]
        texts += [international, e164, international.replace(" ", "-"), f"+{code} ({national})"]
        texts += [e164[:-1], e164 + "5", f"+{code}0{national}", f"+{code} {national[::-1]}"]
        texts += [f"+{code}." + ".".join(national), f"+{code}{national}1234"]
        digits = "".join(rng.choice("0123456789") for _ in national)
        texts.append(f"+{code}{digits}")
    texts += ["+" + str(rng.randrange(10 ** rng.randrange(5, 18))) for _ in range(3000)]
    texts += ["+1 650" + " " * 250 + "555 1234", "+1 650" + " " * 240 + "555 1234"]  # 250 chars
    return texts


def test_the_international_number_shortcut_agrees_with_libphonenumber() -> None:
    import phonenumbers

    def reference(text: str, region: str | None) -> str | None:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]

    texts = _phone_corpus()
    shortcut = {text: identity._international_digits(text) for text in texts}
    for text, digits in shortcut.items():
        if digits is not None:  # whatever default_phone_region is set
            assert digits == reference(text, None) == reference(text, "US"), text
            assert digits == reference(text, "DE"), text
    # The shortcut is taken for most well-formed numbers (else it would save nothing).
    taken = sum(digits is not None for digits in shortcut.values())
    assert taken > len(texts) / 3, (taken, len(texts))
