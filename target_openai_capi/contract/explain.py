"""Explaining an invalid event (the slow path, only after the fast validator said no): the first
problem by field order, worded for a data engineer, never showing personal data."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from target_openai_capi.contract.schema import _FORMATS, EVENT_SCHEMA, _resolve

if TYPE_CHECKING:
    import jsonschema


@functools.cache
def _explainer() -> Any:
    """The explaining validator, built when an event first needs explaining (jsonschema takes
    ~35 ms to import, which a worker process that never meets an invalid event need not pay)."""
    import jsonschema

    format_checker = jsonschema.FormatChecker(formats=())
    for name, check in _FORMATS.items():
        format_checker.checks(name)(check)
    # JSON Schema counts 12.0 as an integer; a strict JSON decoder on the server (e.g. into
    # int64) would not, so the explaining validator is strict and _float_in_integer_field backs
    # the fast one.
    validator = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer",
            lambda _checker, value: isinstance(value, int) and not isinstance(value, bool),
        ),
    )
    return validator(without_refs(EVENT_SCHEMA), format_checker=format_checker)


def without_refs(node: Any) -> Any:
    """A copy of `node` with every local `$ref` replaced by what it points to. jsonschema looks
    a `$ref` up again at every use (a third of its time on an event) and leaves `$ref` out of the
    schema paths it reports, so the copy gives the same errors at the same paths
    (test_contract checks it)."""
    if isinstance(node, list):
        return [without_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"$ref"}:
        return without_refs(_resolve(node["$ref"]))
    return {key: without_refs(value) for key, value in node.items()}


_REDACTED = "<value hidden: may be personal data>"
_MAX_SHOWN = 80

# Errors are reported in the order a reader meets the fields: an event's own fields in schema order,
# then data's, then a content item's, then user's; unknown names after all of those.
_FIELD_ORDER: dict[str, int] = {
    name: rank
    for rank, name in enumerate(
        dict.fromkeys(
            [
                *EVENT_SCHEMA["properties"],
                *EVENT_SCHEMA["$defs"]["data_custom"]["properties"],
                *EVENT_SCHEMA["$defs"]["content_item"]["properties"],
                *EVENT_SCHEMA["$defs"]["user"]["properties"],
            ]
        )
    )
}
# When one field has several errors, the most telling one wins (a wrong type before a bad pattern).
_VALIDATOR_PRIORITY = {"type": 0, "required": 1, "const": 2, "enum": 2, "pattern": 3, "anyOf": 4}

Path = tuple[str | int, ...]


def _dotted(path: Sequence[str | int]) -> str:
    """('data', 'contents', 2, 'quantity') -> 'data.contents[2].quantity'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# Event fields whose values may be personal data (an id may be an email): never shown.
_HIDDEN_FIELDS = frozenset({"user", "id", "oppref"})


def _show(value: Any, path: Path) -> str:
    """A value as it may appear in a message: never user data, never a URL's query (it may
    carry an email), never a page of text."""
    if path and path[0] in _HIDDEN_FIELDS:
        return _REDACTED
    if path and path[0] == "source_url" and isinstance(value, str):
        cut = min((i for i in (value.find("?"), value.find("#")) if i >= 0), default=-1)
        if cut >= 0:
            value = value[:cut] + "?<query hidden>"
    text = repr(value)
    if len(text) <= _MAX_SHOWN:
        return text
    if isinstance(value, str):  # cut inside its quotes, so the log still hides it if personal
        return repr(value[: _MAX_SHOWN - 5] + "...")
    return text[: _MAX_SHOWN - 3] + "..."


def _sort_key(path: Path, validator: str | None, schema_path: str) -> tuple[Any, ...]:
    """Deterministic order: by field position, then by how telling the error is."""
    ranks = tuple(
        (part, "") if isinstance(part, int) else (_FIELD_ORDER.get(part, len(_FIELD_ORDER)), part)
        for part in path
    )
    return (ranks, _VALIDATOR_PRIORITY.get(validator or "", 5), schema_path)


