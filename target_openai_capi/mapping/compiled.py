"""JMESPath syntax trees compiled to nested Python closures: jmespath's results, without its walk.

jmespath's TreeInterpreter looks up a visitor method by node type for every node of every record;
for a projection over line items that is most of the cost of mapping an order. Here each node
becomes a closure once, at start-up, that does exactly what the visitor method would do
(jmespath 1.1 `visitor.TreeInterpreter`, the reference for every rule below). Functions and
comparisons are not re-implemented: the compiler is handed the interpreter's function table and
comparator functions and calls those, so the two paths cannot drift apart.

A tree with a node type the compiler does not know compiles to None, and the caller interprets
it instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Number
from typing import Any

from target_openai_capi.mapping.compiled_calls import expression_reference, function_call
from target_openai_capi.mapping.paths import Getter, Node, field_path, path_getter
from target_openai_capi.mapping.user_values import NO_VALUE_STARTS, false_text


@dataclass(frozen=True)
class Runtime:
    """What compiled expressions call into: the interpreter's functions and comparators."""

    functions: Any  # a jmespath `Functions` instance (jmespath has no type hints)
    comparators: Mapping[str, Callable[[Any, Any], Any]]


class _Unsupported(Exception):
    """A node the compiler does not handle: the whole expression is interpreted instead."""


def compile_ast(node: Node, runtime: Runtime) -> Getter | None:
    """A closure equal to interpreting `node`, or None when some node type is not compiled."""
    try:
        return _compile(node, runtime)
    except _Unsupported:
        return None


def may_raise(node: Node) -> bool:
    """Whether evaluating `node` can raise (a function, comparison, `!` or slice is inside)."""
    if node["type"] in _MAY_RAISE:
        return True
    return any(isinstance(child, Mapping) and may_raise(child) for child in node["children"])


# Functions raise type errors; comparisons, `!` (x == 0) and slices (step 0) can raise on odd
# values. Every other node only reads dicts and lists and cannot.
_MAY_RAISE = frozenset({"function_expression", "comparator", "not_expression", "slice"})


def _compile(node: Node, runtime: Runtime) -> Getter:
    """Dispatch on the node type."""
    compiler = _NODES.get(node["type"])
    if compiler is None:
        raise _Unsupported(node["type"])
    return compiler(node, runtime)


# --- JMESPath truthiness and numbers, as in jmespath.visitor --------------------------------


_EMPTY_WHEN_FALSE = (str, list, dict)


def _is_false(value: Any) -> bool:
    """JMESPath falsiness: null, false, "", [] and {} (0 is true); and, as the target reads a
    value everywhere, a text of no value: blank, or an export's mark of a missing one (`\\N`,
    `NULL`, `N/A`, pandas' `NaN`: NULL_MARKERS). `a || b` takes b when a is one of them (a
    Snowflake unload's `\\N` in `total` hid `revenue`), `a && b` stops at it, and `!a` is true
    of it."""
    if value is None or value is False:
        return True
    kind = type(value)
    if kind is str:  # (a text of a word: one set lookup)
        return not value or (value[0] in NO_VALUE_STARTS and false_text(value))
    if kind is list or kind is dict:  # the usual values: no comparisons
        return not value
    if isinstance(value, _EMPTY_WHEN_FALSE):  # subclasses compare as jmespath compares them
        return value == "" or value == [] or value == {}
    return False


def _is_actual_number(value: Any) -> bool:
    """A number that is not a bool."""
    return not isinstance(value, bool) and isinstance(value, Number)


# --- node compilers: one per node type ------------------------------------------------------


def _field(node: Node, runtime: Runtime) -> Getter:
    """`name`: the key of an object, None for anything else."""
    return path_getter([node["value"]])


def _sequence(nodes: Sequence[Node], runtime: Runtime) -> Getter:
    """Each node applied to the result of the one before (runs of fields become one lookup)."""
    getters: list[Getter] = []
    names: list[str] = []
    for child in nodes:
        path = field_path(child)
        if path is not None:
            names.extend(path)
            continue
        if names:
            getters.append(path_getter(names))
            names = []
        getters.append(_compile(child, runtime))
    if names:
        getters.append(path_getter(names))
    if len(getters) == 1:
        return getters[0]
    if len(getters) == 2:
        first, second = getters
        return lambda value: second(first(value))

    def chain(value: Any) -> Any:
        for getter in getters:
            value = getter(value)
        return value

    return chain


