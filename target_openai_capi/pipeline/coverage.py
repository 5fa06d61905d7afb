"""Match coverage: which identifiers OpenAI can match the events on, counted per stream.

An event OpenAI cannot tie to an ad interaction still counts in aggregate, but not for
attribution. `oppref` (the click id) and `obref` (the pixel's cookie) match best; hashed email,
phone and external id next; names, geography and ip + user agent help only together.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Kinds, in the order lines print them, each with the event's fields that carry it (either
# official user shape).
KINDS: dict[str, tuple[str, ...]] = {
    "oppref": (),  # event level, not in `user`
    "obref": ("obref",),
    "email": ("emails_sha256", "email_sha256"),
    "phone": ("phone_numbers_sha256",),
    "external_id": ("external_ids_sha256", "external_id_sha256"),
    "name": ("first_names_sha256", "last_names_sha256"),
    "geography": ("regions", "cities", "postal_codes", "countries", "city", "zip_code", "country"),
    "ip_address+user_agent": (),  # both, or neither counts
    "android_advertising_id": ("android_advertising_id",),
}
# The identifiers that can match an event on their own.
STRONG = ("oppref", "obref", "email", "phone", "external_id", "android_advertising_id")
NONE_STRONG = "none_strong"
# What an unmatchable event (skip_unmatchable) must carry one of, unless the stream says: any
# strong identifier (an app's events carry a GAID, a call's a phone number, and no email).
DEFAULT_MATCH_IDENTIFIERS = STRONG


# user field -> the kind it counts for (each field counts for one kind).
_KIND_OF_FIELD = {field: kind for kind, fields in KINDS.items() for field in fields}


def identifiers(event: Mapping[str, Any]) -> frozenset[str]:
    """The identifier kinds an event carries."""
    user = event.get("user") or {}
    if type(user) is dict and all(user.values()):  # (as built: no empty value) one lookup
        return _kinds_of_fields(tuple(user), bool(event.get("oppref")))
    return _identifiers(event)


@lru_cache(maxsize=1024)  # events of a stream carry a few combinations of fields
def _kinds_of_fields(fields: tuple[str, ...], oppref: bool) -> frozenset[str]:
    """The kinds of an event whose user object has these fields, none of them empty."""
    return _identifiers({"user": dict.fromkeys(fields, True), "oppref": oppref})


def _identifiers(event: Mapping[str, Any]) -> frozenset[str]:
    user = event.get("user") or {}
    found = set()
    if isinstance(user, Mapping):
        for field, value in user.items():
            kind = _KIND_OF_FIELD.get(field)
            if kind is not None and value:
                found.add(kind)
        if user.get("ip_address") and user.get("user_agent"):
            found.add("ip_address+user_agent")
    if event.get("oppref"):
        found.add("oppref")
    return frozenset(found)


class MatchCoverage:
    """Per stream: events counted, and how many carried each identifier kind."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        # Per stream, events by the set of kinds they carry: counting one is a dict update (a
        # frozenset keeps its hash); the per-kind counts are added up when they are read.
        self._by_kinds: dict[str, Counter[frozenset[str]]] = defaultdict(Counter)

    @property
    def carrying(self) -> dict[str, Counter[str]]:
        """Per stream: events carrying each identifier kind (and NONE_STRONG: none strong)."""
        result: dict[str, Counter[str]] = defaultdict(Counter)
        for stream, sets in self._by_kinds.items():
            counts = result[stream]
            for kinds, events in sets.items():
                for kind in kinds:
                    counts[kind] += events
                if not kinds.intersection(STRONG):
                    counts[NONE_STRONG] += events
        return result

    def count(self, stream: str, event: Mapping[str, Any]) -> None:
        """Count one event that went out (sent, or validated in a dry run)."""
        self.count_kinds(stream, identifiers(event))

    def count_kinds(self, stream: str, kinds: frozenset[str]) -> None:
        """Count one event that went out, by the identifier kinds it carries (`identifiers`)."""
        self.events[stream] += 1
        self._by_kinds[stream][kinds] += 1

    def lines(self) -> list[str]:
        """One line per stream, then a hint for each stream whose events lack a click id."""
        lines = []
        carrying = self.carrying
        for stream in sorted(self.events):
            total, counts = self.events[stream], carrying[stream]
            parts = [f"{kind} {counts[kind]:,}" for kind in (*KINDS, NONE_STRONG)]
            lines.append(f"Match coverage: {stream}: {total:,} events; " + ", ".join(parts))
        for stream in sorted(self.events):
            counts = carrying[stream]
            if counts["oppref"] == 0 and counts["obref"] == 0:
                lines.append(
                    f"Match coverage: {stream}: 0 of {self.events[stream]:,} events carry an "
                    "oppref or obref; see docs/cookbook.md#raising-match-rates"
                )
        return lines

    def metrics(self) -> list[tuple[str, str, int]]:
        """(stream, identifier kind, events carrying it), for METRIC lines."""
        rows = []
        carrying = self.carrying
        for stream in sorted(self.events):
            counts = carrying[stream]
            rows.append((stream, "events", self.events[stream]))
            rows += [(stream, kind, counts[kind]) for kind in (*KINDS, NONE_STRONG)]
        return rows
