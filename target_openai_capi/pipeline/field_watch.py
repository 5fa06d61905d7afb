"""Mapped fields that never gave a value: named at the end of a run (pure, no I/O).

A path mistyped in a mapping (`totalPriceSet.shopmoney.amount` for `shopMoney`) reads null on
every record, and every event goes out without that field: valid, sent, and without the
revenue. The fields a user wrote (a preset's are tested) that land in a known place of the
event are watched, per stream, until one event carries them; a field still unseen at the end of
the run, when the stream built events, is named with its expression. Once every field of a
stream was seen, its events cost one lookup.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from target_openai_capi.contract import DATA_SHAPE_BY_TYPE, SHAPE_FIELDS
from target_openai_capi.mapping.expressions import gives_nothing

# Mapped field -> (the key it is written under, where: the event or its data). Identifiers,
# oppref among them, are left to match coverage (coverage.py), which counts them per kind: many
# records rightly have none.
WATCHED: dict[str, tuple[str, str]] = {
    "amount": ("amount", "data"),
    "amount_minor": ("amount", "data"),
    "currency": ("currency", "data"),
    "contents": ("contents", "data"),
    "plan_id": ("plan_id", "data"),
    "source_url": ("source_url", "event"),
    "action_source": ("action_source", "event"),
}
# The places watched, each one bit of what `carried` answers (a worker's event says it so).
_PLACES: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(WATCHED.values()))
_BIT = {place: 1 << n for n, place in enumerate(_PLACES)}


def carried(event: Mapping[str, Any]) -> int:
    """The watched places the event carries a value at, as bits (for `FieldWatch.carried`)."""
    data = event.get("data") or {}
    bits = 0
    for (key, where), bit in _BIT.items():
        if key in (data if where == "data" else event):
            bits |= bit
    return bits


class FieldWatch:
    """Per stream, the mapped fields no event has carried yet."""

    def __init__(
        self, written_fields: Mapping[str, Mapping[str, str]], many_types: Collection[str] = ()
    ) -> None:
        """`written_fields`: stream -> {field: its expression}, as the user's config maps them;
        `many_types`: the streams whose event type is read per record (event_type_from)."""
        self.texts = {stream: dict(fields) for stream, fields in written_fields.items()}
        self.many_types = frozenset(many_types)
        # stream -> field -> (its key, where it is, its bit in `carried`)
        self.unseen: dict[str, dict[str, tuple[str, str, int]]] = {}
        for stream, fields in written_fields.items():
            watched = {
                f: (*WATCHED[f], _BIT[WATCHED[f]])
                for f, text in fields.items()
                if f in WATCHED and not gives_nothing(text)  # (`null`: meant to give none)
            }
            if watched:
                self.unseen[stream] = watched
        self.events: dict[str, int] = {}

    def event(self, stream: str, event: Mapping[str, Any]) -> None:
        """One built event of the stream (a dict)."""
        data = event.get("data") or {}
        self._seen(stream, [f for f, (key, where, _) in self.unseen[stream].items()
                            if key in (data if where == "data" else event)])  # fmt: skip

    def carried(self, stream: str, bits: int) -> None:
        """One built event of the stream, by what `carried` answered for it (a worker's)."""
        self._seen(stream, [f for f, (_, _, bit) in self.unseen[stream].items() if bits & bit])

    def _seen(self, stream: str, found: list[str]) -> None:
        """Count one event of a watched stream (callers check it is watched: `in unseen`)."""
        self.events[stream] = self.events.get(stream, 0) + 1
        unseen = self.unseen[stream]
        for field in found:
            del unseen[field]
        if not unseen:
            del self.unseen[stream]

    def lines(self) -> list[str]:
        """One line per stream and field that gave no value in any of its events."""
        out = []
        for stream, unseen in sorted(self.unseen.items()):
            count = self.events.get(stream, 0)
            if not count:
                continue  # no event built: nothing to say about its fields
            for field in unseen:
                out.append(
                    f"streams.{stream}.fields.{field} ({self.texts[stream][field]!r}) gave no "
                    f"value in any of the {count:,} events of the stream: they went out without "
                    "it. Check the path (JMESPath names a property exactly, case and all)"
                    + (_NO_PLACE_IN_SOME_TYPES.get(field, "") if stream in self.many_types else "")
                )
        return out


# Fields some event types' data has no place for (mapping/event.py `fields_not_carried`): with
# a type per record (event_type_from), the events may all have been of such types.
def _types_with(field: str) -> list[str]:
    return [t for t, shape in DATA_SHAPE_BY_TYPE.items() if field in SHAPE_FIELDS[shape]]


_NO_PLACE_IN_SOME_TYPES = {
    field: (
        f", or the events' types: only {', '.join(_types_with(field)[:-1])} and "
        f"{_types_with(field)[-1]} events have {field}"
    )
    for field in ("contents", "plan_id")
}
