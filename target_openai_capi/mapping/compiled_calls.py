"""Compiled function calls and expression references (`f(a)`, `&a`) for compiled.py.

The interpreter's own function table is called, after the interpreter's own argument checks, so
compiled and interpreted calls cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jmespath.exceptions import JMESPathTypeError
from jmespath.visitor import _Expression

from target_openai_capi.mapping.paths import Getter, Node

if TYPE_CHECKING:
    from target_openai_capi.mapping.compiled import Runtime


def function_call(
    node: Node, runtime: Runtime, compile_child: Callable[[Node], Getter]
) -> Getter | None:
    """`f(a, b)`: the interpreter's own function, after its own argument type checks; None for
    an unknown function or a wrong argument count (the interpreter reports those per record)."""
    name: str = node["value"]
    functions = runtime.functions
    spec = functions.FUNCTION_TABLE.get(name)
    if spec is None:
        return None
    function: Callable[..., Any] = spec["function"]
    signature: Sequence[Mapping[str, Any]] = spec["signature"]
    children: Sequence[Node] = node["children"]
    variadic = bool(signature) and signature[-1].get("variadic")
    if (len(children) < len(signature)) if variadic else (len(children) != len(signature)):
        return None
    getters = [compile_child(child) for child in children]
    # As jmespath's _type_check: one check per declared parameter (a variadic tail is not
    # checked). A literal argument that passes now passes every time, so it is checked once.
    checks: list[tuple[int, list[str]]] = []
    for position, parameter in enumerate(signature):
        types = parameter["types"]
        if types and not _literal_passes(children[position], types, name, functions):
            checks.append((position, types))
    check = functions._type_check_single
    if not checks and len(getters) == 1:
        (only,) = getters
        return lambda value: function(functions, only(value))
    if not checks and len(getters) == 2:
        first, second = getters
        return lambda value: function(functions, first(value), second(value))

    def call(value: Any) -> Any:
        arguments = [getter(value) for getter in getters]
        for position, types in checks:
            check(arguments[position], types, name)
        return function(functions, *arguments)

    return call


def _literal_passes(node: Node, types: list[str], name: str, functions: Any) -> bool:
    """Whether `node` is a literal that passes the argument type check."""
    if node["type"] != "literal":
        return False
    try:
        functions._type_check_single(node["value"], types, name)
    except JMESPathTypeError:
        return False
    return True


class _CompiledVisitor:
    """Stands in for the interpreter inside an expref: `visit` runs the compiled closure."""

    def __init__(self, getter: Getter) -> None:
        self._getter = getter

    def visit(self, node: Node, value: Any) -> Any:
        """The compiled expression on `value` (`node` is the one it was compiled from)."""
        return self._getter(value)


def expression_reference(node: Node, compiled_child: Getter) -> Getter:
    """`&a` (for sort_by, max_by, map, ...): jmespath's expref object, running compiled code."""
    child: Node = node["children"][0]
    visitor = _CompiledVisitor(compiled_child)
    # A new object per evaluation, as in jmespath, so that no caller can observe sharing.
    return lambda value: _Expression(child, visitor)
