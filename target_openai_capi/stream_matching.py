"""Which configured `streams` entries matched no stream of the input, and what arrived instead.

Taps name streams their own way (MeltanoLabs tap-postgres: `public-conversions` for the table
`conversions` of schema `public`), so an entry that matches nothing is said at the end of the
run, with the closest names that did arrive, never left as a silent `skipped_stream` count.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

# How many arrived names to suggest, and how alike a name must be to be suggested.
_SUGGESTIONS = 3
_LIKENESS = 0.5
# How alike an arriving stream and an entry must be for one to be the other misspelt.
_MISSPELT = 0.85
_SEPARATORS = str.maketrans("", "", "-_. ")


def closest_streams(entry: str, arrived: Collection[str]) -> list[str]:
    """Arrived stream names most like a configured entry: ones ending in it first."""
    suffixed = sorted(name for name in arrived if name.endswith(("-" + entry, "." + entry)))
    alike = difflib.get_close_matches(entry, list(arrived), n=_SUGGESTIONS, cutoff=_LIKENESS)
    return list(dict.fromkeys([*suffixed, *alike]))[:_SUGGESTIONS]


def unmatched_entries(
    configured: Collection[str], arrived: Collection[str], refused: Collection[str] = ()
) -> list[str]:
    """One line per configured entry that matched no stream of the input (`refused`: streams
    whose SCHEMA was refused, so that their records were rejected as input lines)."""
    lines = []
    for entry in sorted(set(configured) - set(arrived)):
        near = closest_streams(entry, arrived)
        if entry in refused:
            hint = "its SCHEMA was refused (see above), so its records were rejected at input"
        elif near:
            hint = "the input had " + ", ".join(near)
        elif arrived:
            hint = f"none of the input's {len(arrived)} streams is like it"
        else:
            hint = "the input had no records"
        lines.append(f"streams.{entry} matched nothing; {hint}")
    return lines


def _squashed(name: str) -> str:
    """A stream name without case, separators or a plural s."""
    return name.lower().translate(_SEPARATORS).removesuffix("s")


def misspelt_entry(stream: str, entries: Collection[str]) -> str | None:
    """The entry among `entries` (configured, none of their streams arrived yet) that a stream
    without an entry most likely is, misspelt: the same name but for case, separators or a
    plural s (`subscription` for `subscriptions`), the stream's name after a schema
    (`conversions` for tap-postgres's `public-conversions`), or a name alike at 0.85; or None."""
    for entry in sorted(entries):
        if _squashed(entry) == _squashed(stream) or stream.endswith(("-" + entry, "." + entry)):
            return entry
    alike = difflib.get_close_matches(stream, sorted(entries), n=1, cutoff=_MISSPELT)
    return alike[0] if alike else None
