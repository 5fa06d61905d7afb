"""Field expressions: JMESPath compiled once, with our functions and Decimal-aware built-ins.

Our functions and the Decimal-aware built-ins are in expression_functions.py.

Speed: an expression is compiled once to nested Python closures (`compiled.py`) that return
exactly what jmespath's interpreter returns and call the same functions and comparators; a plain
dotted path (`id`, `customer.email`) becomes direct dict lookups. Only an expression with a node
type the compiler does not know is interpreted by jmespath per record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jmespath
from jmespath import exceptions as jmes_exceptions
from jmespath.visitor import Options

from target_openai_capi.mapping.compiled import Runtime, compile_ast, may_raise
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.expression_functions import (
    DecimalInterpreter,
    FunctionRefused,
    Functions,
)

Getter = Callable[[Mapping[str, Any]], Any]
_F = TypeVar("_F", bound=Callable[..., Any])


class ExpressionError(ValueError):
    """A field expression in the config is not valid; the message names it and what is wrong."""


# One interpreter for every expression: ParsedResult.search() would build a new interpreter and
# function table per call, which is most of the cost of a small expression.
_FUNCTIONS = Functions()
_INTERPRETER = DecimalInterpreter(Options(custom_functions=_FUNCTIONS))
# The compiler calls the very same functions and comparators.
_RUNTIME = Runtime(functions=_FUNCTIONS, comparators=DecimalInterpreter.COMPARATOR_FUNC)


# --- compilation ----------------------------------------------------------------------------


def _check_functions(node: Mapping[str, Any], text: str, argument_types: Any = ()) -> None:
    """Unknown functions and wrong argument counts are config errors: find them now; and an
    expression reference (`&price`) anywhere but as the argument of a function that takes one
    (sort_by, max_by, min_by, map): elsewhere JMESPath gives the reference object itself, which
    would go to the API as text (`<jmespath.visitor._Expression object at 0x7f...>`)."""
    if node.get("type") == "expref" and "expref" not in argument_types:
        raise ExpressionError(
            f"expression {text!r}: & makes an expression reference, which only a function "
            "such as sort_by(list, &field) takes as an argument; to read a property, write it "
            "without &"
        )
    if node.get("type") == "function_expression":
        name = node["value"]
        spec = _FUNCTIONS.FUNCTION_TABLE.get(name)
        if spec is None:
            known = ", ".join(sorted(_FUNCTIONS.FUNCTION_TABLE))
            raise ExpressionError(
                f"expression {text!r} calls unknown function {name}() (known: {known})"
            )
        signature = spec["signature"]
        count = len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic")
        if (count < len(signature)) if variadic else (count != len(signature)):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            raise ExpressionError(
                f"expression {text!r}: {name}() takes {expected} argument(s), got {count}"
            )
        for index, child in enumerate(node["children"]):
            if isinstance(child, Mapping):
                spec_of = signature[min(index, len(signature) - 1)] if signature else {}
                _check_functions(child, text, spec_of.get("types", ()))
        return
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            _check_functions(child, text)


def _describe_failure(text: str, error: Exception) -> str:
    """A per-record evaluation failure, without the record's values (they may be PII)."""
    if isinstance(error, FunctionRefused):
        return f"expression {text!r} failed: {error}"
    if isinstance(error, jmes_exceptions.JMESPathTypeError):
        expected = ", ".join(error.expected_types)
        return (
            f"expression {text!r} failed: {error.function_name}() got {error.actual_type}, "
            f"expected {expected}"
        )
    return f"expression {text!r} failed: {type(error).__name__}"


# Bare words JMESPath reads as property names, which a user most likely meant as values.
_VALUE_WORDS = frozenset({"true", "false", "null"})


def bare_names(text: str) -> list[str]:
    """The property names written bare (unquoted) in an expression, in order; [] if it does
    not tokenise (its parse says why)."""
    try:
        tokens = jmespath.lexer.Lexer().tokenize(text)
        return [t["value"] for t in tokens if t["type"] == "unquoted_identifier"]
    except jmes_exceptions.JMESPathError:
        return []


def _check_value_words(text: str) -> None:
    """`test == false` compares `test` with a property named false (null): every record would
    fail the filter. A bare true, false or null is refused, with how to write the value (or
    the property, quoted, if one really is named so)."""
    for name in bare_names(text):
        if name in _VALUE_WORDS:
            raise ExpressionError(
                f"expression {text!r}: bare {name} reads a property named {name}; write the "
                f'value as `{name}` (in backticks), or a property so named as "{name}"'
            )


