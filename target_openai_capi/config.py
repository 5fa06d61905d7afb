"""The target's settings: JSON schema with descriptions, and checks that span several settings."""

from __future__ import annotations

import difflib
import os
import re
import stat
import sys
import time
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from singer_sdk import typing as th

from target_openai_capi.contract import EVENT_TYPES, MAX_EVENTS_PER_REQUEST
from target_openai_capi.log_safety import MIN_HIDDEN_LENGTH, is_loopback
from target_openai_capi.mapping.constants import constant_problems
from target_openai_capi.mapping.event import fields_not_carried
from target_openai_capi.mapping.identity import (
    DEFAULT_USER_FIELD_STYLE,
    USER_FIELD_STYLES,
    USER_FIELDS,
    check_user_settings,
    unsendable_user_field,
)
from target_openai_capi.mapping.stream_mapping import (
    EVENT_FIELDS,
    StreamMapping,
    compile_stream_mapping,
)
from target_openai_capi.pipeline.coverage import KINDS
from target_openai_capi.presets import apply_preset

DEFAULT_API_URL = "https://bzr.openai.com/v1/events"
API_KEY_PREFIX = "sk-svcacct-"
DEFAULT_INTEGRATION_SOURCE = "target-openai-capi"
# The official rule for integration_source (the API then trims and lowercases it).
INTEGRATION_SOURCE_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_STREAM_ENTRY = th.ObjectType(
    th.Property(
        "preset",
        th.StringType,
        description="A built-in mapping to start from (docs/cookbook.md); `fields` override it.",
    ),
    th.Property(
        "event_type",
        th.StringType(allowed_values=list(EVENT_TYPES)),
        description="The CAPI event type of every record of this stream.",
    ),
    th.Property(
        "event_type_from",
        th.StringType,
        description=(
            "Instead of event_type: a JMESPath expression giving an event name per record, "
            "translated through `event_types` and the built-in table of common names "
            "(GA4, Segment, Meta). Defaults to the record's `type` property."
        ),
    ),
    th.Property(
        "event_types",
        th.ObjectType(additional_properties=th.StringType(allowed_values=list(EVENT_TYPES))),
        description="Event name -> CAPI event type, merged over the built-in table.",
    ),
    th.Property(
        "filter",
        th.StringType,
        description="JMESPath expression; only records where it is truthy become events.",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        description="Override the global dry_run for this stream.",
    ),
    th.Property(
        "skip_unmatchable",
        th.BooleanType,
        description=(
            "Skip (count, do not send) events that carry none of match_identifiers: events "
            "OpenAI cannot tie to an ad interaction. Off by default."
        ),
    ),
    th.Property(
        "match_identifiers",
        th.ArrayType(th.StringType(allowed_values=list(KINDS))),
        description=(
            "With skip_unmatchable: the identifiers of which an event must carry one "
            "(default oppref, obref, email, phone, external_id, android_advertising_id: any "
            "that matches on its own)."
        ),
    ),
    th.Property(
        "keep_source_url_query",
        th.BooleanType,
        description=(
            "Send source_url with its query string and fragment. Off by default: source_url is "
            "sent as origin and path, as OpenAI's implementation guide asks, since queries carry "
            "tokens (Shopify's order status ?key=) and personal data (and a path holding an "
            "email address or a +phone number is cut before that part)."
        ),
    ),
    th.Property(
        "fields",
        th.ObjectType(
            *(
                th.Property(name, th.StringType, description=text)
                for name, text in EVENT_FIELDS.items()
            ),
            additional_properties=False,
        ),
        description=(
            "Event field -> JMESPath expression over the record. An unmapped field is read "
            "from the record's property of the same name when there is one."
        ),
    ),
    additional_properties=False,
)

CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "pixel_id",
        th.StringType(min_length=1),
        required=True,
        description="The pixel id (shared by the browser pixel and the Conversions API).",
    ),
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        description=(
            "Conversions API key (prefix sk-svcacct-, scope ads.third_party_events.write). "
            "An Advertiser API key is refused by the API."
        ),
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="Events endpoint. Plain http:// is allowed only for loopback hosts.",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description=(
            "Send every request with validate_only: the API validates, records nothing. A dry "
            "run writes no STATE, so the real run after it reads the same records."
        ),
    ),
    th.Property(
        "batch_size",
        th.IntegerType(minimum=1, maximum=MAX_EVENTS_PER_REQUEST),
        default=MAX_EVENTS_PER_REQUEST,
        description=f"Events per request, 1 to {MAX_EVENTS_PER_REQUEST} (the API's limit).",
    ),
    th.Property(
        "streams",
        th.ObjectType(additional_properties=_STREAM_ENTRY),
        default={},
        description=(
            "Singer stream name -> how its records become events (event_type or "
            "event_type_from, filter, fields, preset, dry_run, skip_unmatchable, "
            "keep_source_url_query). Streams without an entry are skipped."
        ),
    ),
    th.Property(
        "allow_unmatched_streams",
        th.BooleanType,
        default=False,
        description=(
            "A run in which records arrived but none matched an entry under `streams` fails "
            "(exit 1, no STATE), since an entry is most likely misnamed; so does one in which a "
            "stream without an entry looks like an entry misspelt (`subscriptions` for "
            "`streams.subscription`, `public-orders` for `orders`) and no stream of the "
            "entry's name arrived by the end (said at the stream's first record; no STATE "
            "is written from then until one does). An entry whose stream's SCHEMA arrived matched, "
            "records or not. true lets both go on, the records of streams without an entry "
            "counted as skipped."
        ),
    ),
    th.Property(
        "user_field_style",
        th.StringType(allowed_values=sorted(USER_FIELD_STYLES)),
        default=DEFAULT_USER_FIELD_STYLE,
        description=(
            "Shape of the user object: plural, OpenAI's current one (emails_sha256, "
            "phone_numbers_sha256, names, regions, cities, postal_codes, countries as lists of "
            "up to three); singular, the earlier official one (email_sha256, external_id_sha256, "
            "country, city, zip_code), which has no phone, names or region."
        ),
    ),
    th.Property(
        "integration_source",
        th.StringType,
        default=DEFAULT_INTEGRATION_SOURCE,
        description=(
            "Sent as integration_source at the top of every request: which integration sent "
            "the batch. 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or "
            "digit. Set it to your own name if you send on behalf of advertisers; null or an "
            "empty text (which Meltano can pass, not null) omits it."
        ),
    ),
    th.Property(
        "default_phone_region",
        th.StringType(min_length=2, max_length=2),
        description="ISO 3166-1 alpha-2 region for phone numbers written without a +country code.",
    ),
    th.Property(
        "dead_letter_path",
        th.StringType,
        description=(
            "JSONL file for rejected records, with stage and reason (created 0600). "
            "It is a Singer stream: fix the cause and replay it with --input."
        ),
    ),
    th.Property(
        "request_log_path",
        th.StringType,
        description=(
            "JSONL file of every request body exactly as sent (events already hashed; never "
            "the key or headers) with its answer's status: with dry_run, a preview of a real run."
        ),
    ),
    th.Property(
        "on_rejected",
        th.StringType(allowed_values=["dead_letter", "fail"]),
        default="dead_letter",
        description=(
            "dead_letter: record the rejection and go on; fail: stop the run (exit 1), but, "
            "with a dead_letter_path, not for a record older than 7 days, which no rerun can "
            "send (it is kept there)."
        ),
    ),
    th.Property(
        "validate_first",
        th.BooleanType,
        default=False,
        description="Validate each batch with validate_only before sending it for real.",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=32),
        default=4,
        description="Batches in flight at once. STATE still waits for every batch before it.",
    ),
    th.Property(
        "worker_processes",
        th.IntegerType(minimum=0, maximum=16),
        description=(
            "Processes that decode, check and map records beside the main one, which reads, "
            "batches, sends and settles them in input order. Default: one per CPU core (at most "
            "4) on a machine of two or more; 0 does everything in one process."
        ),
    ),
    th.Property(
        "max_attempts",
        th.IntegerType(minimum=1, maximum=100),
        default=8,
        description="Attempts per request on 408, 429, 5xx and network errors.",
    ),
    th.Property(
        "max_retry_seconds",
        th.NumberType(minimum=0, maximum=86_400),
        default=300,
        description=(
            "Bound on the total time spent retrying one request (a batch, a part of one split "
            "to find a bad event, a pass of validate_first): no attempt starts past it, and one "
            "under way may take up to request_timeout_seconds; then the run fails."
        ),
    ),
    th.Property(
        "request_timeout_seconds",
        th.NumberType(minimum=1, maximum=3_600),
        default=60,
        description=(
            "The longest one request may take, from connecting to the answer's last byte; "
            "a slower one is retried like a network error."
        ),
    ),
    th.Property(
        "stop_grace_seconds",
        th.NumberType(minimum=0, maximum=3_600),
        default=20,
        description=(
            "After SIGTERM or Ctrl-C, how long the target goes on delivering what is batched: "
            "no request or retry starts past it (one under way may take up to "
            "request_timeout_seconds); what is not delivered by then is left to the next run, "
            "which sends it again (exit 1, no STATE past it). A second signal stops at once."
        ),
    ),
).to_dict()


