"""Field expressions: JMESPath with our functions, Decimal-aware, and the dotted-path fast path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jmespath
import pytest

from target_openai_capi.mapping import expressions
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.expressions import (
    ExpressionError,
    compile_expression,
    cookie,
    url_param,
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
PATHS = ["id", "a", "a.b", "a.b.c", "a.b.c.d", "a.b.c.d.e", '"foo-bar".baz', "null", "true"]


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


def test_other_expressions_do_run_jmespath(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counterpart of the test above, so that it can fail.
    def refuse(*args: object) -> None:
        raise AssertionError("jmespath's interpreter ran")

    getter = compile_expression("a[0]")
    monkeypatch.setattr(expressions._INTERPRETER, "visit", refuse)
    with pytest.raises(AssertionError):
        getter({"a": [1]})


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
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert message in str(caught.value)


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