def _parse(text: str) -> dict[str, Any]:
    """The syntax tree of a field expression; config errors are ExpressionError."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression {text!r} is not text (write it as a string)")
    if not text.strip():
        raise ExpressionError(f"expression {text!r} is empty")
    if len(text) > MAX_EXPRESSION_CHARS:  # (JMESPath's lexer reads a long quoted text in
        shown = text[:57] + "..."  # time of its length squared: 1M characters took 29 s)
        raise ExpressionError(
            f"expression {shown!r} is {len(text):,} characters long, more than "
            f"{MAX_EXPRESSION_CHARS:,}: a long list of values belongs in a stream map"
        )
    try:
        parsed = jmespath.compile(text)
    except jmes_exceptions.JMESPathError as e:
        raise ExpressionError(f"expression {text!r} is not valid JMESPath: {e}") from None
    except RecursionError:  # (JMESPath's parser recurses once a level)
        raise ExpressionError(_too_deep(text)) from None
    ast: dict[str, Any] = parsed.parsed
    if _depth(ast) > MAX_EXPRESSION_DEPTH:  # (what walks it recurses too, as does the builder)
        raise ExpressionError(_too_deep(text))
    _check_functions(ast, text)
    _check_value_words(text)
    return ast


def _guarded(text: str, evaluate: Getter) -> Getter:
    """`evaluate` with its failures on a record turned into a MappingError naming `text`."""

    def guarded(record: Mapping[str, Any]) -> Any:
        try:
            return evaluate(record)
        except MappingError:
            raise
        except (jmes_exceptions.JMESPathError, TypeError, ValueError, ArithmeticError) as e:
            raise MappingError(_describe_failure(text, e)) from None

    return guarded


def _interpreted(text: str, ast: dict[str, Any]) -> Getter:
    """jmespath's interpreter walking `ast` on each record."""
    visit = _INTERPRETER.visit
    return _guarded(text, lambda record: visit(ast, record))


def interpret_expression(text: str) -> Getter:
    """A field expression always run by jmespath's interpreter: the reference for the compiler."""
    return _interpreted(text, _parse(text))


# Deepest syntax tree an expression may have: a path of 200 steps, 200 alternatives joined by
# `||` (a generated list of names). Deeper ones would exhaust the recursion of what reads the
# tree (JMESPath's own parser fails at about 600). (A path too deep for the compiled builder,
# past Python's 100 levels of indentation, is built by build_event: assembler.py.)
MAX_EXPRESSION_DEPTH = 200
# Longest expression text (a fixed custom_data or contents written out fits many times over).
MAX_EXPRESSION_CHARS = 100_000


def _too_deep(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return (
        f"expression {shown!r} nests more than {MAX_EXPRESSION_DEPTH} levels deep (steps of "
        "a path, terms joined by || or &&, brackets): split it, or for a list of values write "
        "contains(['a', 'b'], name)"
    )


def _depth(ast: dict[str, Any]) -> int:
    """The depth of a JMESPath syntax tree, without recursion: each step of a path (which
    JMESPath keeps as one node, `a.b.c`) counts as a level, as the compiled builder nests it."""
    deepest, stack = 0, [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        steps = node.get("type") == "subexpression"
        stack += [
            (child, depth + (index if steps else 1))
            for index, child in enumerate(node.get("children", ()))
            if isinstance(child, dict)
        ]
    return deepest


def literal(text: object) -> tuple[Any] | None:
    """(value,) when the expression is one literal ('web', `"USD"`, `true`, `null`), else
    None."""
    if not isinstance(text, str):
        return None
    try:
        parsed = jmespath.compile(text).parsed
    except (jmes_exceptions.JMESPathError, RecursionError):
        return None
    return (parsed.get("value"),) if parsed.get("type") == "literal" else None


def gives_nothing(text: object) -> bool:
    """True for an expression that is `null` or the empty text: a field mapped so has no value
    (an empty text is none, event.py `_value`), as a preset's field is left out."""
    return literal(text) in ((None,), ("",))


def compile_expression(text: str) -> Getter:
    """Compile a field expression once into a function of a record."""
    ast = _parse(text)
    getter = compile_ast(ast, _RUNTIME)
    if getter is None:
        return _interpreted(text, ast)
    # A getter that cannot raise needs no guard, and the hottest ones (paths) stay bare.
    return _guarded(text, getter) if may_raise(ast) else getter
