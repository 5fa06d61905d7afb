"""ISO 4217 currencies as the API takes them: codes with a minor unit (amounts are in it).

The one table of currencies: mapping/money.py converts amounts with it, the sandbox checks codes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from iso4217 import Currency

# Code -> exponent for every currency with a minor unit (USD 2, JPY 0, KWD 3); XAU, XDR, XXX and
# friends have none, so an amount in their lowest denomination is undefined.
CURRENCY_EXPONENTS: dict[str, int] = {
    c.code: c.exponent for c in Currency if c.exponent is not None
}
WITHOUT_MINOR_UNIT = frozenset(c.code for c in Currency if c.exponent is None)

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_ANY_CASE_CODE = re.compile(r"[A-Za-z]{3}")


@lru_cache(maxsize=512)
def currency_problem(code: str, *, any_case: bool = False) -> str | None:
    """Why an ISO 4217 code cannot carry an integer minor-unit amount, or None when it can.

    `any_case`: the code may be in lower case, which the API converts to upper case (the
    official rule for an event's data.currency; an item's currency takes upper case only).
    """
    pattern = _ANY_CASE_CODE if any_case else _CURRENCY_CODE
    if not isinstance(code, str) or not pattern.fullmatch(code):
        case = "" if any_case else " in upper case"
        return f"{code!r} is not a three-letter ISO 4217 code{case}, e.g. 'USD'"
    upper = code.upper()
    if upper in CURRENCY_EXPONENTS:
        return None
    if upper in WITHOUT_MINOR_UNIT:
        return f"{code!r} has no minor unit, so an amount in its lowest denomination is undefined"
    return f"{code!r} is not a known ISO 4217 currency code"
