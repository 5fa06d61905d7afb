"""Plain dotted paths (`a.b.c`) as direct dict lookups, returning what jmespath returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Getter = Callable[[Any], Any]
Node = Mapping[str, Any]  # a jmespath syntax tree node


def field_path(node: Node) -> list[str] | None:
    """The names of a plain dotted path (`a.b.c`), or None for any other expression."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression":
        names: list[str] = []
        for child in node["children"]:
            sub = field_path(child)
            if sub is None:
                return None
            names.extend(sub)
        return names
    return None


def path_getter(names: Sequence[str]) -> Getter:
    """Direct dict lookups, returning what jmespath returns (None past a missing step)."""
    # jmespath calls .get on each step and answers None where there is no .get (a string, a
    # list): AttributeError is exactly that case. A missing step (None) is the common one, so it
    # is tested for rather than raised, which costs ten times more.
    if len(names) == 1:
        (a,) = names

        def get1(value: Any) -> Any:
            if value is None:
                return None
            try:
                return value.get(a)
            except AttributeError:
                return None

        return get1
    if len(names) == 2:
        a, b = names

        def get2(value: Any) -> Any:
            try:
                value = value.get(a)
                return None if value is None else value.get(b)
            except AttributeError:
                return None

        return get2
    if len(names) == 3:
        a, b, c = names

        def get3(value: Any) -> Any:
            try:
                value = value.get(a)
                if value is None:
                    return None
                value = value.get(b)
                return None if value is None else value.get(c)
            except AttributeError:
                return None

        return get3

    def get_n(value: Any) -> Any:
        try:
            for name in names:
                value = value.get(name)
                if value is None:
                    return None
        except AttributeError:
            return None
        return value

    return get_n