def _conditions(error: jsonschema.ValidationError, event: Mapping[str, Any]) -> str:
    """' when ...' for an error found inside if/then/else, read from the enclosing 'if' schemas."""
    instance_path = list(error.absolute_path)
    node: Any = EVENT_SCHEMA
    depth = 0  # how many instance path parts the schema path walked so far
    after_properties = False
    found: list[str] = []
    for key in error.absolute_schema_path:
        while isinstance(node, dict) and key not in node and "$ref" in node:
            node = _resolve(node["$ref"])  # jsonschema leaves "$ref" out of schema paths
        if isinstance(node, dict) and key in ("then", "else"):
            text = _describe_if(node["if"], tuple(instance_path[:depth]), negated=key == "else")
            if text:
                found.append(text)
        if after_properties or key in ("items", "additionalProperties"):
            depth += 1
        after_properties = key == "properties" and not after_properties
        if not isinstance(node, (dict, list)):
            break
        node = node[key]
    return " when " + " and ".join(reversed(found)) if found else ""


def _describe_if(if_schema: Mapping[str, Any], level: Path, *, negated: bool) -> str:
    """'data.amount is present', "type is not 'custom'"; '' for shape dispatch (noise)."""
    prefix = _dotted(level) + "." if level else ""
    parts: list[str] = []
    properties = if_schema.get("properties", {})
    for name, sub in properties.items():
        if "enum" in sub:
            return ""  # the shape dispatch on type; its errors speak for themselves
        if "const" in sub:
            parts.append(f"{prefix}{name} is {'not ' if negated else ''}{sub['const']!r}")
    for name in if_schema.get("required", []):
        if name not in properties:
            parts.append(f"{prefix}{name} is {'absent' if negated else 'present'}")
    for name in if_schema.get("not", {}).get("required", []):
        parts.append(f"{prefix}{name} is {'present' if negated else 'absent'}")
    return " and ".join(parts)


def _allowed(schema: Mapping[str, Any]) -> str:
    """The '(allowed: ...)' hint for an object schema."""
    return "allowed: " + ", ".join(sorted(schema.get("properties", {})))


def _messages(
    error: jsonschema.ValidationError, event: Mapping[str, Any]
) -> Iterator[tuple[Path, str]]:
    """(field path, message) pairs for one jsonschema error, worded for a data engineer."""
    path: Path = tuple(error.absolute_path)
    schema: Any = error.schema
    when = _conditions(error, event)
    validator, value = error.validator, error.validator_value
    instance = error.instance
    if validator == "required":
        for name in value:
            if isinstance(instance, dict) and name not in instance:
                yield (*path, name), f"is required{when}"
        return
    if validator == "additionalProperties":
        known = schema.get("properties", {})
        shape = known.get("type", {}).get("const")
        where = f" in data of type {shape!r}" if shape else ""
        for name in instance:
            if name not in known:
                yield (*path, name), f"is not an allowed field{where}{when} ({_allowed(schema)})"
        return
    if validator == "not" and set(value) == {"required"}:  # a field that may not appear here
        for name in value["required"]:
            yield (*path, name), f"is not allowed{when}"
        return
    shown = _show(instance, path)
    description = schema.get("description") if isinstance(schema, dict) else None
    if validator == "type":
        message = f"{shown} is not of type {value!r}"
    elif validator == "enum":
        message = f"{shown} is not one of {value!r}"
    elif validator == "const":
        message = f"must be {value!r}, got {shown}"
        if path == ("data", "type") and isinstance(event.get("type"), str):
            message = f"must be {value!r} for type {event['type']!r}, got {shown}"
    elif validator == "maxLength" and value >= 256 and isinstance(instance, str):
        message = f"is longer than {value} characters"  # (not "is not a URL": it may well be)
    elif validator in ("pattern", "anyOf", "format", "minLength", "maxLength") and description:
        message = f"{shown} is not {description}"
    elif validator in ("minLength", "minItems") and value == 1:
        message = "must not be empty"
    elif validator == "maxLength":
        message = f"is longer than {value} characters"
    elif validator == "minimum":
        message = f"{shown} is less than the minimum of {value}"
    elif path and path[0] == "user":
        message = f"is invalid ({validator} {value!r})"
    else:
        message = error.message
    yield path, message + when


def _explain(event: Mapping[str, Any]) -> str | None:
    """The first schema error by path order, as '<dotted.path>: <message>'."""
    best: tuple[tuple[Any, ...], str] | None = None
    for error in _explainer().iter_errors(event):
        schema_path = "/".join(str(part) for part in error.absolute_schema_path)
        for path, message in _messages(error, event):
            key = _sort_key(path, error.validator, schema_path)
            if best is None or key < best[0]:
                best = (key, f"{_dotted(path) or 'event'}: {message}")
    return None if best is None else best[1]
