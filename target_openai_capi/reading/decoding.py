"""Decoding a record only where its stream's mapping reads it, checking its schema on the way.

A tap-shopify order is ~10 KiB, and the tap-shopify/orders preset reads ~40 of its ~490
properties. `record_decoding(tree, schema)` builds a msgspec decoder that builds only the paths
in `tree` (mapping/reads.py) and skips the rest: a third of the cost of decoding it all. Values
at those paths are exactly what a whole decode gives (floats as Decimals).

When `schema` (the stream schema cut down to the same paths, reading/schema_paths.py `prune_schema`)
says no more than which JSON types each path holds, as Singer taps' schemas do, and the rules
databases' taps add (a string's length, an integer's or a number's bounds, a list of allowed
texts, required and refused property names), the decoder also checks those as it builds the
record, in C where msgspec can (types, lengths, integer bounds, texts), and a few lines of
Python check the rest (`leaves_ok`: a number leaf's type and bounds, its Decimal would also
take a string; an object's names): such a record needs no JSON Schema validation afterwards.
The decoder accepts exactly what the validator accepts (tests/test_decoding.py); a record it
refuses (msgspec.ValidationError, or `leaves_ok` false) is then decoded whole and validated as
usual, so that the reason says what is wrong.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

import msgspec

from target_openai_capi.reading.schema_check import for_record_checks
from target_openai_capi.reading.schema_paths import NOT_CHECKED_KEYWORDS, prune_schema_exactly

RecordDecoder = msgspec.json.Decoder[dict[str, Any]]
Path = tuple[str, ...]  # property names, and "[]" for the items of an array
# A check the decoder cannot make, on the value at a path (where present): its Python type is
# one of a set ("types"); a number is not below or above a bound ("minimum", "maximum",
# "exclusiveMinimum", "exclusiveMaximum"); an object holds names ("required") or none of them
# ("absent": names additionalProperties false refuses).
LeafCheck = tuple[Path, str, Any]

_names = itertools.count()

# Schema nodes with only these keywords say nothing but the JSON types of their values.
_TYPE_ONLY = NOT_CHECKED_KEYWORDS | {"type", "properties", "items"}
# Rules the decoder checks too, as msgspec constraints (a string's length, an integer's
# bounds, a list of strings) or leaf checks (a number's bounds, an object's names): as Singer
# taps of databases write their columns (VARCHAR(n), INTEGER, NUMERIC, NOT NULL, enums).
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_LENGTHS = ("minLength", "maxLength")
_OBJECT_RULES = ("required", "additionalProperties")
_CHECKED = _TYPE_ONLY | {*_BOUNDS, *_LENGTHS, *_OBJECT_RULES, "enum"}
# msgspec's names of the bounds, for an integer (it takes int64 bounds only).
_INTEGER_BOUNDS = dict(zip(_BOUNDS, ("ge", "le", "gt", "lt"), strict=True))
_INT64 = range(-(2**63), 2**63)
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
        declared = schema.get("$schema") if isinstance(schema, dict) else None
        # Draft 3 and 4 read exclusiveMinimum/Maximum as flags on minimum/maximum (also when
        # they are numbers): left to the validator there.
        old_draft = isinstance(declared, str) and ("draft-04" in declared or "draft-03" in declared)
        try:
            shape = _checked_type(tree, schema, (), checks, old_draft)
            return RecordDecoding(_decoder(shape), tuple(checks), _message_decoder(shape))
        except _NotTypeOnly:
            pass
        # A type msgspec cannot build: a union it cannot tell apart (two str-like, null twice),
        # bounds it takes one of (le and lt), a length past int64. The validator checks those.
        except (TypeError, ValueError):
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


def _checked_type(
    tree: Any, schema: Any, path: Path, checks: list[LeafCheck], old_draft: bool = False
) -> Any:
    """The msgspec type of a value read at `tree` that holds only what `schema` allows."""
    if not isinstance(schema, dict) or set(schema) - _CHECKED:
        raise _NotTypeOnly
    if old_draft and ("exclusiveMinimum" in schema or "exclusiveMaximum" in schema):
        raise _NotTypeOnly
    types = schema.get("type")
    if types is None:  # any JSON value
        if set(schema) - NOT_CHECKED_KEYWORDS:
            raise _NotTypeOnly  # they apply only to values of their type: not a msgspec type
        return Any if tree is True else _path_type(tree)
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not types or not set(types) <= {*_SCALARS, "object", "array"}:
        raise _NotTypeOnly
    containers = [t for t in types if t in ("object", "array")]
    if "enum" in schema:
        return _checked_enum(schema, types)
    if "number" in types:
        # The value stays Any for msgspec (floats become Decimals); leaves_ok checks its type.
        if containers or ("string" in types and not set(_LENGTHS).isdisjoint(schema)):
            raise _NotTypeOnly
        allowed = tuple(t for name in types for t in _SCALARS[name][1])
        checks.append((path, "types", frozenset(allowed)))
        checks.extend((path, rule, _bound(schema[rule])) for rule in _BOUNDS if rule in schema)
        return Any
    shapes: list[Any] = [_scalar(t, schema) for t in types if t in _SCALARS]
    for kind in containers:
        if tree is True and (schema.get("properties") or "items" in schema):
            raise _NotTypeOnly  # used whole: every property would have to be kept and checked
        if kind == "object":
            shapes.append(_checked_object(tree, schema, path, checks, old_draft))
        else:
            shapes.append(_checked_array(tree, schema, path, checks, old_draft))
    shape = shapes[0]
    for other in shapes[1:]:
        shape = shape | other
    return shape


def _bound(value: Any) -> int | float:
    """A number's bound as the validator compares with it: an integer exactly; a fraction (a
    Decimal, as the SCHEMA line was read) as the float its source text is (fastjsonschema
    writes the bound into its code as a literal, so `maximum: 0.3` refuses 0.3 itself). Not a
    draft-4 flag: for_record_checks made those bounds."""
    if type(value) is int:
        return value
    if type(value) in (float, decimal.Decimal):
        text = str(value)  # (what fastjsonschema writes: 9007199254740995e0 is an int there)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    raise _NotTypeOnly


def _scalar(name: str, schema: dict[str, Any]) -> Any:
    """The msgspec type of a JSON scalar type, with the schema's rules for it as constraints."""
    shape = _SCALARS[name][0]
    if name == "string" and not set(_LENGTHS).isdisjoint(schema):
        lengths = {rule: schema[rule] for rule in _LENGTHS if rule in schema}
        if not all(type(length) is int and length >= 0 for length in lengths.values()):
            raise _NotTypeOnly
        meta = msgspec.Meta(
            min_length=lengths.get("minLength"), max_length=lengths.get("maxLength")
        )
        return Annotated[str, meta]
    if name == "integer" and not set(_BOUNDS).isdisjoint(schema):
        bounds = {_INTEGER_BOUNDS[rule]: schema[rule] for rule in _BOUNDS if rule in schema}
        if not all(type(bound) is int and bound in _INT64 for bound in bounds.values()):
            raise _NotTypeOnly  # (a float bound, or one past int64: the validator checks it)
        return Annotated[int, msgspec.Meta(**bounds)]
    return shape


