"""Our JMESPath functions, and JMESPath's own made Decimal-aware (expressions.py uses them).

Our functions (in addition to JMESPath's own):
- `url_param(url, name)`: the first value of query parameter `name` in `url`, percent- and
  plus-decoded, or null. `url` may be absolute, relative ("/p?x=1"), a bare query string
  ("x=1&y=2" or "?x=1"), or null / not a string (null). A fragment is ignored, except that a
  parameter found nowhere else is looked up in a query inside the fragment ("#/p?x=1", single-page
  apps). An empty value ("oppref=") is null: an empty click id is no click id.
- `cookie(cookie_header, name)`: the value of cookie `name` in a Cookie header string
  ("a=1; __oppref=xyz"), surrounding double quotes removed, not percent-decoded; or null.
- `lower(s)`, `upper(s)`: case of a string; null stays null.
- `web_page(url)`: the URL when it is a web page's (`http://` or `https://`, in any case), else
  null: a hybrid app's `file:` page, `about:blank` or a relative path is no page to send.
- `parse_json(s)`: JSON stored as text (warehouse loaders, CSV exports keep arrays so) read as
  JSON, numbers as exact Decimals: `parse_json(products)[].{id: sku}`. Null stays null, and a value
  that already is an array or object is returned as it is, so one mapping serves both kinds of
  loader. Text that is not JSON is a mapping rejection naming the function.
- `stripe_amount(amount, currency)`: a Stripe amount (in Stripe's minor units, which are not
  ISO 4217's for ISK and MGA) as an exact amount in major units, to map to `amount`: ISK 500 is
  5, MGA 5000 is 5000, USD 2599 is 25.99. A null amount is null; a currency Stripe's amount
  cannot be read in is a mapping rejection.
- `micros_to_ms(t)`: epoch microseconds (GA4's `event_timestamp`) as epoch milliseconds, rounded
  down; `t` is an integer or a string of digits (BigQuery exports INT64 as either); null stays
  null. JMESPath has no arithmetic, and a microsecond time read as milliseconds would be 1,000x
  in the future.

Numbers: records carry JSON numbers as `decimal.Decimal`, which plain jmespath does not know.
Here a Decimal is a JMESPath number everywhere: type checks, `type()` ("number"), `sum` / `avg`
(exact: floats are read as their shortest repr, so `sum` of 0.1 and 0.2 is 0.3), `max`, `min`,
`sort`, `*_by`, `abs`, `ceil`, `floor`, comparisons (a JSON literal such as `19.99` equals
Decimal("19.99"); ordering a number against a string is null, per the JMESPath spec),
`to_number` (a string becomes an int or an exact Decimal, never a float), `to_string`
(Decimal("19.99") -> "19.99"). Known limit: `to_string` of an array or object renders the
Decimals inside it as JSON strings ("19.99" in quotes).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import unquote_plus

import msgspec
from jmespath import exceptions as jmes_exceptions
from jmespath import functions as jmes_functions
from jmespath.visitor import TreeInterpreter, _Expression

from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.money import money_value, parse_number, stripe_amount
from target_openai_capi.mapping.timestamps import MAX_EPOCH_MS, MIN_EPOCH_MS
from target_openai_capi.mapping.user_values import blank, false_text

_F = TypeVar("_F", bound=Callable[..., Any])

# --- Decimal-aware JMESPath types ---------------------------------------------------------------


def _jmes_type(value: object) -> str:
    """The JMESPath type of a Python value; Decimal is a number."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    if value is None:
        return "null"
    if isinstance(value, _Expression):
        return "expref"
    return "unknown"


def _exact(value: Any) -> Any:
    """A float as the Decimal of its shortest repr; anything else unchanged."""
    return Decimal(repr(value)) if type(value) is float else value


def _mixed(x: Any, y: Any) -> tuple[Any, Any]:
    """Compare a float with a Decimal by the float's repr: `19.99` == Decimal("19.99")."""
    if type(x) is float and type(y) is Decimal:
        return Decimal(repr(x)), y
    if type(y) is float and type(x) is Decimal:
        return x, Decimal(repr(y))
    return x, y


def _is_number(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float, Decimal))


