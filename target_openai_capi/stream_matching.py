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


def closest_streams(entry: str, arrived: Collection[str]) -> list[str]:
    """Arrived stream names most like a configured entry: ones ending in it first."""
    suffixed = sorted(name for name in arrived if name.endswith(("-" + entry, "." + entry)))
    alike = difflib.get_close_matches(entry, list(arrived), n=_SUGGESTIONS, cutoff=_LIKENESS)
    return list(dict.fromkeys([*suffixed, *alike]))[:_SUGGESTIONS]


def unmatched_entries(configured: Collection[str], arrived: Collection[str]) -> list[str]:
    """One line per configured entry that matched no stream of the input."""
    lines = []
    for entry in sorted(set(configured) - set(arrived)):
        near = closest_streams(entry, arrived)
        if near:
            hint = "the input had " + ", ".join(near)
        elif arrived:
            hint = f"none of the input's {len(arrived)} streams is like it"
        else:
            hint = "the input had no records"
        lines.append(f"streams.{entry} matched nothing; {hint}")
    return lines
