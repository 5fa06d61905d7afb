"""Field expressions: JMESPath with our functions, Decimal-aware, and the dotted-path fast path."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import jmespath
import pytest
from jmespath.visitor import _Expression

from target_openai_capi.mapping import compiled, expressions
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.expression_functions import cookie, url_param
from target_openai_capi.mapping.expressions import (
    ExpressionError,
    Getter,
    compile_expression,
    interpret_expression,
)

RECORDS: list[dict[str, Any]] = [
    {},
    {"id": 1, "a": {"b": {"c": {"d": 5}}}},
    {"id": None, "a": None},
    {"id": "x", "a": "a string"},
    {"a": [1, 2, 3]},
    {"a": {"b": "a string"}},
    {"a": {"b": [{"c": 1}]}},
    {"a": {"b": None}},
    {"a": {"b": {"c": None}}},
    {"a": {"b": {"c": 0}}},
    {"a": {"b": {"c": False}}},
    {"a": {"b": {"c": ""}}},
    {"a": 0},
    {"a": {"b": {"c": {"d": {"e": "deep"}}}}},
    {"foo-bar": {"baz": 2}, "null": 3, "true": 4},
]
# (a property named null or true is written quoted: bare, the config refuses the word)
PATHS = ["id", "a", "a.b", "a.b.c", "a.b.c.d", "a.b.c.d.e", '"foo-bar".baz', '"null"', '"true"']


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("record", RECORDS)
def test_fast_path_returns_exactly_what_jmespath_returns(path: str, record: dict[str, Any]) -> None:
    assert compile_expression(path)(record) == jmespath.search(path, record)


@pytest.mark.parametrize("path", PATHS)
def test_dotted_paths_do_not_run_jmespath(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("jmespath's interpreter ran")

    getter = compile_expression(path)
    monkeypatch.setattr(expressions._INTERPRETER, "visit", refuse)
    getter({"a": {"b": {"c": {"d": {}}}}})


SHOP_ORDER: dict[str, Any] = {
    "id": "gid://shopify/Order/1",
    "email": "Ada@Example.COM",
    "test": False,
    "currencyCode": "USD",
    "totalPriceSet": {"shopMoney": {"amount": Decimal("59.97"), "currencyCode": "USD"}},
    "customerJourneySummary": {
        "lastVisit": {"landingPage": "https://shop.example.com/?utm_source=chatgpt&oppref=op_123"}
    },
    "lineItems": [
        {"sku": "A", "title": "Mug", "quantity": 3, "price": Decimal("19.99")},
        {"sku": "B", "title": "Lid", "quantity": 1, "price": Decimal("0.01")},
    ],
    "floats": [0.1, 0.2],
    "mixed": [Decimal("0.1"), 0.2, 1],
    "ints": [1, 2, 4],
    "priceText": "12.50",
    "count": "12",
    "cookies": "_ga=GA1.1; __oppref=op_from_cookie; theme=dark",
    "micros": 1_700_000_000_123_999,
    "microsText": "1700000000123999",
    "tags": ["vip", "wholesale"],
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'web'", "web"),
        ("`true`", True),
        ('`{"a": 1}`', {"a": 1}),
        ("!test", True),
        ("url_param(customerJourneySummary.lastVisit.landingPage, 'oppref')", "op_123"),
        ("url_param(nowhere, 'oppref')", None),
        ("cookie(cookies, '__oppref')", "op_from_cookie"),
        ("lower(email)", "ada@example.com"),
        ("upper(currencyCode)", "USD"),
        ("lower(nowhere)", None),
        ("micros_to_ms(micros)", 1_700_000_000_123),
        ("micros_to_ms(microsText)", 1_700_000_000_123),
        ("micros_to_ms(nowhere)", None),
        (
            "lineItems[].{id: sku, name: title, quantity: quantity}",
            [{"id": "A", "name": "Mug", "quantity": 3}, {"id": "B", "name": "Lid", "quantity": 1}],
        ),
        ("lineItems[?price > `1`].sku", ["A"]),
        ("lineItems[?price == `19.99`].sku", ["A"]),  # a JSON literal is a float: equal anyway
        ("lineItems[?price != `19.99`].sku", ["B"]),
        ("lineItems[?price >= `0.01`].sku", ["A", "B"]),
        ("lineItems[?price < `0.02`].sku", ["B"]),
        ("lineItems[?price < 'x'].sku", []),  # number vs string: null, not an exception
        ("totalPriceSet.shopMoney.amount == `59.97`", True),
        ("contains(tags, 'vip')", True),
        ("contains(lineItems[].price, `19.99`)", True),
        ("contains(email, 'Example')", True),
        ("ints[?@ == `1`]", [1]),
        ("`1` == `true`", False),  # jmespath's rule: 1 is not true
        ("`0` == `false`", False),
    ],
)
def test_expressions(expression: str, expected: object) -> None:
    assert compile_expression(expression)(SHOP_ORDER) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sum(lineItems[].price)", Decimal("20.00")),
        ("sum(ints)", 7),
        ("sum(floats)", Decimal("0.3")),  # exact, not 0.30000000000000004
        ("sum(mixed)", Decimal("1.3")),  # Decimal + float + int does not raise
        ("sum(`[]`)", 0),
        ("avg(lineItems[].price)", Decimal("10.00")),
        ("avg(ints)", 7 / 3),
        ("avg(`[]`)", None),
        ("max(lineItems[].price)", Decimal("19.99")),
        ("min(lineItems[].price)", Decimal("0.01")),
        ("max(mixed)", 1),
        ("min(mixed)", Decimal("0.1")),
        ("sort(lineItems[].price)", [Decimal("0.01"), Decimal("19.99")]),
        ("sort_by(lineItems, &price)[0].sku", "B"),
        ("max_by(lineItems, &price).sku", "A"),
        ("min_by(lineItems, &price).sku", "B"),
        ("abs(totalPriceSet.shopMoney.amount)", Decimal("59.97")),
        ("ceil(totalPriceSet.shopMoney.amount)", 60),
        ("floor(totalPriceSet.shopMoney.amount)", 59),
        ("type(totalPriceSet.shopMoney.amount)", "number"),
        ("type(lineItems)", "array"),
        ("type(totalPriceSet)", "object"),
        ("type(nowhere)", "null"),
        ("to_number(priceText)", Decimal("12.50")),
        ("to_number(count)", 12),
        ("to_number('1e3')", Decimal("1E+3")),
        ("to_number('abc')", None),
        ("to_number('NaN')", None),
        ("to_number(totalPriceSet.shopMoney.amount)", Decimal("59.97")),
        ("to_number(`true`)", None),
        ("to_string(totalPriceSet.shopMoney.amount)", "59.97"),
        ("to_string(`[1, 2]`)", "[1,2]"),
        ("to_string(email)", "Ada@Example.COM"),
    ],
)
def test_builtins_know_decimal(expression: str, expected: object) -> None:
    result = compile_expression(expression)(SHOP_ORDER)
    assert result == expected
    assert type(result) is type(expected)


def test_to_string_of_containers_quotes_decimals() -> None:
    # The documented limit: json.dumps cannot write a Decimal as a bare number.
    assert compile_expression("to_string(lineItems[1])")(SHOP_ORDER) == (
        '{"sku":"B","title":"Lid","quantity":1,"price":"0.01"}'
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example.com/?oppref=abc", "abc"),
        ("https://shop.example.com/p?utm_source=x&oppref=abc&z=1", "abc"),
        ("https://shop.example.com/p?oppref=abc#section", "abc"),
        ("https://shop.example.com/p?x=1#oppref=frag", None),  # a fragment is not the query
        ("https://shop.example.com/#/landing?oppref=spa", "spa"),  # single-page app routes
        ("https://shop.example.com/p?oppref=q#/landing?oppref=spa", "q"),
        ("/landing?oppref=abc", "abc"),  # relative
        ("?oppref=abc", "abc"),
        ("oppref=abc&x=1", "abc"),  # a bare query string
        ("redirect=/home&oppref=abc", "abc"),
        ("https://shop.example.com/p?oppref=a%2Fb%3Dc", "a/b=c"),
        ("https://shop.example.com/p?oppref=a+b", "a b"),
        ("https://shop.example.com/p?opp%72ef=encoded_key", "encoded_key"),
        ("https://shop.example.com/p?a=1&amp;oppref=html", "html"),
        ("https://shop.example.com/p?oppref=first&oppref=second", "first"),
        ("https://shop.example.com/p?oppref=&oppref=second", "second"),
        ("https://shop.example.com/p?oppref=", None),  # an empty click id is no click id
        ("https://shop.example.com/p?oppref", None),
        ("https://shop.example.com/p?xoppref=abc&opprefx=abc", None),
        ("https://shop.example.com/p", None),
        ("https://shop.example.com/p?x=1", None),
        ("", None),
        (None, None),
        (123, None),
        (["https://shop.example.com/?oppref=abc"], None),
    ],
)
def test_url_param(url: object, expected: str | None) -> None:
    assert url_param(url, "oppref") == expected
    # The same through an expression, where url may be any JSON value.
    getter = compile_expression("url_param(u, 'oppref')")
    assert getter({"u": url}) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("__oppref=abc", "abc"),
        ("_ga=GA1.2.3; __oppref=abc; theme=dark", "abc"),
        ("_ga=GA1.2.3;__oppref=abc", "abc"),
        ('__oppref="quoted"', "quoted"),
        ("__oppref=a%2Fb", "a%2Fb"),  # returned as stored
        ("__oppref=", None),
        ("x__oppref=abc", None),
        ("theme=dark", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_cookie(header: object, expected: str | None) -> None:
    assert cookie(header, "__oppref") == expected
    assert compile_expression("cookie(h, '__oppref')")({"h": header}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a[", "expression 'a[' is not valid JMESPath: Invalid jmespath expression"),
        ("a..b", "expression 'a..b' is not valid JMESPath"),
        ("'unterminated", "is not valid JMESPath"),
        ("", "expression '' is empty"),
        ("   ", "expression '   ' is empty"),
        ("nope(a)", "expression 'nope(a)' calls unknown function nope() (known: abs, avg,"),
        ("url_param(a)", "expression 'url_param(a)': url_param() takes 2 argument(s), got 1"),
        ("lower(a, b)", "lower() takes 1 argument(s), got 2"),
        ("not_null()", "not_null() takes at least 1 argument(s), got 0"),
        ("items[].{x: nope(a)}", "calls unknown function nope()"),
        # An expression reference is a function's argument only: elsewhere JMESPath gives the
        # reference object itself, which went to the API as `<jmespath.visitor._Expression ...>`.
        ("&test", "expression '&test': & makes an expression reference, which only a function"),
        ("items[].{id: &sku}", "& makes an expression reference"),
        ("length(&a)", "& makes an expression reference"),
        ("not_null(&a, b)", "& makes an expression reference"),
        # A bare true / false / null is a property name in JMESPath: `test == false` would
        # compare with a property named false (null) and filter out every order.
        ("test == false", "bare false reads a property named false; write the value as `false`"),
        ("!paid || true", "bare true reads a property named true"),
        ("a || null", "bare null reads a property named null"),
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "text", ["sort_by(items, &price)[0].sku", "max_by(items, &price).sku", "map(&sku, items)"]
)
def test_an_expression_reference_as_the_argument_of_a_function_that_takes_one_is_read(
    text: str,
) -> None:
    items = [{"sku": "b", "price": 2}, {"sku": "a", "price": 1}]
    assert compile_expression(text)({"items": items}) in ("a", "b", ["b", "a"])


def test_a_non_string_expression_is_a_config_error() -> None:
    with pytest.raises(ExpressionError, match="expression 5 is not text"):
        compile_expression(5)  # type: ignore[arg-type]


def test_a_type_error_on_a_record_is_a_mapping_error_without_the_value() -> None:
    getter = compile_expression("sum(emails)")
    with pytest.raises(MappingError) as caught:
        getter({"emails": ["secret.person@example.com"]})
    message = str(caught.value)
    assert message == "expression 'sum(emails)' failed: sum() got string, expected array-number"
    assert "secret" not in message


def test_lower_of_a_number_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match=r"lower\(\) got number, expected string, null"):
        compile_expression("lower(n)")({"n": Decimal("5")})


def test_array_element_types_must_agree() -> None:
    with pytest.raises(MappingError, match="max"):
        compile_expression("max(v)")({"v": [Decimal("1"), "a"]})


# --- the compiler against the interpreter ---------------------------------------------------
# Every expression below, on every record below, must give what jmespath's interpreter gives:
# the same value of the same type (down to list and dict members), or the same MappingError.

SHOPIFY_CONTENTS = (
    "lineItems[].{id: sku, name: title, quantity: quantity,"
    " amount: originalUnitPriceSet.shopMoney.amount}"
)
SHOPIFY_CLICK_ID = "url_param(customerJourneySummary.lastVisit.landingPage, 'oppref')"

TABLE_EXPRESSIONS = [
    # fields and paths
    "a",
    "a.b",
    "a.b.c",
    "a.b.c.k",
    '"foo-bar".x',
    "items.k",
    # indexes and slices
    "a[0]",
    "a[-1]",
    "a[5]",
    "a[0][0]",
    "[0]",
    "items[0].x",
    "items[-1].k",
    "a.b[0].c",
    "a[1:]",
    "a[::-1]",
    "a[:-1].x",
    "items[::2].k",
    "a[::0]",  # a zero step: ValueError on a list, an error on both paths
    # projections and flatten
    "items[*].x",
    "items[].x",
    "items[*]",
    "a[]",
    "a[][]",
    "a[].b[]",
    "items[*].tags[]",
    "items[*].x.y",
    "items[].[k, v]",
    "items[].{k: k, v: v}",
    "a.*",
    "*.x",
    "a.*.b",
    "*",
    "a.*[0]",
    "a[].to_string(@)",  # a function sees the None elements that a projection then drops
    "items[*].type(@)",
    # filters
    "items[?k == 'x'].v",
    "items[?k != `null`].v",
    "items[?v]",
    "items[?!v].k",
    "items[?v > `1`].k",
    "items[?v < 'x'].k",
    "a[?@ == `1`]",
    "items[?k == 'oppref'].v | [0]",
    "items[?tags[0] && x].k",
    # multiselect
    "{id: id, ab: a.b}",
    "a.{x: x, y: b}",
    "[a, b]",
    "a.[k, v]",
    "{first: items[0].x, all: items[].x}",
    "{k: a, k: b}",
    # literals and current
    "'web'",
    "`null`",
    "`[1, 2]`",
    '`{"k": 1}`',
    "`0`",
    "`1.5`",
    "`true`",
    "@",
    "@.a",
    # not, or, and
    "!a",
    "!!a",
    "!items",
    "!a.b",
    "a || b",
    "a && b",
    "a || b || 'z'",
    "a && b || c",
    "!a && b",
    "(a || b).c",
    "a.b || items[0].x",
    # comparisons
    "a == b",
    "a != b",
    "a == `1`",
    "a == `0`",
    "a == `false`",
    "a < b",
    "a >= `0`",
    "a > 'x'",
    "a == 'x'",
    "a.b == `19.99`",
    "items == `[]`",
    "a == `[1, 2]`",
    # pipes
    "items[*].x | [0]",
    "a | b",
    "items[].x | length(@)",
    "a[*] | [1]",
    "a[] | [0]",
    # functions: ours
    "url_param(x, 'oppref')",
    "url_param(a.b, 'oppref') || items[?k == 'oppref'].v | [0]",
    "url_param(x, k)",  # a name that is not a string: a type error per record
    "url_param(x, `5`)",  # a literal of the wrong type: checked per record, as jmespath does
    "cookie(x, 'c')",
    "lower(x)",
    "upper(a.b)",
    "lower(`5`)",
    "micros_to_ms(x)",
    "micros_to_ms(a.b)",
    # functions: built-ins, Decimal-aware
    "length(a)",
    "sum(a)",
    "avg(items[].v)",
    "max(a)",
    "min(a)",
    "sort(a)",
    "sort_by(items, &k)",
    "max_by(items, &v)",
    "min_by(items, &v).k",
    "map(&x, items)",
    "map(&[k, v], items)",
    "contains(a, `1`)",
    "contains(x, 'h')",
    "starts_with(x, 'h')",
    "ends_with(x, 'c')",
    "join(',', a)",
    "keys(a)",
    "values(a)",
    "not_null(a, b, 'none')",
    "merge(a, b)",
    "to_number(x)",
    "to_string(a)",
    "to_array(a)",
    "type(a)",
    "abs(a)",
    "ceil(a)",
    "floor(a)",
    "reverse(a)",
    "length(items[?v > `0`])",
    "sum(items[].v) == `3`",
    # the expressions profiling found on Shopify orders
    SHOPIFY_CONTENTS,
    SHOPIFY_CLICK_ID,
    "lines.edges[].node.{id: id, quantity: quantity}",
    "!test",
    "url_param(customerJourneySummary.lastVisit.landingPage, 'oppref')"
    " || customAttributes[?key == 'oppref'].value | [0]",
]

_KEYS = ["a", "b", "c", "k", "v", "x", "y", "id", "items", "tags", "foo-bar"]
_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3,
    Decimal("0"),
    Decimal("1"),
    Decimal("19.99"),
    Decimal("-1.5"),
    0.5,
    19.99,
    "",
    "x",
    "abc",
    "h",
    "https://s.example/p?oppref=r1&x=1",
    "oppref=bare",
    "c=1; d=2",
]


def _random_value(rng: random.Random, depth: int) -> Any:
    """A JSON-like value: scalars, lists and objects nested up to `depth`."""
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return rng.choice(_SCALARS)
    if roll < 0.7:
        return [_random_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _random_value(rng, depth - 1) for _ in range(rng.randrange(4))}


def _random_record(rng: random.Random) -> dict[str, Any]:
    """A record whose top-level keys are the ones the expressions read."""
    record = {key: _random_value(rng, 3) for key in rng.sample(_KEYS, rng.randrange(1, 6))}
    if rng.random() < 0.5:  # lists of objects, so that projections and filters have work
        record["items"] = [
            {key: _random_value(rng, 2) for key in rng.sample(_KEYS, rng.randrange(4))}
            for _ in range(rng.randrange(4))
        ]
    return record


SHOPIFY_ORDER: dict[str, Any] = {
    "test": False,
    "customerJourneySummary": {
        "lastVisit": {"landingPage": "https://shop.example.com/?utm_source=chatgpt&oppref=op_1"}
    },
    "customAttributes": [{"key": "oppref", "value": "op_attr"}],
    "lineItems": [
        {
            "sku": "A",
            "title": "Mug",
            "quantity": 3,
            "originalUnitPriceSet": {"shopMoney": {"amount": Decimal("19.99")}},
        },
        {"sku": None, "title": "Lid", "quantity": 1, "originalUnitPriceSet": None},
    ],
    "lines": {"edges": [{"node": {"id": 1, "quantity": 2}}, {"node": None}, []]},
}

TABLE_RECORDS: list[Any] = [
    *RECORDS,
    SHOPIFY_ORDER,
    {"customerJourneySummary": None, "customAttributes": [{"key": "oppref", "value": "v"}]},
    {"lineItems": [], "lines": {"edges": []}, "test": True},
    {"lineItems": "not a list", "lines": "x", "test": 0},
    {"lineItems": [None, 1, "x", []], "test": ""},
    {"a": [[1, 2], [3, [4]], 5, None], "b": [], "items": []},
    {"a": [[None, 1], None, [[None]], []], "items": [None, {"k": None}]},
    {"a": [Decimal("1"), 2, 0.5], "b": {"b": 1}, "items": [{"k": "x", "v": 2}, {"k": "y"}]},
    {"a": {"b": 1, "c": None}, "b": {"k": 2}},
    {"a": "abc", "b": "abd", "x": "https://s.example/?oppref=z", "items": "not a list"},
    {"a": 1, "b": True, "items": [{"v": Decimal("2")}, {"v": 1}, {"v": 0}]},
    {"a": [], "b": {}, "c": "", "x": None},
    {"items": [{"k": "oppref", "v": "from_items"}], "a": {"b": "?oppref=from_ab"}},
    *(_random_record(random.Random(seed)) for seed in range(300)),
    None,
    [1, {"a": 2}],
    "a string",
    Decimal("5"),
]


def _outcome(getter: Getter, record: Any) -> tuple[str, Any]:
    """What a user of the getter sees: a value or a MappingError's message."""
    try:
        return ("value", getter(record))
    except MappingError as e:
        return ("error", str(e))