# The SDK's flattening settings, which the target does not declare (it has not the capability):
# known, so that `flattening_enabled: false` is no unknown setting; on, it is refused.
FLATTENING_SETTINGS = ("flattening_enabled", "flattening_max_depth")

# Names a user may give a dry run (the API's own field among them): ignored like any unknown
# setting, each would send for real what was meant to be validated only.
# Names that ask for a dry run, folded (_folded) and with `_` left out (and any holding
# "dryrun").
_DRY_RUN_NAMES = frozenset({"validateonly", "testmode", "validate"})
# Whole TARGET_OPENAI_CAPI_* variable names (folded, `_` left out) that ask for a dry run.
_DRY_RUN_VARIABLES = _DRY_RUN_NAMES | {
    "dryrun",
    "dryruns",
    "isdryrun",
    "dryrunonly",
    "dryrunmode",
    "dryrunenabled",
    "enabledryrun",
    "usedryrun",
    "dodryrun",
}


def unknown_settings(
    config: Mapping[str, Any], known: Collection[str]
) -> tuple[list[str], list[str]]:
    """(problems, warnings) for settings of the config that are no setting of the target: one
    meant as a dry run is a problem (the run would send for real); any other is ignored, with a
    warning naming the nearest setting."""
    problems, warnings = [], []
    by_folded = {_folded(str(k)): str(k) for k in known}
    for key in sorted(set(config) - set(known), key=str):
        name = str(key) if len(str(key)) <= 80 else str(key)[:77] + "..."  # (as it is said)
        if len(str(key)) > 80:  # (no setting's name is that long: nothing near it either)
            warnings.append(f"{name!r} is not a setting of target-openai-capi: ignored")
            continue
        if _means_a_dry_run(str(name)):
            problems.append(
                f"{name!r} is not a setting of target-openai-capi: for a dry run (every request "
                "with validate_only, nothing recorded) set dry_run: true"
            )
            continue
        near = difflib.get_close_matches(_folded(str(name)), list(by_folded), n=1, cutoff=0.75)
        meant = by_folded[near[0]] if near else None
        if meant == "streams" and "streams" not in config:
            # (without it nothing is sent, and STATE would go past every record)
            problems.append(
                f"{name!r} is not a setting of target-openai-capi: the setting that maps streams "
                "to events is 'streams'"
            )
            continue
        hint = f" (did you mean {meant!r}?)" if meant else ""
        warnings.append(f"{name!r} is not a setting of target-openai-capi: ignored{hint}")
    return problems, warnings


def _folded(name: str) -> str:
    """A setting's name as it may be miswritten: case, spaces and hyphens aside."""
    return re.sub(r"[\s-]+", "_", name.strip()).lower()


def _means_a_dry_run(name: str) -> bool:
    """A name that is no setting but asks for a dry run (DRY_RUN, dry-run, validate_only,
    dry_run_enabled, ...)."""
    folded = _folded(name).replace("_", "")
    return "dryrun" in folded or folded in _DRY_RUN_NAMES


def _variable_means_a_dry_run(suffix: str) -> bool:
    """A TARGET_OPENAI_CAPI_<suffix> variable that asks for a dry run: not DRY_RUN itself, nor
    what Meltano passes under such names (a stream's own `dry_run` as STREAMS_ORDERS_DRY_RUN;
    the settings of a loader inheriting from this one, named target-openai-capi-dry-run, as
    DRY_RUN_API_KEY, DRY_RUN_STREAM_MAPS, ...): whole names only."""
    if suffix == "DRY_RUN":
        return False
    # (the whole name only: DRY_RUN_STREAM_MAPS is an inheriting loader's stream_maps)
    return _folded(suffix).replace("_", "") in _DRY_RUN_VARIABLES


