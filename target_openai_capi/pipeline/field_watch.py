"""Mapped fields that never gave a value: named at the end of a run (pure, no I/O).

A path mistyped in a mapping (`totalPriceSet.shopmoney.amount` for `shopMoney`) reads null on
every record, and every event goes out without that field: valid, sent, and without the
revenue. The fields a user wrote (a preset's are tested) that land in a known place of the
event are watched, per stream, until one event carries them; a field still unseen at the end of
the run, when the stream built events, is named with its expression. Once every field of a
stream was seen, its events cost one lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


class FieldWatch:
    """Per stream, the mapped fields no event has carried yet."""

    def __init__(self, mapped_fields: Mapping[str, Mapping[str, str]]) -> None:
        """`mapped_fields`: stream -> {field: its expression} as configured (presets in)."""
        self.texts = {stream: dict(fields) for stream, fields in mapped_fields.items()}
        self.unseen: dict[str, dict[str, tuple[str, str]]] = {
            stream: {f: WATCHED[f] for f in fields if f in WATCHED}
            for stream, fields in mapped_fields.items()
        }
        self.unseen = {stream: fields for stream, fields in self.unseen.items() if fields}
        self.events: dict[str, int] = {}

    def event(self, stream: str, event: Mapping[str, Any]) -> None:
        """One built event of the stream (a dict)."""
        unseen = self.unseen.get(stream)
        if unseen is None:
            return
        self.events[stream] = self.events.get(stream, 0) + 1
        data = event.get("data") or {}
        for field, (key, where) in list(unseen.items()):
            if key in (data if where == "data" else event):
                del unseen[field]
        if not unseen:
            del self.unseen[stream]

    def event_json(self, stream: str, event_json: bytes) -> None:
        """One built event of the stream, as JSON (a worker's): a key found anywhere in it
        counts as seen (an item's amount for the event's: a warning missed, never a false one)."""
        unseen = self.unseen.get(stream)
        if unseen is None:
            return
        self.events[stream] = self.events.get(stream, 0) + 1
        for field, (key, _) in list(unseen.items()):
            if b'"' + key.encode() + b'":' in event_json:
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
                )
        return out