def _subexpression(node: Node, runtime: Runtime) -> Getter:
    """`a.b`: the right side applied to the left side's result."""
    return _sequence(node["children"], runtime)


def _index_expression(node: Node, runtime: Runtime) -> Getter:
    """`a[0]`, `a[1:2]`: the index or slice applied to the left side's result."""
    return _sequence(node["children"], runtime)


def _pipe(node: Node, runtime: Runtime) -> Getter:
    """`a | b`: the right side applied to the left side's whole result (ends a projection)."""
    return _sequence(node["children"], runtime)


def _index(node: Node, runtime: Runtime) -> Getter:
    """`[i]`: an element of a list (negative counts from the end), None if absent or no list."""
    position: int = node["value"]

    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _slice(node: Node, runtime: Runtime) -> Getter:
    """`[start:stop:step]`: a slice of a list, None for anything else."""
    part = slice(*node["children"])
    return lambda value: value[part] if isinstance(value, list) else None


def _projection(node: Node, runtime: Runtime) -> Getter:
    """`a[*].b`, `a[].b`: the right side on each element of a list, None results dropped."""
    left_node, right_node = node["children"]
    if left_node["type"] == "flatten" and right_node["type"] not in ("identity", "current"):
        return _flat_projection(left_node["children"][0], right_node, runtime)
    left = _compile(left_node, runtime)
    if right_node["type"] in ("identity", "current"):

        def project_identity(value: Any) -> Any:
            base = left(value)
            if not isinstance(base, list):
                return None
            return [element for element in base if element is not None]

        return project_identity
    right = _compile(right_node, runtime)

    def project(value: Any) -> Any:
        base = left(value)
        if not isinstance(base, list):
            return None
        return [result for result in map(right, base) if result is not None]

    return project


def _flat_projection(source_node: Node, right_node: Node, runtime: Runtime) -> Getter:
    """`a[].b`: flatten and projection in one pass over the list (the Shopify line-item shape)."""
    source = _compile(source_node, runtime)
    right = _compile(right_node, runtime)

    def project_flat(value: Any) -> Any:
        base = source(value)
        if not isinstance(base, list):
            return None
        collected: list[Any] = []
        for element in base:
            # Elements in the order flatten would give them, each projected as it comes.
            if isinstance(element, list):
                collected.extend(result for result in map(right, element) if result is not None)
                continue
            result = right(element)
            if result is not None:
                collected.append(result)
        return collected

    return project_flat


def _value_projection(node: Node, runtime: Runtime) -> Getter:
    """`a.*.b`: the right side on each value of an object, None results dropped."""
    left = _compile(node["children"][0], runtime)
    right = _compile(node["children"][1], runtime)

    def project_values(value: Any) -> Any:
        base = left(value)
        if base is None:
            return None
        try:
            values = base.values()
        except AttributeError:
            return None
        return [result for result in map(right, values) if result is not None]

    return project_values


def _filter_projection(node: Node, runtime: Runtime) -> Getter:
    """`a[?cond].b`: the right side on each list element where cond is true, None dropped."""
    left, right, condition = (_compile(child, runtime) for child in node["children"])

    def project_filtered(value: Any) -> Any:
        base = left(value)
        if not isinstance(base, list):
            return None
        collected = []
        for element in base:
            if not _is_false(condition(element)):
                result = right(element)
                if result is not None:
                    collected.append(result)
        return collected

    return project_filtered


def _flatten(node: Node, runtime: Runtime) -> Getter:
    """`a[]`: a list with its list elements spliced in (one level), None for a non-list."""
    child = _compile(node["children"][0], runtime)

    def flatten(value: Any) -> Any:
        base = child(value)
        if not isinstance(base, list):
            return None
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    return flatten


