"""A stream's mapping compiled at start-up to one Python function that builds its events.

`build_event` (event.py) reads every field through `_value` and decides at each record what its
mapping already settled: which fields are mapped, the event type and its data shape, which user
fields the style sends. `compile_assembler` writes those decisions into the source of one
function per stream (and per key properties and user settings), compiled once: each field is
read by its compiled JMESPath getter (or the record's property of the same name) inline, in
exactly the order build_event reads them, and only where build_event reads them; then the same
helper functions normalise, hash and check the values. So the function returns what build_event
returns, and raises what it raises, for every record: tests/test_mapping_assembler.py checks that
on generated orders and on thousands of mutations of them, for every preset.

Plain paths, literals, comparisons, `||` and `&&` of them, and projections of them over a list
(the Shopify line items) are written out; any other expression's compiled getter is called.
Nothing from the config enters the source as code: field names are among EVENT_FIELDS, and they,
the record's property names and a projection's keys are written as string literals with repr();
literal values, comparators, getters and settings are bound in the function's namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jmespath

from target_openai_capi.contract import APP_EVENT_TYPES, DATA_SHAPE_BY_TYPE
from target_openai_capi.mapping import event as generic
from target_openai_capi.mapping.compiled import _is_false, may_raise
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.event_names import custom_event
from target_openai_capi.mapping.expression_functions import DecimalInterpreter
from target_openai_capi.mapping.expressions import ExpressionError, _describe_failure, _parse
from target_openai_capi.mapping.identity import (
    _ONE_VALUE_FIELDS,
    USER_FIELD_STYLES,
    _list_values,
    check_user_settings,
)
from target_openai_capi.mapping.money import (
    MAX_MINOR_UNITS,
    currency_code,
    minor_units,
    money_value,
    to_minor_units,
)
from target_openai_capi.mapping.paths import field_path
from target_openai_capi.mapping.personal_text import holds_personal_text
from target_openai_capi.mapping.stream_mapping import StreamMapping
from target_openai_capi.mapping.timestamps import epoch_ms, to_epoch_ms
from target_openai_capi.mapping.user_values import (
    ABSENT,
    MAX_CACHED_TEXT,
    NO_VALUE_STARTS,
    Rejected,
    _normalise_text,
    blank,
    false_text,
    normalised,
    text_of_no_value,
)

# (record, whole_record) -> (event, notes), as build_event returns them.
Assembler = Callable[
    [Mapping[str, Any], Callable[[], Mapping[str, Any] | None] | None],
    tuple[dict[str, Any], list[str]],
]


class _Source:
    """Lines of Python source with their indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def add(self, *lines: str) -> None:
        self.lines += ["    " * self.depth + line for line in lines]