# An OpenAI key as it begins (sk-svcacct-, sk-proj-, ...), or a legacy one: sk- and one long
# token (a name such as sk-planet-connector is no key).
# The kinds of OpenAI key, by the word after `sk-` (a service account's, a project's, an
# admin's, a user's).
_KEY_KINDS = "svcacct|proj|admin|None"
_LOOKS_LIKE_A_KEY = re.compile(rf"sk-(?:{_KEY_KINDS})-|sk-[A-Za-z0-9]{{20,}}$")


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems that no single setting's schema can see; each says what to fix."""
    problems = []
    if "api_url" in config and not str(config["api_url"]).strip():
        problems.append("api_url is empty: leave it out for the API's own URL, or set one")
    elif isinstance(config.get("api_url"), str) and config["api_url"] != config["api_url"].strip():
        # (a trailing space went into every request's path: 404 at the first request)
        problems.append("api_url has spaces or line breaks around it: remove them")
    try:
        url = urlsplit(str(config.get("api_url") or DEFAULT_API_URL))
        url.port  # noqa: B018  (raises ValueError for a port that is not a number or out of range)
    except ValueError as exc:
        problems.append(f"api_url is not a URL ({exc}): use https://host/v1/events")
        url = urlsplit(DEFAULT_API_URL)
    # (no user:password@ shown: host and port only)
    host = f"[{url.hostname}]" if url.hostname and ":" in url.hostname else url.hostname or ""
    shown = url._replace(
        netloc=host + (f":{url.port}" if url.port is not None else ""), query="", fragment=""
    ).geturl()
    if url.scheme not in ("https", "http") or not url.hostname:
        problems.append(f"api_url must be an https:// URL, got {shown!r}")
    elif url.scheme == "http" and not is_loopback(url.hostname):
        problems.append(
            f"api_url uses plain http:// for {url.hostname!r}: only loopback hosts (the local "
            "sandbox) may use http; use https:// so the API key never travels unencrypted"
        )
    if url.username is not None or url.password is not None:
        problems.append(
            "api_url must not carry credentials (user:password@host): the Conversions API key "
            "goes in api_key (the URL is not shown here)"
        )
    key = str(config.get("api_key") or "").strip()
    if len(key) >= MIN_HIDDEN_LENGTH and key in unquote(str(config.get("api_url") or "")):
        problems.append(
            "api_url holds the API key: the key goes in api_key only, never in the URL (which "
            "error messages show). The URL is not shown here; rotate the key if it was shared"
        )
    pixel = str(config.get("pixel_id") or "").strip()
    if (len(key) >= MIN_HIDDEN_LENGTH and key in pixel) or pixel.startswith("sk-"):
        # (the pixel id goes in every request's URL, which servers and proxies log)
        problems.append(
            "pixel_id holds an API key: it takes the pixel's id, the key goes in api_key only. "
            "The value is not shown here; rotate the key if it was shared"
        )
    elif any(ch.isspace() or not ch.isprintable() for ch in pixel):
        problems.append(
            f"pixel_id {pixel[:40]!r} holds whitespace or control characters: copy it again"
        )
    if not key:
        problems.append("api_key is empty: set a Conversions API key (prefix sk-svcacct-)")
    elif key[:1] in ("'", '"') and key[-1:] == key[:1]:
        problems.append(
            "api_key is written in quotes (as a .env or docker --env-file line may keep them): "
            "give the key without them (the key is not shown here)"
        )
    elif not key.isascii() or any(ch.isspace() or not ch.isprintable() for ch in key):
        problems.append(
            "api_key holds whitespace or characters a key never has: copy it again "
            "(the key is not shown here)"
        )
    source = setting(config, "integration_source")
    if isinstance(source, str) and (
        (len(key) >= MIN_HIDDEN_LENGTH and key in source)
        or _LOOKS_LIKE_A_KEY.match(source.strip()) is not None
    ):
        # (it goes in every request's body, which the API keeps)
        problems.append(
            "integration_source holds an API key: it takes the integration's name, the key goes "
            "in api_key only. The value is not shown here; rotate the key if it was shared"
        )
    elif source is not None and not (
        isinstance(source, str)
        and (not source.strip() or INTEGRATION_SOURCE_RULE.fullmatch(source.strip()))
    ):
        problems.append(
            "integration_source must be 1-64 ASCII letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit (got {str(source)[:80]!r}); or null or '' to send none"
        )
    dead, requests = config.get("dead_letter_path"), config.get("request_log_path")
    for name, path in (("dead_letter_path", dead), ("request_log_path", requests)):
        if isinstance(path, str) and "\x00" in path:
            problems.append(f"{name} holds a NUL character, which no file's name can")
            dead, requests = (None, requests) if name == "dead_letter_path" else (dead, None)
            continue
        if isinstance(path, str) and path.endswith(("/", os.sep)):
            problems.append(
                f"{name} ends with a slash, so it names a folder: give the file's path in it "
                "(such as dead-letters/orders.jsonl)"
            )
            continue
        try:
            if isinstance(path, str):
                os.fsencode(path)
        except UnicodeEncodeError:  # (a C or POSIX locale: names are ASCII to Python then)
            problems.append(
                f"{name} holds characters this system's file names cannot have here (its "
                f"file system encoding is {sys.getfilesystemencoding()}): run with a UTF-8 "
                "locale (LANG=C.UTF-8) or PYTHONUTF8=1, or give an ASCII path"
            )
            dead, requests = (None, requests) if name == "dead_letter_path" else (dead, None)
            continue
        if isinstance(path, str) and (path == "~" or path.startswith("~/")):
            # (fill_from_environment found no home: a shell leaves ~name of no user as it is)
            problems.append(
                f"{name} starts with ~/, but there is no home directory here (HOME is unset "
                "and the user has none): give the file's full path"
            )
    if dead and requests and _same_file(str(dead), str(requests)):
        problems.append(
            "dead_letter_path and request_log_path name the same file: the request log's lines "
            "would break the dead-letter file's replay; give each its own file"
        )
    if config.get("flattening_enabled"):
        problems.append(
            "flattening_enabled is not supported: mappings read the record's nested paths as the "
            "tap sends them (customer.email), which flattening renames; remove it and map the "
            "nested fields with JMESPath"
        )
    try:
        check_user_settings(
            str(setting(config, "user_field_style")), setting(config, "default_phone_region")
        )
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def setting(config: Mapping[str, Any], name: str) -> Any:
    """A setting's value, or its default from the config schema: the one place defaults live
    (the SDK fills them in too; this also serves a config built without the SDK)."""
    value = config.get(name)
    if value is None and name not in config:
        return CONFIG_SCHEMA["properties"][name].get("default")
    return value