def _multi_select_dict(node: Node, runtime: Runtime) -> Getter:
    """`{k: a, ...}`: a new object of the expressions' results; None on None."""
    pairs = [(pair["value"], _compile(pair, runtime)) for pair in node["children"]]

    def select_dict(value: Any) -> Any:
        if value is None:
            return None
        # A loop, not a dict comprehension: Python 3.11 gives a comprehension its own frame.
        collected = {}
        for key, getter in pairs:
            collected[key] = getter(value)
        return collected

    return select_dict


def _key_val_pair(node: Node, runtime: Runtime) -> Getter:
    """`k: a` inside `{...}`: the value expression."""
    return _compile(node["children"][0], runtime)


def _multi_select_list(node: Node, runtime: Runtime) -> Getter:
    """`[a, b]`: a new list of the expressions' results; None on None."""
    getters = [_compile(child, runtime) for child in node["children"]]

    def select_list(value: Any) -> Any:
        if value is None:
            return None
        return [getter(value) for getter in getters]

    return select_list


def _literal(node: Node, runtime: Runtime) -> Getter:
    """`'web'`, `` `1` ``: the constant (the same object every time, as in jmespath)."""
    constant = node["value"]
    return lambda value: constant


def _current(node: Node, runtime: Runtime) -> Getter:
    """`@` (and the implicit identity of `a[]`): the value itself."""
    return lambda value: value


def _not_expression(node: Node, runtime: Runtime) -> Getter:
    """`!a`: true of a JMESPath-false value (`_is_false`: a text of no value too), so `!0` is
    false (0 is true in JMESPath)."""
    child = _compile(node["children"][0], runtime)

    def negate(value: Any) -> Any:
        return _is_false(child(value))  # (0 is no JMESPath-false value: !0 is false)

    return negate


def _or_expression(node: Node, runtime: Runtime) -> Getter:
    """`a || b`: the left result unless it is JMESPath-false, then the right one."""
    left = _compile(node["children"][0], runtime)
    right = _compile(node["children"][1], runtime)

    def either(value: Any) -> Any:
        result = left(value)
        if result is None or result is False:
            return right(value)  # the usual false values, tested inline
        if type(result) is str:
            no_value = not result or (result[0] in NO_VALUE_STARTS and false_text(result))
            return right(value) if no_value else result
        return right(value) if _is_false(result) else result

    return either


def _and_expression(node: Node, runtime: Runtime) -> Getter:
    """`a && b`: the left result if it is JMESPath-false, else the right one."""
    left = _compile(node["children"][0], runtime)
    right = _compile(node["children"][1], runtime)

    def both(value: Any) -> Any:
        result = left(value)
        return result if _is_false(result) else right(value)

    return both


def _comparator(node: Node, runtime: Runtime) -> Getter:
    """`a == b`, `a < b`, ...: the interpreter's comparator function on both results."""
    compare = runtime.comparators[node["value"]]
    left = _compile(node["children"][0], runtime)
    right = _compile(node["children"][1], runtime)
    return lambda value: compare(left(value), right(value))


def _function_expression(node: Node, runtime: Runtime) -> Getter:
    getter = function_call(node, runtime, lambda child: _compile(child, runtime))
    if getter is None:
        raise _Unsupported(node["value"])  # the interpreter reports it per record
    return getter


def _expref(node: Node, runtime: Runtime) -> Getter:
    return expression_reference(node, _compile(node["children"][0], runtime))


_NODES: dict[str, Callable[[Node, Runtime], Getter]] = {
    "field": _field,
    "subexpression": _subexpression,
    "index_expression": _index_expression,
    "pipe": _pipe,
    "index": _index,
    "slice": _slice,
    "projection": _projection,
    "value_projection": _value_projection,
    "filter_projection": _filter_projection,
    "flatten": _flatten,
    "multi_select_dict": _multi_select_dict,
    "key_val_pair": _key_val_pair,
    "multi_select_list": _multi_select_list,
    "literal": _literal,
    "current": _current,
    "identity": _current,
    "not_expression": _not_expression,
    "or_expression": _or_expression,
    "and_expression": _and_expression,
    "comparator": _comparator,
    "function_expression": _function_expression,
    "expref": _expref,
}