def compile_assembler(
    mapping: StreamMapping,
    key_properties: Sequence[str],
    user_field_style: str,
    default_phone_region: str | None,
) -> Assembler | None:
    """The stream's events built by one compiled function, or None (build_event then builds
    them) where the user settings are not usable: build_event says why at each record."""
    try:
        region = check_user_settings(user_field_style, default_phone_region)
    except ValueError:
        return None
    namespace: dict[str, Any] = {
        "MappingError": MappingError,
        "JMESPathError": jmespath.exceptions.JMESPathError,
        "describe_failure": _describe_failure,
        "Rejected": Rejected,
        "MAPPING": mapping,
        "KEYS": generic.id_key_properties(key_properties),
        "REGION": region,
        "APP_EVENT_TYPES": APP_EVENT_TYPES,
        "MAX_CACHED_TEXT": MAX_CACHED_TEXT,
        "event_id_from": generic.event_id_from,
        "_event_type": generic._event_type,
        "_data": generic._data,
        "_as_text": generic._as_text,
        "source_url_text": generic.source_url_text,
        "MISSING_CUSTOM_NAME": generic.MISSING_CUSTOM_NAME,
        "_as_bool": generic._as_bool,
        "_contents": generic._contents,
        "_variant_dict": generic._variant_dict,
        "item_text": generic.item_text,
        "catalog_text": generic.catalog_text,
        "PLACEHOLDERS": generic._PLACEHOLDERS,
        "both_item_amounts": generic.both_item_amounts,
        "missing_timestamp": generic.missing_timestamp,
        "missing_currency": generic.missing_currency,
        "agreed_amount": generic.agreed_amount,
        "no_item_currency": generic.no_item_currency,
        "item_currency_error": generic.item_currency_error,
        "MAX_MINOR_UNITS": MAX_MINOR_UNITS,
        "_custom_data": generic._custom_data,
        "custom_event": custom_event,
        "epoch_ms": epoch_ms,
        "to_epoch_ms": to_epoch_ms,
        "currency_code": currency_code,
        "minor_units": minor_units,
        "to_minor_units": to_minor_units,
        "blank": blank,
        "user_field_failed": generic.user_field_failed,
        "money_value": money_value,
        "ABSENT": ABSENT,
        "normalised": normalised,
        "_normalise_text": _normalise_text,
        "_list_values": _list_values,
        "_is_false": _is_false,
        "text_of_no_value": text_of_no_value,
        "false_text": false_text,
        "NO_VALUE_STARTS": NO_VALUE_STARTS,
        "holds_personal_text": holds_personal_text,
        "OPPREF_NOTE": generic.OPPREF_NOTE,
    }
    src = _Source()

    def fetch(name: str, into: str = "v") -> None:
        """`into` = _value(mapping, record, name), inline."""
        getter = mapping.fields.get(name)
        inline = None if getter is None else _inline(mapping.texts[name], into, namespace)
        if getter is None and name in mapping.unread:
            src.add(f"{into} = None")  # (mapped to null, or the other of its pair is mapped)
        elif getter is None:
            src.add(f"{into} = record.get({name!r})")
        elif inline is not None:
            src.add(*inline)
        else:
            namespace[f"GET_{name}"] = getter
            src.add(f"{into} = GET_{name}(record)")
        src.add(  # "", blanks and an export's NULL markers are no value (event.py `_value`)
            f"if type({into}) is str:",
            f"    if not {into} or ({into}[0] in NO_VALUE_STARTS and text_of_no_value({into})):",
            f"        {into} = None",
            f"elif {into} is not None and isinstance({into}, str) and (not {into} or "
            f"text_of_no_value({into})):",
            f"    {into} = None",
        )

    event_type = mapping.event_type
    fixed = event_type is not None and event_type != "custom"
    src.add("def assemble(record, whole_record):")
    src.depth = 1
    src.add("event = {}", "notes = []", "try:")
    src.depth = 2
    if generic.id_is_part_of_the_key(mapping, namespace["KEYS"]):
        src.add("v = None")  # (the whole key makes the id: event.py `event_id`)
    else:
        fetch("id")
    src.add("event['id'] = event_id_from(v, record, KEYS, whole_record)")
    if fixed:
        src.add(f"event['type'] = {event_type!r}")
    else:
        src.add(
            "event_type, custom_name = _event_type(MAPPING, record)", "if event_type == 'custom':"
        )
        src.depth = 3
        if "custom_event_name" not in mapping.fields:  # (a name from event_type_from stays)
            src.add("if custom_name is None:")
            src.depth = 4
        fetch("custom_event_name")
        src.add(
            "if v is not None:",
            "    event_type, custom_name = custom_event(_as_text(v, 'custom_event_name'))",
            "elif custom_name is None:",
            "    raise MappingError(MISSING_CUSTOM_NAME)",
        )
        src.depth = 2
        src.add("event['type'] = event_type")
    fetch("timestamp_ms")
    src.add("if v is not None:", "    event['timestamp_ms'] = epoch_ms(v)", "else:")
    src.depth = 3
    fetch("timestamp")
    src.add(
        "if v is None:",
        "    raise missing_timestamp(MAPPING)",
        "event['timestamp_ms'] = to_epoch_ms(v)",
    )
    src.depth = 2
    if not fixed:
        src.add("if custom_name is not None:", "    event['custom_event_name'] = custom_name")
    fetch("oppref")
    src.add(
        "if isinstance(v, str):",
        "    if not blank(v):",
        "        why_ = holds_personal_text(v)",
        "        if why_ is None:",
        "            event['oppref'] = v",
        "        else:",
        "            notes.append(OPPREF_NOTE.format(why_))",
        "elif v is not None:",
        "    event['oppref'] = _as_text(v, 'oppref')",
    )
    fetch("source_url")
    keep = mapping.keep_source_url_query
    src.add("if v is not None:", f"    event['source_url'] = source_url_text(v, {keep!r})")
    fetch("action_source")
    src.add("if v is not None:", "    event['action_source'] = _as_text(v, 'action_source')")
    if not fixed:
        src.add("if event_type in APP_EVENT_TYPES and 'action_source' not in event:")
        src.add("    event['action_source'] = 'mobile_app'")
    elif event_type in APP_EVENT_TYPES:
        src.add("if 'action_source' not in event:", "    event['action_source'] = 'mobile_app'")
    fetch("opt_out")
    src.add("if v is not None and _as_bool(v, 'opt_out'):", "    event['opt_out'] = True")
    _user(src, mapping, user_field_style, fetch)
    if fixed:
        contents = mapping.texts.get("contents") if "contents" in mapping.fields else None
        contents_lines = None if contents is None else _inline_contents(contents, namespace)
        both = generic.amounts_both_read(mapping)
        _fixed_data(src, DATA_SHAPE_BY_TYPE[event_type], fetch, contents_lines, both)  # type: ignore[index]
    else:
        src.add("event['data'] = _data(MAPPING, record, event_type, notes)")
    src.depth = 1
    src.add(
        "except JMESPathError as exc:",
        "    error = MappingError(f'expression failed on this record: {exc}')",
        "    error.event_id = event.get('id')",
        "    raise error from exc",
        "except MappingError as exc:",
        "    exc.event_id = exc.event_id or event.get('id')",
        "    raise",
        "return event, notes",
    )
    try:
        code = compile("\n".join(src.lines), f"<assembler for stream {mapping.stream!r}>", "exec")
    except (SyntaxError, RecursionError, MemoryError):  # (nested past what Python compiles)
        return None  # build_event builds the stream's events instead
    exec(code, namespace)  # noqa: S102 (source written above from names checked against EVENT_FIELDS)
    assemble: Assembler = namespace["assemble"]
    assemble.source = "\n".join(src.lines)  # type: ignore[attr-defined]  # (for tests and docs)
    return assemble