def _checked_enum(schema: dict[str, Any], types: list[str]) -> Any:
    """A list of allowed texts (and null), as a Literal; any other enum is the validator's."""
    allowed = schema["enum"]
    if not isinstance(allowed, list) or not set(types) <= {"string", "null"}:
        raise _NotTypeOnly
    if not all(value is None or type(value) is str for value in allowed):
        raise _NotTypeOnly
    if set(schema) & {*_BOUNDS, *_OBJECT_RULES, "properties", "items"}:
        raise _NotTypeOnly
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if type(low) is not int or (high is not None and type(high) is not int):
        raise _NotTypeOnly
    texts = [
        value
        for value in dict.fromkeys(allowed)
        if type(value) is str and "string" in types and low <= len(value)
        if high is None or len(value) <= high
    ]
    null = None in allowed and "null" in types
    if not texts:
        if not null:
            raise _NotTypeOnly  # (no value is allowed: the validator says so)
        return None
    shape: Any = Literal[tuple(texts)]
    return shape | None if null else shape


def _checked_object(
    tree: Any, schema: dict[str, Any], path: Path, checks: list[LeafCheck], old_draft: bool
) -> Any:
    if tree is True:
        if not set(_OBJECT_RULES).isdisjoint(schema):
            raise _NotTypeOnly  # used whole: each name would have to be looked at
        return dict[str, Any]
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise _NotTypeOnly
    read = [name for name in tree if name != "[]"]
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(name in read for name in required):
        raise _NotTypeOnly  # (prune_schema keeps the names read only)
    if required:
        checks.append((path, "required", frozenset(required)))
    others = schema.get("additionalProperties", True)
    if others is not True and others is not False and others != {}:
        raise _NotTypeOnly  # a schema for the other names
    # A name the schema allows no value of (`false`, as prune_schema writes a name read that
    # additionalProperties false refuses) must be absent.
    absent = [name for name in read if properties.get(name, others) is False]
    if absent:
        checks.append((path, "absent", frozenset(absent)))
    fields = {}
    for name, sub in tree.items():
        if name == "[]":
            continue  # read as a list too; the schema allows no list here
        rule = properties.get(name, True)
        if rule is True or rule is False or rule == {}:
            fields[name] = _path_type(sub)  # any value is allowed (or none: absent, above)
        else:
            fields[name] = _checked_type(sub, rule, (*path, name), checks, old_draft)
    return _typed_dict(fields)