# The one setting whose null means something of its own (send none), not "the default".
NULL_IS_A_VALUE = frozenset({"integration_source"})


ENV_PREFIX = "TARGET_OPENAI_CAPI_"
_TRUE_WORDS = ("true", "1", "yes", "on")  # (the SDK's, for --config ENV)
_FALSE_WORDS = ("false", "0", "no", "off", "")  # (empty: the SDK reads false)


def _types_of(name: str, schema: Mapping[str, Any] = CONFIG_SCHEMA) -> list[str]:
    types = schema["properties"][name].get("type", [])
    return [types] if isinstance(types, str) else list(types)


_NUMBER_SETTINGS = tuple(n for n in CONFIG_SCHEMA["properties"] if "number" in _types_of(n))
_INTEGER_SETTINGS = tuple(n for n in CONFIG_SCHEMA["properties"] if "integer" in _types_of(n))


def environment_problems(
    environ: Mapping[str, str], schema: Mapping[str, Any] = CONFIG_SCHEMA
) -> list[str]:
    """What is wrong with the TARGET_OPENAI_CAPI_* variables of settings that are a boolean, a
    whole number or a number (--config ENV), each naming its variable: the SDK would take any
    word but true/1/yes/on for false (a typo in DRY_RUN sent for real), and stop at a bad number
    without saying which. `schema`: the settings', the SDK's own among them when known."""
    problems = []
    for name in schema["properties"]:
        variable = ENV_PREFIX + name.upper()
        if variable not in environ:
            continue
        text, types = environ[variable].strip(), _types_of(name, schema)
        # (a boolean as the SDK reads it: not trimmed, so "true " would be false)
        if "boolean" in types and environ[variable].lower() not in _TRUE_WORDS + _FALSE_WORDS:
            problems.append(f"{variable} is {_quoted(environ[variable])}: use true or false")
        elif "integer" in types and not re.fullmatch(r"[+-]?\d{1,18}", text):
            problems.append(f"{variable} is {_quoted(text)}: use a whole number")
        elif "number" in types and _number(text) is None:
            problems.append(f"{variable} is {_quoted(text)}: use a number")
    return problems


def _quoted(value: str) -> str:
    """A variable's value as a message quotes it: its start, unless it may be an API key (one
    put in the wrong variable), which no message shows even in part."""
    if _KEY_START.search(value):
        return "a value like an API key (not shown)"
    return repr(value[:40])


# The start of an OpenAI key (`sk-svcacct-`, `sk-proj-`, `sk-`), not inside a word (`task-1`).
_KEY_START = re.compile(r"(?<![A-Za-z0-9])sk-", re.IGNORECASE)


def flattening_from_environment(config: dict[str, Any], environ: Mapping[str, str]) -> None:
    """TARGET_OPENAI_CAPI_FLATTENING_ENABLED set true, with --config ENV: read into the config,
    so that it is refused as `flattening_enabled: true` in a file is (the SDK does not read
    the variable of a setting the target does not declare, and it went without a word)."""
    value = environ.get(ENV_PREFIX + "FLATTENING_ENABLED")
    if value is not None and value.strip().lower() in _TRUE_WORDS:
        config.setdefault("flattening_enabled", True)