def _inline(text: str, into: str, namespace: dict[str, Any]) -> list[str] | None:
    """Source lines setting `into` to what the compiled getter of `text` returns (compiled.py),
    for plain paths (`a.b`), literals, comparisons, and `||` and `&&` of those, and projections
    of them over a list (`items[].{id: sku || id, qty: quantity}`); None for any other
    expression (its getter is called). They raise where the getter raises (a comparison calls
    the same comparator function)."""
    try:
        ast = _parse(text)
    except ExpressionError:
        return None
    if ast["type"] == "projection":
        lines = _inline_projection(ast, into, namespace)
    else:
        lines = _inline_node(ast, into, namespace)
    if lines is None or not may_raise(ast):
        return lines
    # compile_expression's `_guarded`: a failure on the record is a MappingError naming it
    text_constant = f"TEXT_{len(namespace)}"
    namespace[text_constant] = text
    return [
        "try:",
        *("    " + line for line in lines),
        "except MappingError:",
        "    raise",
        "except (JMESPathError, TypeError, ValueError, ArithmeticError) as exc:",
        f"    raise MappingError(describe_failure({text_constant}, exc)) from None",
    ]


def _inline_node(
    node: Mapping[str, Any], into: str, namespace: dict[str, Any], base: str = "record"
) -> list[str] | None:
    """`node` evaluated on `base` (the record, a dict; or a list element, any value)."""
    names = field_path(node)
    if names is not None:
        if len(names) == 1 and base == "record":
            return [f"{into} = record.get({names[0]!r})"]
        # paths.py path_getter: None past a missing step, None where a step has no .get
        lines = ["try:", f"    {into} = {base}.get({names[0]!r})"]
        indent = "    "
        for name in names[1:]:
            lines += [
                f"{indent}if {into} is not None:",
                f"{indent}    {into} = {into}.get({name!r})",
            ]
            indent += "    "
        return [*lines, "except AttributeError:", f"    {into} = None"]
    if node["type"] == "literal":
        constant = f"LITERAL_{len(namespace)}"
        namespace[constant] = node["value"]  # the same object every time, as jmespath gives it
        return [f"{into} = {constant}"]
    if node["type"] in ("or_expression", "and_expression"):
        left = _inline_node(node["children"][0], into, namespace, base)
        right = _inline_node(node["children"][1], into, namespace, base)
        if left is None or right is None:
            return None
        # compiled.py `either`: the right side when the left is JMESPath-false; `both`: the
        # left side when it is false, else the right one
        false = _jmespath_false(into)
        test = f"if {false}:" if node["type"] == "or_expression" else f"if not ({false}):"
        return [*left, test, *("    " + line for line in right)]
    if node["type"] == "comparator":  # compiled.py `_comparator`: the interpreter's function
        compare = f"COMPARE_{len(namespace)}"
        namespace[compare] = DecimalInterpreter.COMPARATOR_FUNC[node["value"]]
        sides = (f"{compare}_left", f"{compare}_right")  # (named after the unique constant)
        left = _inline_node(node["children"][0], sides[0], namespace, base)
        right = _inline_node(node["children"][1], sides[1], namespace, base)
        if left is None or right is None:
            return None
        return [*left, *right, f"{into} = {compare}({sides[0]}, {sides[1]})"]
    return None