def _equals(x: Any, y: Any) -> bool:
    # jmespath's rule: 0 / 1 never equal false / true.
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    return bool(operator.eq(*_mixed(x, y)))


def _ordering(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool | None]:
    def compare(x: Any, y: Any) -> bool | None:
        # The spec: ordering is defined for two numbers (and, in jmespath.py, two strings);
        # anything else is null rather than a Python TypeError.
        if _is_number(x) and _is_number(y):
            return op(*_mixed(x, y))
        if isinstance(x, str) and isinstance(y, str):
            return op(x, y)
        return None

    return compare


class DecimalInterpreter(TreeInterpreter):  # type: ignore[misc]  # jmespath ships no type hints
    """jmespath's tree interpreter with Decimal-aware comparisons."""

    COMPARATOR_FUNC = {
        "eq": _equals,
        "ne": lambda x, y: not _equals(x, y),
        "lt": _ordering(operator.lt),
        "gt": _ordering(operator.gt),
        "lte": _ordering(operator.le),
        "gte": _ordering(operator.ge),
    }

    def _is_false(self, value: Any) -> bool:
        """JMESPath falsiness, and a text of no value (compiled.py `_is_false`)."""
        return bool(super()._is_false(value)) or (type(value) is str and false_text(value))

    def visit_not_expression(self, node: dict[str, Any], value: Any) -> Any:
        """`!a`: true of a false value (`_is_false`), so false of 0, as jmespath has it."""
        result = self.visit(node["children"][0], value)
        if isinstance(result, (int, float, Decimal)) and not isinstance(result, bool):
            return False
        return self._is_false(result)

    def visit_comparator(self, node: dict[str, Any], value: Any) -> Any:
        """Compare with our functions: float literals equal Decimals, mixed ordering is null."""
        func = self.COMPARATOR_FUNC[node["value"]]
        return func(self.visit(node["children"][0], value), self.visit(node["children"][1], value))


# --- functions ------------------------------------------------------------------------------


class FunctionRefused(jmes_exceptions.JMESPathError):  # type: ignore[misc]
    """One of our functions cannot use the value it was given; str() never quotes the value."""


def _micros_to_ms(micros: int) -> int:
    """Epoch ms of whole epoch µs; a number that is already ms or seconds is refused, saying so
    (divided, it would be blamed as a time in seconds that the record never held)."""
    if micros > MAX_EPOCH_MS * 1000:
        raise FunctionRefused(
            "micros_to_ms() got a number too large for epoch microseconds (nanoseconds?): "
            "convert it to milliseconds upstream and map it to timestamp_ms"
        )
    if micros >= MIN_EPOCH_MS * 1000:
        return micros // 1000
    if micros >= MIN_EPOCH_MS:
        raise FunctionRefused(
            "micros_to_ms() got epoch milliseconds, not microseconds: map the value to "
            "timestamp_ms as it is, without micros_to_ms()"
        )
    raise FunctionRefused(
        "micros_to_ms() got epoch seconds, not microseconds: map the value to timestamp "
        "as it is, without micros_to_ms()"
    )


def _query_value(query: str, name: str) -> str | None:
    """The first value of `name` in a query string (no leading "?"), decoded; None if absent."""
    for pair in query.split("&"):
        key, _, raw = pair.partition("=")
        if key.startswith("amp;"):  # a URL copied out of HTML: "a=1&amp;oppref=x"
            key = key[4:]
        if key != name:
            encoded = "%" in key or "+" in key
            if not encoded or unquote_plus(key) != name:
                continue
        value = unquote_plus(raw) if ("%" in raw or "+" in raw) else raw
        if value:
            return value
    return None


def url_param(url: object, name: str) -> str | None:
    """Value of query parameter `name` in `url` (absolute, relative or a bare query), or None."""
    if not isinstance(url, str) or not url:
        return None
    rest, _, fragment = url.partition("#")
    if "?" in rest:
        query = rest.partition("?")[2]
    elif "=" in rest and "://" not in rest and not rest.startswith("/"):
        query = rest  # a bare query string: "oppref=abc&x=1"
    else:
        query = ""
    found = _query_value(query, name) if query else None
    if found is None and "?" in fragment:
        found = _query_value(fragment.partition("?")[2], name)
    return found