def _same(x: Any, y: Any) -> bool:
    """Equal values of the same types all the way down (a Decimal keeps its exponent)."""
    if type(x) is not type(y):
        return False
    if isinstance(x, list):
        return len(x) == len(y) and all(map(_same, x, y))
    if isinstance(x, dict):
        return list(x) == list(y) and all(_same(x[key], y[key]) for key in x)
    if isinstance(x, _Expression):
        return bool(x.expression == y.expression)
    if isinstance(x, Decimal):
        return str(x) == str(y)
    return bool(x == y)


@pytest.mark.parametrize("expression", TABLE_EXPRESSIONS)
def test_compiled_equals_interpreted(expression: str) -> None:
    fast = compile_expression(expression)
    interpreted = interpret_expression(expression)
    for number, record in enumerate(TABLE_RECORDS):
        expected = _outcome(interpreted, record)
        actual = _outcome(fast, record)
        same = actual[0] == expected[0] and _same(actual[1], expected[1])
        assert same, f"record #{number} {record!r}: compiled {actual!r}, interpreted {expected!r}"


def _stock_comparable(node: Any) -> bool:
    """No functions and no ordering: our interpreter then means exactly stock jmespath."""
    if not isinstance(node, dict):
        return True
    if node["type"] in ("function_expression", "expref"):
        return False
    if node["type"] == "comparator" and node["value"] not in ("eq", "ne"):
        return False
    return all(_stock_comparable(child) for child in node["children"])