def _jmespath_false(name: str) -> str:
    """Source of compiled.py `_is_false(name)` (a text of no value is false too: blank, or an
    export's NULL marker), with no call for null and a plain text of a word or more."""
    return (
        f"{name} is None or ((not {name} or ({name}[0] in NO_VALUE_STARTS and "
        f"false_text({name}))) if type({name}) is str else _is_false({name}))"
    )


def _inline_projection(
    node: Mapping[str, Any],
    into: str,
    namespace: dict[str, Any],
    each_object: Callable[[dict[str, str]], list[str]] | None = None,
) -> list[str] | None:
    """compiled.py `project` / `project_flat` over a plain path of the record, with a right side
    of plain paths, literals and `||` chains, or an object of them (`{k: ..., ...}`).

    `each_object`: for an object, the lines that append to `into` what becomes of each one
    (given the variable that holds each key's value) instead of the object itself."""
    left, right = node["children"]
    flat = left["type"] == "flatten"
    source = left["children"][0] if flat else left
    if field_path(source) is None:
        return None
    element = "element_"
    if right["type"] == "multi_select_dict":
        pairs = []
        values: dict[str, str] = {}
        lines = [f"if {element} is None:", "    result_ = None", "else:"]
        for number, pair in enumerate(right["children"]):
            value = f"{into}_{number}"
            inline = _inline_node(pair["children"][0], value, namespace, element)
            if inline is None:
                return None
            lines += ["    " + line for line in inline]
            pairs.append(f"{pair['value']!r}: {value}")
            values[pair["value"]] = value
        if each_object is not None:  # (a null element is left out, as its object would be)
            lines[:3] = [f"if {element} is not None:"]
            lines += ["    " + line for line in each_object(values)]
        else:
            lines.append(f"    result_ = {{{', '.join(pairs)}}}")
    elif each_object is not None:
        return None
    else:
        inline = _inline_node(right, "result_", namespace, element)
        if inline is None:
            return None
        lines = inline
    source_lines = _inline_node(source, "base_", namespace)
    assert source_lines is not None
    # flatten: a list element's own elements take its place (one level), as they come
    loop = (
        [
            "    for outer_ in base_:",
            f"        for {element} in (outer_ if isinstance(outer_, list) else (outer_,)):",
        ]
        if flat
        else [f"    for {element} in base_:"]
    )
    pad = "        " if flat else "    "
    append = (
        []
        if each_object is not None
        else [f"{pad}    if result_ is not None:", f"{pad}        {into}.append(result_)"]
    )
    return [
        *source_lines,
        "if isinstance(base_, list):",
        f"    {into} = []",
        *loop,
        *(pad + "    " + line for line in lines),
        *append,
        "else:",
        f"    {into} = None",
    ]


def _inline_contents(text: str, namespace: dict[str, Any]) -> list[str] | None:
    """Source lines setting `items` to what `_contents` (event.py) makes of the list a projection
    of content fields gives (`lineItems[].{id: sku, quantity: quantity, ...}`), each object
    turned into its content item as it is read; None for any other expression. It reads and
    raises as build_event does: the projection cannot raise, and `_contents` then goes through
    the objects in order, so its first error is the first object's that has one."""
    try:
        ast = _parse(text)
    except ExpressionError:
        return None
    if ast["type"] != "projection" or ast["children"][1]["type"] != "multi_select_dict":
        return None
    if may_raise(ast):  # (its getter would raise before the first item is made)
        return None
    keys = [pair["value"] for pair in ast["children"][1]["children"]]
    if len(set(keys)) != len(keys) or not set(keys) <= generic._CONTENT_FIELDS:
        return None
    return _inline_projection(ast, "items", namespace, _content_item)