def cookie(header: object, name: str) -> str | None:
    """Value of cookie `name` in a Cookie header string, or None."""
    if not isinstance(header, str):
        return None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def _signature(*arguments: dict[str, Any]) -> Callable[[_F], _F]:
    """jmespath's @signature (argument types of a function), typed for mypy."""
    decorate: Callable[[_F], _F] = jmes_functions.signature(*arguments)
    return decorate


# JSON text longer than this is not a column of line items: refused, not parsed.
MAX_JSON_TEXT = 1_000_000
_JSON_TEXT: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(text: object) -> Any:
    """JSON text as JSON (numbers exact); null, arrays and objects as they are; a blank text or
    an export's mark of no value (`NULL`, `N/A`: a CSV cell of no line items) as null."""
    if text is None or isinstance(text, (list, dict)):
        return text
    if not isinstance(text, str) or len(text) > MAX_JSON_TEXT:
        raise FunctionRefused("parse_json() expects JSON text of at most 1,000,000 characters")
    if blank(text):
        return None
    try:
        return _JSON_TEXT.decode(text)
    except (msgspec.DecodeError, InvalidOperation, RecursionError):
        raise FunctionRefused("parse_json() could not read its text as JSON") from None


# A whole number of more digits stays a Decimal: an int of thousands of digits cannot be written
# out (Python refuses past 4,300) and one of millions takes minutes to build. (256: an id.)
MAX_WHOLE_DIGITS = 256


def _whole(number: Any, rounding: str) -> Any:
    """ceil / floor, an int as JMESPath gives; but a whole number past MAX_WHOLE_DIGITS stays a
    Decimal (math.ceil of 1E+999999999 would build an int of a billion digits, for minutes)."""
    if isinstance(number, Decimal):
        if not number.is_finite():
            raise FunctionRefused(f"{number} has no whole value")
        whole = number.to_integral_value(rounding=rounding)
        return int(whole) if whole.adjusted() < MAX_WHOLE_DIGITS else whole
    return math.ceil(number) if rounding == ROUND_CEILING else math.floor(number)


