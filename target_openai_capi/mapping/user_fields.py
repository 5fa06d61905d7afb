"""The user identifiers a mapping may map, and the names each user object style sends them under
(tables only: identity.py builds the user object, user_values.py normalises each value)."""

from __future__ import annotations

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