# event.py `catalog_text`, called only for a text that may hold an email (personal_text.py
# `may_hold_email`): an id's usual text costs no call.
CATALOG_TEXT = (
    "(catalog_text(text_) if ('@' in text_ or '%' in text_ or '\\uff20' in text_ "
    "or '\\ufe6b' in text_) else text_)"
)


def _content_item(values: dict[str, str]) -> list[str]:
    """event.py `_contents` for one object whose keys' values are in `values` (variable names),
    unrolled over those keys; `currency` is the event's, `items` the list it appends to."""
    where = "f'contents[{index_}]"  # (the object's place among those kept: nulls left out)
    lines = ["index_ = len(items)", "item_ = {}"]
    for name in ("id", "group_id", "name", "content_type"):
        value = values.get(name)
        if value is not None:
            lines += [  # (an empty text is no value: event.py `_contents`)
                f"if {value} is not None:",
                f"    text_ = {value}.strip() if type({value}) is str else "
                f"_as_text({value}, {where}.{name}')",
                "    if text_ and not (text_[0] == '(' and text_.lower() in PLACEHOLDERS):",
                f"        item_[{name!r}] = "
                f"{'item_text(text_)' if name == 'name' else CATALOG_TEXT}",
            ]
    for name in ("quantity", "currency", "amount", "amount_minor"):
        value = values.get(name)
        if value is not None:  # (an export's NULL, a blank: none, event.py `money_value`)
            lines += [f"if type({value}) is str:", f"    {value} = money_value({value})"]
    quantity = values.get("quantity")
    if quantity is not None:
        lines += [
            f"if {quantity} is not None:",
            f"    if type({quantity}) is int and 0 <= {quantity} <= MAX_MINOR_UNITS:",
            f"        item_['quantity'] = {quantity}",
            "    else:",
            f"        item_['quantity'] = minor_units({quantity}, {where}.quantity', 'items')",
        ]
    currency = "currency"
    raw_currency = values.get("currency")
    if raw_currency is not None:
        currency = "item_currency_"
        lines += [
            "item_currency_ = None",
            f"if {raw_currency} is not None:",
            "    try:",
            f"        item_currency_ = currency_code({raw_currency})",
            "    except MappingError as exc_:",
            "        raise item_currency_error(index_, exc_) from None",
            "    item_['currency'] = item_currency_",
            "item_currency_ = item_currency_ or currency",
        ]
    amount, amount_minor = values.get("amount"), values.get("amount_minor")
    if amount is not None and amount_minor is not None:
        lines += [
            f"if {amount} is not None and {amount_minor} is not None:",
            "    raise both_item_amounts(index_)",
        ]
    given = [f"{value} is not None" for value in (amount, amount_minor) if value is not None]
    if given:
        lines += [
            f"if {' or '.join(given)}:",
            f"    if {currency} is None:",
            "        raise no_item_currency(index_)",
        ]
        minor = f"item_['amount'] = minor_units({amount_minor}, {where}.amount_minor')"
        major = f"item_['amount'] = to_minor_units({amount}, {currency}, {where}.amount')"
        if amount is not None and amount_minor is not None:
            lines += [f"    if {amount_minor} is not None:", f"        {minor}", "    else:"]
            lines.append(f"        {major}")
        else:
            lines.append(f"    {minor if amount is None else major}")
    variant = values.get("variant_dict")
    if variant is not None:
        lines += [
            f"if {variant} is not None:",
            f"    {variant} = _variant_dict({variant}, {where}.variant_dict')",
            f"    if {variant}:",
            f"        item_['variant_dict'] = {variant}",
        ]
    return [*lines, "items.append(item_)"]