class Functions(jmes_functions.Functions):  # type: ignore[misc]  # jmespath ships no type hints
    """JMESPath built-ins that know Decimal, plus our functions."""

    def _type_check_single(self, current: Any, types: list[str], function_name: str) -> None:
        # The parent compares Python type *names* against a table without Decimal; check by
        # JMESPath type instead, with the same rules for arrays of one element type.
        actual = _jmes_type(current)
        allowed: set[str] = set()
        subtypes: set[str] = set()
        for declared in types:
            top, _, sub = declared.partition("-")
            allowed.add(top)
            if sub:
                subtypes.add(sub)
        if actual not in allowed:
            raise jmes_exceptions.JMESPathTypeError(function_name, current, actual, types)
        if actual != "array" or not subtypes or not current:
            return
        # As in jmespath: the first element picks which array type applies, all must match it.
        first = _jmes_type(current[0])
        if first not in subtypes:
            raise jmes_exceptions.JMESPathTypeError(function_name, current[0], first, types)
        for element in current:
            kind = _jmes_type(element)
            if kind != first:
                raise jmes_exceptions.JMESPathTypeError(function_name, element, kind, types)

    def _convert_to_jmespath_type(self, pyobject: str) -> str:
        # Used by sort_by / min_by / max_by on a type *name*.
        return (
            "number" if pyobject == "Decimal" else str(super()._convert_to_jmespath_type(pyobject))
        )

    @_signature({"types": [], "variadic": True})
    def _func_not_null(self, *arguments: Any) -> Any:
        """The first argument that is not null, nor a text of no value (an export's `\\N` or
        `NULL`, blank: as `||` takes them, compiled.py `_is_false`)."""
        for argument in arguments:
            if argument is not None and not (type(argument) is str and false_text(argument)):
                return argument
        return None

    @_signature({"types": []})
    def _func_type(self, arg: Any) -> str:
        return _jmes_type(arg)

    @_signature({"types": ["array-number"]})
    def _func_sum(self, arg: list[Any]) -> Any:
        if all(type(x) is int for x in arg):
            return sum(arg)
        return sum(_exact(x) for x in arg)

    @_signature({"types": ["array-number"]})
    def _func_avg(self, arg: list[Any]) -> Any:
        if not arg:
            return None
        if all(type(x) is int for x in arg):
            return sum(arg) / len(arg)
        return sum(_exact(x) for x in arg) / len(arg)

    @_signature({"types": ["array-number", "array-string"]})
    def _func_max(self, arg: list[Any]) -> Any:
        return max(arg, key=_exact) if arg else None

    @_signature({"types": ["array-number", "array-string"]})
    def _func_min(self, arg: list[Any]) -> Any:
        return min(arg, key=_exact) if arg else None

    @_signature({"types": ["array-string", "array-number"]})
    def _func_sort(self, arg: list[Any]) -> list[Any]:
        return sorted(arg, key=_exact)

    @_signature({"types": ["array", "string"]}, {"types": []})
    def _func_contains(self, subject: Any, search: Any) -> bool:
        if isinstance(subject, str):
            return isinstance(search, str) and search in subject
        return any(_equals(element, search) for element in subject)

    @_signature({"types": []})
    def _func_to_number(self, arg: Any) -> Any:
        if _is_number(arg):
            return arg
        if not isinstance(arg, str):
            return None
        try:
            number = parse_number(arg, "value")
        except MappingError:
            return None
        # "12" is the int 12; "12.50" and "1e3" stay exact Decimals, never floats. So does a
        # whole number past MAX_WHOLE_DIGITS.
        if "." in arg or "e" in arg or "E" in arg:
            return number
        if isinstance(number, Decimal) and number.adjusted() >= MAX_WHOLE_DIGITS:
            return number
        return int(number)

    @_signature({"types": ["number"]})
    def _func_ceil(self, arg: Any) -> Any:
        return _whole(arg, ROUND_CEILING)

    @_signature({"types": ["number"]})
    def _func_floor(self, arg: Any) -> Any:
        return _whole(arg, ROUND_FLOOR)

    @_signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        if isinstance(arg, Decimal):
            return str(arg)
        return str(super()._func_to_string(arg))

    @_signature({"types": []}, {"types": ["string"]})
    def _func_url_param(self, url: Any, name: str) -> str | None:
        return url_param(url, name)

    @_signature({"types": []}, {"types": ["string"]})
    def _func_cookie(self, header: Any, name: str) -> str | None:
        return cookie(header, name)

    @_signature({"types": ["string", "null"]})
    def _func_lower(self, text: str | None) -> str | None:
        return None if text is None else text.lower()

    @_signature({"types": ["string", "null"]})
    def _func_upper(self, text: str | None) -> str | None:
        return None if text is None else text.upper()

    @_signature({"types": []})
    def _func_web_page(self, url: Any) -> str | None:
        if type(url) is str and url[:8].lower().startswith(("https://", "http://")):
            return url
        return None

    @_signature({"types": ["string", "array", "object", "null"]})
    def _func_parse_json(self, text: Any) -> Any:
        return parse_json(text)

    @_signature({"types": ["number", "string", "null"]}, {"types": ["string", "null"]})
    def _func_stripe_amount(self, amount: Any, currency: Any) -> Decimal | None:
        # (an export's NULL, N/A, \\N or a blank is no value, as for a mapped amount: no
        # amount; a currency so written, none, as null is)
        amount, currency = money_value(amount), money_value(currency)
        return stripe_amount(amount, currency)

    @_signature({"types": ["number", "string", "null"]})
    def _func_micros_to_ms(self, micros: Any) -> int | None:
        if micros is None:
            return None
        # Bounded first: int() of 1e5000000 would take minutes (years 10**20 µs are no time).
        if isinstance(micros, str) and len(micros) <= 20 and micros.isascii() and micros.isdigit():
            return _micros_to_ms(int(micros))
        if isinstance(micros, int) and 0 <= micros < 10**20:
            return _micros_to_ms(micros)
        if (
            isinstance(micros, Decimal)
            and micros.is_finite()
            and micros.adjusted() < 20
            and micros >= 0
            and micros == micros.to_integral_value()
        ):
            return _micros_to_ms(int(micros))
        raise FunctionRefused("micros_to_ms() expects epoch microseconds, a whole number")