def _has_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, list):
        return any(map(_has_decimal, value))
    if isinstance(value, dict):
        return any(map(_has_decimal, value.values()))
    return False


STOCK_EXPRESSIONS = [
    e for e in TABLE_EXPRESSIONS if _stock_comparable(jmespath.compile(e).parsed) and "::0" not in e
]


@pytest.mark.parametrize("expression", STOCK_EXPRESSIONS)
def test_compiled_equals_stock_jmespath(expression: str) -> None:
    # The interpreter above is our subclass; on plain JSON values it must be jmespath itself.
    fast = compile_expression(expression)
    for number, record in enumerate(r for r in TABLE_RECORDS if not _has_decimal(r)):
        expected = jmespath.search(expression, record)
        actual = fast(record)
        assert _same(actual, expected), f"record #{number} {record!r}: {actual!r} != {expected!r}"


def test_the_table_covers_every_compiled_node_type_and_both_outcomes() -> None:
    # So that the table above cannot silently stop testing a node type or the error path.
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            seen.add(node["type"])
            for child in node["children"]:
                walk(child)

    for expression in TABLE_EXPRESSIONS:
        walk(jmespath.compile(expression).parsed)
    assert seen == set(compiled._NODES)
    outcomes = {
        _outcome(compile_expression(e), r)[0] for e in TABLE_EXPRESSIONS for r in TABLE_RECORDS
    }
    assert outcomes == {"value", "error"}