def _checked_array(
    tree: Any, schema: dict[str, Any], path: Path, checks: list[LeafCheck], old_draft: bool
) -> Any:
    if "items" not in schema:
        if tree is True or "[]" not in tree:
            return list[Any]
        return list[_path_type(tree["[]"])]  # type: ignore[misc]
    items_tree = True if tree is True or "[]" not in tree else tree["[]"]
    items = _checked_type(items_tree, schema["items"], (*path, "[]"), checks, old_draft)
    return list[items]  # type: ignore[valid-type]


# Each kind of leaf check: the test that fails it, as source (of the value `{v}` and the
# check's constant `{c}`) and as a function of (value, constant). A bound applies to numbers
# only (the types check says which values may be there); a name check to objects only.
_NUMBERS = (int, decimal.Decimal)
_FAILS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "types": ("type({v}) not in {c}", lambda v, c: type(v) not in c),
    "minimum": ("type({v}) in NUMBERS and {v} < {c}", lambda v, c: type(v) in _NUMBERS and v < c),
    "maximum": ("type({v}) in NUMBERS and {v} > {c}", lambda v, c: type(v) in _NUMBERS and v > c),
    "exclusiveMinimum": (
        "type({v}) in NUMBERS and {v} <= {c}",
        lambda v, c: type(v) in _NUMBERS and v <= c,
    ),
    "exclusiveMaximum": (
        "type({v}) in NUMBERS and {v} >= {c}",
        lambda v, c: type(v) in _NUMBERS and v >= c,
    ),
    "required": (
        "type({v}) is dict and not {c} <= {v}.keys()",
        lambda v, c: type(v) is dict and not c <= v.keys(),
    ),
    "absent": (
        "type({v}) is dict and not {c}.isdisjoint({v})",
        lambda v, c: type(v) is dict and not c.isdisjoint(v),
    ),
}


def _leaves_check(checks: tuple[LeafCheck, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """One function checking every leaf (`_leaf_check` of each, written out as one Python
    function: a record's leaves cost one call, not a call a step)."""
    namespace: dict[str, Any] = {"NUMBERS": _NUMBERS}
    lines = ["def leaves_ok(record):"]
    for number, (path, kind, constant) in enumerate(checks):
        namespace[f"C_{number}"] = constant
        lines += _leaf_source(path, _FAILS[kind][0], f"C_{number}", "record", 1)
    lines.append("    return True")
    try:
        exec(compile("\n".join(lines), "<leaf checks>", "exec"), namespace)  # noqa: S102 (names are repr()s)
    except (SyntaxError, RecursionError, MemoryError):  # nested past what Python compiles
        leaf_checks = tuple(_leaf_check(path, kind, constant) for path, kind, constant in checks)
        return lambda record: all(check(record) for check in leaf_checks)
    leaves_ok: Callable[[Mapping[str, Any]], bool] = namespace["leaves_ok"]
    return leaves_ok


def _leaf_source(path: Path, fails: str, constant: str, value: str, depth: int) -> list[str]:
    """Source lines that return False if the value at `path` below `value` (where present)
    `fails` (a _FAILS test, of `constant`), as `_leaf_check` decides."""
    pad = "    " * depth
    if not path:
        return [f"{pad}if {fails.format(v=value, c=constant)}:", f"{pad}    return False"]
    step, rest = path[0], path[1:]
    inner = f"v{depth}"
    if step == "[]":
        head = [f"{pad}if type({value}) is list:", f"{pad}    for {inner} in {value}:"]
        return head + _leaf_source(rest, fails, constant, inner, depth + 2)
    # The decoder checked the containers: not an object here means null (nothing below).
    head = [
        f"{pad}if type({value}) is dict and {step!r} in {value}:",
        f"{pad}    {inner} = {value}[{step!r}]",
    ]
    return head + _leaf_source(rest, fails, constant, inner, depth + 1)


def _leaf_check(path: Path, kind: str, constant: Any) -> Callable[[Any], bool]:
    """A function: does the value at `path` (where present) pass the check?"""
    fails = _FAILS[kind][1]
    check: Callable[[Any], bool] = lambda value: not fails(value, constant)  # noqa: E731
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