def unknown_variables(
    environ: Mapping[str, str], config: Mapping[str, Any], known: Collection[str]
) -> tuple[list[str], list[str]]:
    """(problems, warnings) for TARGET_OPENAI_CAPI_* variables that are no setting's, when the
    config is read from the environment (--config ENV), as `unknown_settings` says a config
    file's unknown keys. (A dry run's are dry_run_variable_problems'; Meltano's own extras,
    `TARGET_OPENAI_CAPI__...`, are not settings.)"""
    problems, warnings = [], []
    by_folded = {_folded(str(k)): str(k) for k in known}
    for variable in sorted(environ):
        suffix = variable[len(ENV_PREFIX) :]
        if not variable.startswith(ENV_PREFIX) or suffix.startswith("_") or not suffix:
            continue
        if suffix.lower() in known or _variable_means_a_dry_run(suffix):
            continue
        near = difflib.get_close_matches(_folded(suffix), list(by_folded), n=1, cutoff=0.75)
        meant = by_folded[near[0]] if near else None
        if meant == "streams" and "streams" not in config:
            problems.append(
                f"{variable} is no setting's variable: the one that maps streams to events is "
                f"{ENV_PREFIX}STREAMS"
            )
            continue
        hint = f" (did you mean {ENV_PREFIX}{meant.upper()}?)" if meant else ""
        warnings.append(f"{variable} is no setting's variable: ignored{hint}")
    return problems, warnings