@pytest.mark.parametrize("expression", TABLE_EXPRESSIONS)
def test_compiled_expressions_do_not_run_the_interpreter(
    expression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("jmespath's interpreter ran")

    getter = compile_expression(expression)
    monkeypatch.setattr(expressions._INTERPRETER, "visit", refuse)
    for record in TABLE_RECORDS[:40]:
        result = _outcome(getter, record)
        if isinstance(result[1], _Expression):  # an expref's body runs compiled code too
            assert result[1].visit(result[1].expression, record) == record.get("a")


def test_an_unknown_node_type_falls_back_to_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node type the compiler does not know (as if jmespath added one): the whole expression is
    # interpreted, with the same result.
    monkeypatch.delitem(compiled._NODES, "index")
    getter = compile_expression("items[0].x || 'none'")
    assert getter({"items": [{"x": "first"}]}) == "first"
    assert getter({"items": []}) == "none"

    def refuse(*args: object) -> None:
        raise AssertionError("jmespath's interpreter ran")

    monkeypatch.setattr(expressions._INTERPRETER, "visit", refuse)
    with pytest.raises(AssertionError, match="interpreter ran"):
        getter({"items": []})


def test_compile_ast_answers_none_for_an_unknown_node() -> None:
    runtime = compiled.Runtime(functions=expressions._FUNCTIONS, comparators={})
    node = {"type": "subexpression", "children": [{"type": "arithmetic", "children": []}]}
    assert compiled.compile_ast(node, runtime) is None


@pytest.mark.parametrize(
    ("expression", "record", "message"),
    [
        ("lower(n)", {"n": Decimal("5")}, "lower() got number, expected string, null"),
        ("items[].{n: lower(n)}", {"items": [{"n": 1}]}, "lower() got number"),
        ("url_param(u, k)", {"u": "?k=1", "k": 5}, "url_param() got number, expected string"),
        ("sum(a)", {"a": ["x"]}, "sum() got string, expected array-number"),
        ("sort_by(a, &k)", {"a": [{"k": 1}, {"k": "x"}]}, "sort_by() got string"),
        ("a[::0]", {"a": [1]}, "failed: ValueError"),
        ("abs(a)", {"a": "1"}, "abs() got string, expected number"),
        ("micros_to_ms(t)", {"t": True}, "micros_to_ms() got boolean"),
        ("micros_to_ms(t)", {"t": "2026-11-23"}, "micros_to_ms() expects epoch microseconds"),
        ("micros_to_ms(t)", {"t": Decimal("1.5")}, "micros_to_ms() expects epoch microseconds"),
        ("micros_to_ms(t)", {"t": -5}, "micros_to_ms() expects epoch microseconds"),
        ("micros_to_ms(t)", {"t": Decimal("1E+5000000")}, "micros_to_ms() expects epoch"),
        ("micros_to_ms(t)", {"t": 10**400}, "micros_to_ms() expects epoch microseconds"),
        ("micros_to_ms(t)", {"t": "9" * 5000}, "micros_to_ms() expects epoch microseconds"),
        ("micros_to_ms(t)", {"t": 1_700_000_000_123}, "micros_to_ms() got epoch milliseconds"),
        ("micros_to_ms(t)", {"t": "1700000000123"}, "micros_to_ms() got epoch milliseconds"),
        ("micros_to_ms(t)", {"t": Decimal("1700000000")}, "micros_to_ms() got epoch seconds"),
        # nanoseconds: "looks like epoch microseconds: map micros_to_ms()", which was mapped
        ("micros_to_ms(t)", {"t": 1_796_429_019_472_000_000}, "too large for epoch microseconds"),
    ],
)
def test_a_function_on_the_wrong_type_is_the_same_mapping_error(
    expression: str, record: dict[str, Any], message: str
) -> None:
    for getter in (compile_expression(expression), interpret_expression(expression)):
        with pytest.raises(MappingError) as caught:
            getter(record)
        assert str(caught.value).startswith(f"expression {expression!r} failed: ")
        assert message in str(caught.value)


@pytest.mark.parametrize(
    "text", ["test == `false`", '"false" == `true`', "a.false_start", "nullable"]
)
def test_a_value_word_written_as_a_value_or_a_quoted_name_is_fine(text: str) -> None:
    compile_expression(text)


@pytest.mark.parametrize(
    ("expression", "record", "value"),
    [
        ("a || b", {"a": "NaN", "b": "x"}, "x"),  # (pandas' missing cell: no value in ||)
        ("a || b", {"a": "NULL" + " " * 16, "b": "x"}, "x"),  # (a CHAR(20) column)
        ("not_null(a, b)", {"a": "\\N", "b": 3}, 3),
        ("not_null(a, b)", {"a": "x", "b": 3}, "x"),
        ("!a", {"a": "N/A"}, True),
    ],
)
def test_a_text_of_no_value_is_false_alike_compiled_and_interpreted(expression, record, value):
    assert compile_expression(expression)(record) == value
    assert interpret_expression(expression)(record) == value
