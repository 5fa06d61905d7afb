"""Personal data in free text: an email address, or a phone number written with its +.

One place for what event ids, custom_data, content items and custom event names are searched
for (mapping/event.py, mapping/event_names.py); user fields are normalised by user_values.py.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

# The at sign as people write it: also the full-width one of Japanese and Chinese input
# methods (U+FF20), and the small one (U+FE6B); and a domain's dot, the full-width one too.
AT_SIGNS = "@\uff20\ufe6b"
_DOTS = ".\uff0e"
# Letters, digits and hyphens of a domain, ASCII or full-width.
_LATIN = "A-Za-z0-9\\-\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff0d"
# The last parts of the domains people write with the ideographic full stop (a kana-mode
# input method's dot): Japanese text puts one after a place's name too (a live show at WWW,
# then "OPEN 18:00"), so only these end an address so written; not those that are English
# words or abbreviations too (in, it, me, cd, id, am, tv).
DOMAIN_ENDS = (
    "com|net|org|jp|cn|tw|hk|kr|sg|info|biz|io|edu|gov|co|uk|de|fr|ru|br|au|ca|nz|ch|nl|es"
)
# (anchored on the @, so that a long text with an @ and no dot costs one pass, not its square;
# a domain's last part begins with a letter: `webinar@10.30am` holds none)
_EMAIL = re.compile(
    rf"(?<=[^\s{AT_SIGNS}])[{AT_SIGNS}][^\s{AT_SIGNS}]+[{_DOTS}][^\W\d_][^\s{AT_SIGNS}{_DOTS}]+"
    # The ideographic full stop (U+3002, U+FF61) an input method types in kana mode is a dot
    # only in a domain of Latin letters, digits and hyphens (taro U+FF20 example U+3002 jp): it ends
    # Japanese sentences, and a place after an at sign, then a sentence, is no address.
    rf"|(?<=[^\s{AT_SIGNS}])[{AT_SIGNS}][{_LATIN}]+"
    rf"(?:[{_DOTS}\u3002\uff61][{_LATIN}]+)*[{_DOTS}\u3002\uff61](?i:{DOMAIN_ENDS})"
    rf"(?![{_LATIN}])"
)

# A phone number is written with its "+" (or a full-width one): digits alone are as likely an
# order number. Between its digits, what people and spreadsheets put there: spaces (no-break,
# narrow and thin ones too, as French and copied numbers have), brackets, dots and hyphens (the
# no-break one, U+2011, web pages write so that a number does not wrap; en and em dashes, the
# minus sign: user_values.py reads such a number as the one it shows).
PHONE_SIGN = "+\uff0b"
PHONE_SEPARATORS = (
    " ().\\-\u00a0\u2007\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
    # as Japanese and Chinese input writes them: the full-width hyphen and brackets, the
    # katakana long mark, the ideographic space, the small hyphen; and zero-width marks
    "\uff0d\uff08\uff09\u30fc\u3000\ufe63\u200b\u200c\u200d\u2060\ufeff"
)
# A date written after a + (`+2024-11-29`): no phone number (a real one, +4512-34-56-78, is).
_DATE_AFTER_A_PLUS = r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\d-])"
_PHONE = re.compile(rf"[{PHONE_SIGN}](?!{_DATE_AFTER_A_PLUS})\d[\d{PHONE_SEPARATORS}]{{6,22}}\d")
# A phone number has 8 to 15 digits, its country code's among them.
PHONE_DIGITS = (8, 15)


def may_hold_email(text: str) -> bool:
    """True when the text has an at sign (AT_SIGNS) or a % (one percent-encoded): worth
    holds_email's look."""
    return "@" in text or "%" in text or "\uff20" in text or "\ufe6b" in text


def holds_email(text: str) -> bool:
    """An email address in the text, also percent-encoded (jane%40example.com, from a URL)."""
    if _EMAIL.search(text):
        return True
    # (a domain's last part typed in full-width letters read as the ASCII ones they are)
    if not text.isascii() and _EMAIL.search(unicodedata.normalize("NFKC", text)):
        return True
    return "%" in text and _EMAIL.search(unquote(text)) is not None


def holds_personal_text(text: str) -> str | None:
    """Why a text is personal data (an email address, a +phone number in it), or None."""
    if may_hold_email(text) and holds_email(text):
        return "holds an email address"
    low, high = PHONE_DIGITS
    if ("+" in text or "\uff0b" in text) and any(
        low <= sum(ch.isdigit() for ch in found.group()) <= high for found in _PHONE.finditer(text)
    ):
        return "holds a phone number"
    return None