def environment_beside_a_file(
    config: dict[str, Any], environ: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """(problems, warnings) about TARGET_OPENAI_CAPI_* variables when the config came from a
    file, which the SDK reads instead of the environment. DRY_RUN is read when the config has
    no dry_run (a Meltano loader without declared settings gets none, and a dry run asked
    for must not send for real); the variable of any other setting the config lacks is named
    in a warning, as not read (api_key and pixel_id are: fill_from_environment)."""
    problems, warnings = [], []
    variable = ENV_PREFIX + "DRY_RUN"
    word = environ.get(variable, "").strip().lower()
    if "dry_run" not in config and variable in environ:
        if word in _TRUE_WORDS + _FALSE_WORDS:
            config["dry_run"] = word in _TRUE_WORDS
        else:
            problems.append(f"{variable} is {_quoted(environ[variable])}: use true or false")
    elif variable in environ and (word in _TRUE_WORDS) != (config["dry_run"] is True):
        warnings.append(
            f"{variable} is {_quoted(environ[variable])} but the config file's dry_run is "
            f"{config['dry_run']!r}, which is the one read"
        )
    for name in ("pixel_id", "api_key"):  # (filled from the environment only when lacking)
        variable = ENV_PREFIX + name.upper()
        given = environ.get(variable, "").strip()
        if given and given != str(config.get(name) or "").strip():
            warnings.append(
                f"{variable} is set but differs from the config file's {name}, which is the one "
                "read (the environment gives it only to a config without one)"
            )
    unread = [
        ENV_PREFIX + name.upper()
        for name in (*CONFIG_SCHEMA["properties"], *FLATTENING_SETTINGS)
        if name not in config
        and name not in ("api_key", "pixel_id", "dry_run")
        and ENV_PREFIX + name.upper() in environ
    ]
    flattening = [v for v in unread if v.removeprefix(ENV_PREFIX).lower() in FLATTENING_SETTINGS]
    unread = [v for v in unread if v not in flattening]
    if unread:
        warnings.append(
            f"{', '.join(unread)} {'is' if len(unread) == 1 else 'are'} set in the environment "
            "but not read: the config comes from a file (read the environment with --config "
            "ENV; in Meltano, declare the setting)"
        )
    if flattening:  # (read, it would be refused: mappings read the nested paths)
        warnings.append(
            f"{', '.join(flattening)} {'is' if len(flattening) == 1 else 'are'} set in the "
            "environment and not read: the target does not flatten records (its mappings read "
            "nested paths); unset it"
        )
    return problems, warnings


def dry_run_variable_problems(environ: Mapping[str, str]) -> list[str]:
    """A TARGET_OPENAI_CAPI_* variable meant as a dry run that is not DRY_RUN (VALIDATE_ONLY,
    DRYRUN): never read, it would send for real what was meant to be validated only."""
    return [
        f"{variable} is not a setting of target-openai-capi: for a dry run (every request with "
        f"validate_only, nothing recorded) set {ENV_PREFIX}DRY_RUN=true"
        for variable in sorted(environ)
        if variable.startswith(ENV_PREFIX)
        and _variable_means_a_dry_run(variable.removeprefix(ENV_PREFIX))
    ]


def _number(text: str) -> Decimal | None:
    """A finite number written as text (as an environment variable holds it), else None."""
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def joined_at_dots(config: dict[str, Any]) -> None:
    """Meltano reads a dot in a key of an object setting as nesting, in meltano.yml and in
    `meltano config set` (through an environment variable it drops such a key): Stripe's event name
    `customer.subscription.created` under a stream's `event_types` reached the target as
    customer: {subscription: {created: ...}}. Joined back, in place: an event name maps to a
    text, so nothing else could mean the nesting. (A stream's name with a dot is not joined:
    `sales: {orders: {...}}` may as well be a setting misspelt in the entry `sales`, and a
    guess would send with the wrong mapping; its error says what Meltano did.)"""
    streams = config.get("streams")
    if not isinstance(streams, dict):
        return
    for entry in streams.values():
        table = entry.get("event_types") if isinstance(entry, dict) else None
        if isinstance(table, dict) and any(isinstance(v, dict) for v in table.values()):
            entry["event_types"] = {
                joined: value
                for key, value in table.items()
                for joined, value in (
                    {f"{key}.{rest}": inner for rest, inner in _leaves(value).items()}
                    if isinstance(value, dict)
                    else {key: value}
                ).items()
            }


def _leaves(nested: dict[str, Any]) -> dict[str, Any]:
    """{'a': {'b': X}} as {'a.b': X}, down to the values that are no object."""
    found: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            for rest, inner in _leaves(value).items():
                found[f"{key}.{rest}"] = inner
        else:
            found[str(key)] = value
    return found


def _same_file(one: str, other: str) -> bool:
    """Two paths of one file: alike once links are followed, or one inode (a hard link); not
    a device (/dev/null for both: nothing is read back from it)."""
    try:
        if stat.S_ISCHR(os.stat(one).st_mode):
            return False
    except OSError:
        pass  # (not there yet)
    try:
        if os.path.realpath(one) == os.path.realpath(other):
            return True
        return os.path.samefile(one, other)
    except OSError:  # (one does not exist yet: not the other, which may; no working folder)
        return False


def fill_from_environment(config: dict[str, Any]) -> None:
    """A setting given as null is left out, so that its default applies (a config written from
    a template, Meltano's unset values); api_key and pixel_id from TARGET_OPENAI_CAPI_* when the
    config lacks them (Meltano passes only settings a plugin declares: a loader with only a
    pip_url gets none), the key and pixel id trimmed (as read from a secret file), a file's
    path starting with ~ in the home directory; a number setting given as text (its
    environment variable) read as the number."""
    for name in [k for k, v in config.items() if v is None and k not in NULL_IS_A_VALUE]:
        del config[name]
    joined_at_dots(config)
    for name in ("api_key", "pixel_id"):
        variable = f"TARGET_OPENAI_CAPI_{name.upper()}"
        if config.get(name) in (None, "") and os.environ.get(variable):
            config[name] = os.environ[variable]
    for name in ("dead_letter_path", "request_log_path"):  # (~ as a shell reads it, not a
        value = config.get(name)  # directory named ~ in the working one)
        if isinstance(value, str) and value.startswith("~"):
            config[name] = os.path.expanduser(value)
    for name in ("api_key", "pixel_id"):  # (as read from a secret file: a newline at the end)
        value = config.get(name)
        if isinstance(value, str) and value != value.strip():
            config[name] = value.strip()
    for name in _NUMBER_SETTINGS:  # (the SDK reads their environment variables as text)
        value = config.get(name)
        if isinstance(value, str) and _number(value) is not None:
            config[name] = _number(value)
    for name in _INTEGER_SETTINGS:  # (2.0 or 1E3 in a file: a whole number, as JSON Schema has
        value = config.get(name)  # it, which the SDK's Decimal is not to its validator)
        if (
            isinstance(value, Decimal)
            and value.is_finite()
            and value == value.to_integral_value()
            and value.adjusted() < 18
        ):
            config[name] = int(value)
    # dry_run as text: Meltano passes its variable's value as written (the setting is declared
    # a string in meltano.yml: as a boolean, Meltano read any word but true/1/yes/on as false,
    # and a typo such as `ture` sent for real). Another word is refused by the schema.
    # So is flattening_enabled, which this target does not declare: "false" turned it on for
    # the SDK's checks.
    for name in ("dry_run", "flattening_enabled"):
        value = config.get(name)
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS:
            config[name] = value.strip().lower() in _TRUE_WORDS


# A value shaped like an OpenAI key in a message: a key given in the wrong setting (Meltano's
# .env lines swapped), which no message shows. A service account's, a project's, an admin's
# or a user's key (a long body after `sk-svcacct-`, `sk-proj-`, `sk-admin-` or `sk-None-`, as
# _LOOKS_LIKE_A_KEY), or an older one (`sk-` and 40 letters and digits): not the prefix
# alone, which a message may name as a hint, nor a name or URL that begins with sk-
# (`sk-ii-essence`, `SK-TEST-001`).
_KEY_LIKE = re.compile(
    rf"(?<![A-Za-z0-9])sk-(?:(?:{_KEY_KINDS})-[A-Za-z0-9_\-]{{16,}}|[A-Za-z0-9]{{40,}})"
    r"(?![A-Za-z0-9])"
)


def without_key(messages: list[str], key: object) -> list[str]:
    """The messages with the API key hidden: as given, trimmed, and as repr() writes it; a key
    given as a number, list or object (a wrong type, which the SDK's message quotes) has every
    number and string in it hidden; and any value shaped like a key (one put in another
    setting). A key shorter than MIN_HIDDEN_LENGTH hides nothing (api_key: "true" would hide
    every "true" of every message), as in the log (log_safety.py)."""
    forms = set()
    nested = [] if isinstance(key, str) else _strings_in(key)
    for text in [key] if isinstance(key, str) else nested:
        if len(text.strip()) >= MIN_HIDDEN_LENGTH:
            forms |= {text, text.strip(), repr(text)[1:-1], repr(text.strip())[1:-1]}
    for form in sorted(forms, key=len, reverse=True):  # the longest first: no part left over
        # (in any case: a URL's host is quoted lower-cased)
        pattern = re.compile(re.escape(form), re.IGNORECASE)
        messages = [pattern.sub("***", m) for m in messages]
    return [_KEY_LIKE.sub("***", m) for m in messages]


def _holds_a_key(text: str) -> bool:
    """Whether a text holds a value shaped like an API key (not the prefix alone)."""
    return _KEY_LIKE.search(text) is not None


def _strings_in(value: object, depth: int = 0) -> list[str]:
    """Every string in a config value: itself, or those in its items, keys and values."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return [str(value)]  # (a key of digits given as a number: its message quotes it)
    if depth > 20:
        return []
    if isinstance(value, dict):
        return [s for item in value.items() for part in item for s in _strings_in(part, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings_in(item, depth + 1)]
    return []


def compile_streams(
    config: Mapping[str, Any],
) -> tuple[dict[str, StreamMapping], list[str], list[str]]:
    """Each `streams` entry compiled: (mappings, errors, warnings about fields not sent)."""
    mappings, errors = {}, []
    now_ms = time.time_ns() // 1_000_000  # (a fixed time is checked against the API's window)
    key = str(config.get("api_key") or "").strip()
    for stream, entry in (config.get("streams") or {}).items():
        if any(
            (len(key) >= MIN_HIDDEN_LENGTH and key in text) or _holds_a_key(text)
            for text in _strings_in(entry)
        ):
            # (a constant of an entry goes to the API in every event, and to the request log)
            errors.append(
                f"streams.{stream} holds an API key (in a field, the filter or an event name): "
                "it would be sent to the API in every event; the key goes in api_key only. The "
                "value is not shown here; rotate the key if it was shared"
            )
        try:
            mappings[stream] = compile_stream_mapping(stream, entry or {})
        except ValueError as exc:
            errors.append(str(exc))
            continue
        type_from = apply_preset(entry or {}).get("event_type_from")
        errors.extend(
            f"streams.{stream}.{problem}"
            for problem in constant_problems(mappings[stream], type_from, now_ms)
        )
    style = str(config.get("user_field_style") or DEFAULT_USER_FIELD_STYLE)
    warnings = [
        f"streams.{stream}.fields.{name} is not sent: {unsendable_user_field(name, style)}."
        for stream, mapping in mappings.items()
        for name in sorted(set(mapping.fields) - USER_FIELD_STYLES[style].keys())
        if name in USER_FIELDS
    ]
    warnings += [
        f"streams.{stream}.fields.{name} is not sent: {why}."
        for stream, mapping in mappings.items()
        for name, why in fields_not_carried(mapping).items()
    ]
    for name in ("dead_letter_path", "request_log_path"):
        value = config.get(name)
        if isinstance(value, str) and (variable := _VARIABLE_IN_PATH.search(value)):
            warnings.append(
                f"{name} holds {variable.group()}, which is not expanded (only a leading ~ is; "
                "Meltano expands $VARIABLES in meltano.yml): the file goes under a folder of "
                "that name."
            )
    return mappings, errors, warnings


# `$HOME`, `${HOME}` in a path: a shell's variable, which a JSON config does not expand.
_VARIABLE_IN_PATH = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
