"""Decoding a record only where its stream's mapping reads it, checking its schema on the way.

A tap-shopify order is ~10 KiB, and the tap-shopify/orders preset reads ~40 of its ~490
properties. `record_decoding(tree, schema)` builds a msgspec decoder that builds only the paths
in `tree` (mapping/reads.py) and skips the rest: a third of the cost of decoding it all. Values
at those paths are exactly what a whole decode gives (floats as Decimals).

When `schema` (the stream schema cut down to the same paths, reading/schema_paths.py `prune_schema`)
says no more than which JSON types each path holds, as Singer taps' schemas do, the decoder
also checks those types as it builds them, in C, and a few lines of Python check the number
leaves that msgspec cannot (its Decimal would also take a string): such a record needs no
JSON Schema validation afterwards. The decoder never accepts what the schema rejects; a
record it refuses (msgspec.ValidationError, or `leaves_ok` false) is then decoded whole and
validated as usual, so that the reason says what is wrong.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import msgspec

from target_openai_capi.reading.schema_check import for_record_checks
from target_openai_capi.reading.schema_paths import NOT_CHECKED_KEYWORDS, prune_schema_exactly

RecordDecoder = msgspec.json.Decoder[dict[str, Any]]
Path = tuple[str, ...]  # property names, and "[]" for the items of an array
# A check the decoder cannot make: the value at a path must be one of these Python types.
LeafCheck = tuple[Path, tuple[type, ...]]

_names = itertools.count()

# Schema nodes with only these keywords say nothing but the JSON types of their values.
_TYPE_ONLY = NOT_CHECKED_KEYWORDS | {"type", "properties", "items"}
_SCALARS: dict[str, tuple[Any, tuple[type, ...]]] = {
    # JSON type -> (msgspec type, Python types). "number" has no exact msgspec type (its Decimal
    # would take a string too): it is decoded as Any and its Python type checked (leaves_ok).
    "null": (None, (type(None),)),
    "boolean": (bool, (bool,)),
    "integer": (int, (int,)),
    "string": (str, (str,)),
    "number": (Any, (int, decimal.Decimal)),
}


class _NotTypeOnly(Exception):
    """The schema says more than types (or says it in a form this module does not follow)."""


@dataclass(frozen=True)
class RecordDecoding:
    """How the reader decodes one stream's records."""

    decoder: RecordDecoder
    # None: the decoder does not check the schema. Else the checks left to `leaves_ok`.
    leaf_checks: tuple[LeafCheck, ...] | None = None
    # The same record decoding, as part of a whole RECORD message line, in one pass.
    message_decoder: msgspec.json.Decoder[Any] | None = None
    # True when every leaf the decoder left unchecked holds a value of an allowed type.
    leaves_ok: Callable[[Mapping[str, Any]], bool] = field(init=False, repr=False, compare=False)

    @property
    def checks_schema(self) -> bool:
        """True when a record this decoder accepts (and leaves_ok passes) matches the schema."""
        return self.leaf_checks is not None

    def __post_init__(self) -> None:
        object.__setattr__(self, "leaves_ok", _leaves_check(self.leaf_checks or ()))


def record_decoding(tree: Mapping[str, Any], schema: Any = None) -> RecordDecoding:
    """The decoder for records read at `tree`; it also checks `schema` where that is possible."""
    if schema is not None:
        checks: list[LeafCheck] = []
        try:
            shape = _checked_type(tree, schema, (), checks)
        except _NotTypeOnly:
            pass
        else:
            try:
                return RecordDecoding(_decoder(shape), tuple(checks), _message_decoder(shape))
            except TypeError:  # a union of types msgspec cannot tell apart (e.g. two str-like)
                pass
    shape = _object_type(tree)
    return RecordDecoding(_decoder(shape), None, _message_decoder(shape))


def _decoder(shape: Any) -> RecordDecoder:
    return msgspec.json.Decoder(shape, float_hook=decimal.Decimal)