def _user(
    src: _Source, mapping: StreamMapping, style: str, fetch: Callable[[str, str], None]
) -> None:
    """build_user, unrolled over the mapping's user fields in their order (identity.py)."""
    wire = USER_FIELD_STYLES[style]
    plural = style == "plural"
    for index, name in enumerate(mapping.user_fields):
        src.add("try:")  # (a user field's failed expression: a note, event.py `_user_value`)
        src.depth += 1
        fetch(name, f"u{index}")
        src.depth -= 1
        src.add(
            "except (MappingError, JMESPathError) as exc_:",
            f"    notes.append(user_field_failed({name!r}, exc_, MAPPING.texts.get({name!r})))",
            f"    u{index} = None",
        )
    src.add("user = {}")
    for index, name in enumerate(mapping.user_fields):
        key = wire.get(name)
        if key is None:
            continue  # read (a getter may raise, as it does in build_event), never sent
        raw = f"u{index}"
        many = plural and name not in _ONE_VALUE_FIELDS
        sent = "[result]" if many else "result"
        # A short plain string first (fetch left no text of no value: "", blanks and markers
        # are None by now), then the rest.
        src.add(
            f"if type({raw}) is str and len({raw}) <= MAX_CACHED_TEXT:",
            f"    result, reason = _normalise_text({name!r}, {raw}, REGION)",
            "    if reason is None:",
            f"        user[{key!r}] = {sent}",
            "    elif reason is not ABSENT:",
            f"        notes.append(f'{name} {{reason}}; sent without it')",
            f"elif {raw} is not None and not blank({raw}):",
            f"    if not isinstance({raw}, (list, tuple)):",
            "        try:",
            f"            result = normalised({name!r}, {raw}, REGION)",
            "        except Rejected as e:",
            f"            notes.append(f'{name} {{e.reason}}; sent without it')",
            "        else:",
            f"            user[{key!r}] = {sent}",
            "    else:",
            f"        sent = _list_values({name!r}, [x for x in {raw} if not blank(x)], REGION, "
            f"{many!r}, notes)",
            "        if sent:",
            f"            user[{key!r}] = {'sent' if many else 'sent[0]'}",
        )
    src.add("if user:", "    event['user'] = user")


def _fixed_data(
    src: _Source,
    shape: str,
    fetch: Callable[[str, str], None],
    contents_lines: list[str] | None,
    amounts_both_read: bool,
) -> None:
    """event.py `_data` for one data shape, unrolled; `contents_lines` (`_inline_contents`) read
    and make the content items, where the mapping's contents are a projection of their fields;
    `amounts_both_read`: neither amount nor amount_minor is mapped (event.py)."""
    src.add(f"data = {{'type': {shape!r}}}")
    fetch("currency", "raw_currency")
    src.add(
        "if type(raw_currency) is str:",  # (an export's NULL: none, event.py `money_value`)
        "    raw_currency = money_value(raw_currency)",
        "currency = None if raw_currency is None else currency_code(raw_currency)",
    )
    for name in ("amount", "amount_minor"):
        fetch(name, name)
        src.add(f"if type({name}) is str:", f"    {name} = money_value({name})")
    src.add(
        "if amount is not None or amount_minor is not None:",
        "    if currency is None:",
        "        raise missing_currency(MAPPING)",
    )
    if amounts_both_read:
        src.add(
            "    if amount is not None and amount_minor is not None:",
            "        data['amount'] = agreed_amount(amount, amount_minor, currency)",
            "    elif amount_minor is not None:",
        )
    else:
        src.add("    if amount_minor is not None:")
    src.add(
        "        data['amount'] = minor_units(amount_minor, 'amount_minor')",
        "    else:",
        "        data['amount'] = to_minor_units(amount, currency, 'amount')",
        "if currency is not None:",
        "    data['currency'] = currency",
    )
    if shape != "customer_action" and contents_lines is not None:
        src.add(*contents_lines, "if items is not None:", "    data['contents'] = items")
    elif shape != "customer_action":
        fetch("contents", "items")
        src.add(  # (a JSON text column's NULL, null or N/A: no contents, event.py `_data`)
            "if items is not None and not (type(items) is str and blank(items)):",
            "    data['contents'] = _contents(items, currency)",
        )
    if shape in ("plan_enrollment", "custom"):
        fetch("plan_id", "v")
        src.add("if v is not None:", "    data['plan_id'] = catalog_text(_as_text(v, 'plan_id'))")
    if shape == "custom":
        fetch("custom_data", "v")
        src.add("if v is not None:", "    data.update(_custom_data(v, notes))")
    src.add("event['data'] = data")