def _message_decoder(shape: Any) -> msgspec.json.Decoder[Any]:
    """A whole RECORD message line, its record decoded as `shape`: the reader's one pass."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("type", Any),
        ("stream", Any, msgspec.UNSET),
        ("record", shape | msgspec.UnsetType, msgspec.UNSET),
    ]
    message = msgspec.defstruct(f"Message{next(_names)}", fields)
    return msgspec.json.Decoder(message, float_hook=decimal.Decimal)


def _typed_dict(fields: dict[str, Any]) -> Any:
    return TypedDict(f"Read{next(_names)}", fields, total=False)  # type: ignore[operator]


# --- Reading only: every value along a path is accepted as long as the path can be followed ---


def _object_type(tree: Mapping[str, Any]) -> Any:
    return _typed_dict({name: _path_type(sub) for name, sub in tree.items() if name != "[]"})


def _path_type(tree: Mapping[str, Any] | bool) -> Any:
    if tree is True or not isinstance(tree, Mapping):
        return Any  # used whole
    if "[]" in tree:  # read both as an object and as a list of items
        return _object_type(tree) | list[_path_type(tree["[]"])] | None  # type: ignore[misc]
    return _object_type(tree) | None


# --- Reading and checking the schema's types -------------------------------------------------


def _checked_type(tree: Any, schema: Any, path: Path, checks: list[LeafCheck]) -> Any:
    """The msgspec type of a value read at `tree` that holds only what `schema` allows."""
    if not isinstance(schema, dict) or set(schema) - _TYPE_ONLY:
        raise _NotTypeOnly
    types = schema.get("type")
    if types is None:  # any JSON value
        if "properties" in schema or "items" in schema:
            raise _NotTypeOnly  # they apply only to values of their type: not a msgspec type
        return Any if tree is True else _path_type(tree)
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not types or not set(types) <= {*_SCALARS, "object", "array"}:
        raise _NotTypeOnly
    containers = [t for t in types if t in ("object", "array")]
    if "number" in types:
        # The value stays Any for msgspec (floats become Decimals); leaves_ok checks its type.
        if containers:
            raise _NotTypeOnly
        allowed = tuple(t for name in types for t in _SCALARS[name][1])
        checks.append((path, allowed))
        return Any
    shapes: list[Any] = [_SCALARS[t][0] for t in types if t in _SCALARS]
    for kind in containers:
        if tree is True and (schema.get("properties") or "items" in schema):
            raise _NotTypeOnly  # used whole: every property would have to be kept and checked
        if kind == "object":
            shapes.append(_checked_object(tree, schema, path, checks))
        else:
            shapes.append(_checked_array(tree, schema, path, checks))
    shape = shapes[0]
    for other in shapes[1:]:
        shape = shape | other
    return shape


def _checked_object(tree: Any, schema: dict[str, Any], path: Path, checks: list[LeafCheck]) -> Any:
    if tree is True:
        return dict[str, Any]
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise _NotTypeOnly
    fields = {}
    for name, sub in tree.items():
        if name == "[]":
            continue  # read as a list too; the schema allows no list here
        if name in properties:
            fields[name] = _checked_type(sub, properties[name], (*path, name), checks)
        else:
            fields[name] = _path_type(sub)  # not declared: any value is allowed
    return _typed_dict(fields)


def _checked_array(tree: Any, schema: dict[str, Any], path: Path, checks: list[LeafCheck]) -> Any:
    if "items" not in schema:
        if tree is True or "[]" not in tree:
            return list[Any]
        return list[_path_type(tree["[]"])]  # type: ignore[misc]
    items_tree = True if tree is True or "[]" not in tree else tree["[]"]
    return list[_checked_type(items_tree, schema["items"], (*path, "[]"), checks)]  # type: ignore[misc]


def _leaves_check(checks: tuple[LeafCheck, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """One function checking every leaf (`_leaf_check` of each, written out as one Python
    function: a record's leaves cost one call, not a call a step)."""
    namespace: dict[str, Any] = {}
    lines = ["def leaves_ok(record):"]
    for number, (path, types) in enumerate(checks):
        namespace[f"TYPES_{number}"] = frozenset(types)
        lines += _leaf_source(path, f"TYPES_{number}", "record", 1)
    lines.append("    return True")
    try:
        exec(compile("\n".join(lines), "<leaf checks>", "exec"), namespace)  # noqa: S102 (names are repr()s)
    except (SyntaxError, RecursionError, MemoryError):  # nested past what Python compiles
        leaf_checks = tuple(_leaf_check(path, types) for path, types in checks)
        return lambda record: all(check(record) for check in leaf_checks)
    leaves_ok: Callable[[Mapping[str, Any]], bool] = namespace["leaves_ok"]
    return leaves_ok


def _leaf_source(path: Path, types: str, value: str, depth: int) -> list[str]:
    """Source lines that return False unless the value at `path` below `value` (where present)
    has one of `types`, as `_leaf_check` decides."""
    pad = "    " * depth
    if not path:
        return [f"{pad}if type({value}) not in {types}:", f"{pad}    return False"]
    step, rest = path[0], path[1:]
    inner = f"v{depth}"
    if step == "[]":
        head = [f"{pad}if type({value}) is list:", f"{pad}    for {inner} in {value}:"]
        return head + _leaf_source(rest, types, inner, depth + 2)
    # The decoder checked the containers: not an object here means null (nothing below).
    head = [
        f"{pad}if type({value}) is dict and {step!r} in {value}:",
        f"{pad}    {inner} = {value}[{step!r}]",
    ]
    return head + _leaf_source(rest, types, inner, depth + 1)


def _leaf_check(path: Path, types: tuple[type, ...]) -> Callable[[Any], bool]:
    """A function: does the value at `path` (where present) have one of `types`?"""
    check: Callable[[Any], bool] = lambda value: type(value) in types  # noqa: E731
    for step in reversed(path):
        check = _items_pass(check) if step == "[]" else _field_passes(step, check)
    return check


def _field_passes(name: str, check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def field_passes(value: Any) -> bool:
        # The decoder checked the containers: not an object here means null (nothing below).
        return type(value) is not dict or name not in value or check(value[name])

    return field_passes


def _items_pass(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def items_pass(value: Any) -> bool:
        if type(value) is list:
            for item in value:
                if not check(item):
                    return False
        return True

    return items_pass


def stream_decoding(
    reads: dict[str, Any] | None, schema: Any = None, *, same_rules: bool = True
) -> RecordDecoding | None:
    """How the reader decodes one stream's records (built once per SCHEMA), or None: whole
    (also when a name it reads is not ASCII: `_ascii_names`).

    `reads` is the tree of paths the stream's sink reads (None: any). `schema` is the stream
    schema when the sink validates records, None when it does not; the decoder checks it on the
    way when the sink would check it by the same rules (`same_rules`: fastjsonschema, formats and
    defaults off), so that the sink need not check the record again.
    """
    if reads is None or not _ascii_names(reads):
        return None
    if schema is None:
        return record_decoding(reads)
    pruned = prune_schema_exactly(for_record_checks(schema), reads)
    if pruned is None:
        return None  # a schema rule may need unread properties: decode it all
    return record_decoding(reads, pruned if same_rules else None)


def _ascii_names(tree: Mapping[str, Any]) -> bool:
    """Every property name in the tree is ASCII: msgspec (0.23) matches no other name of a
    TypedDict, and would read `prénom` as absent on every record."""
    return all(
        name.isascii() and (not isinstance(sub, Mapping) or _ascii_names(sub))
        for name, sub in tree.items()
    )
