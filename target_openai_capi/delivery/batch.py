"""A batch of wire events for the uploader, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# One event as it goes into a request body: a dict, or its JSON already serialised by the process
# that built it (orjson embeds a Fragment's bytes as they are).
WireEvent = dict[str, Any] | orjson.Fragment


@dataclass
class Batch:
    """Wire events (already validated locally) with one opaque tag per event for the caller."""

    events: list[WireEvent]
    tags: list[Any]
    validate_only: bool = False
    number: int = 0  # the caller's: its place among the batches submitted (0, 1, 2, ...)
    # Each event's timestamp_ms, when known: an event older than the API takes by the time its
    # request is made is not sent (`BatchResult.expired`).
    times_ms: list[int] | None = None

    def __post_init__(self) -> None:
        """Tags are how the caller maps results back to records: they must line up."""
        if len(self.tags) != len(self.events):
            raise ValueError(f"{len(self.events)} events but {len(self.tags)} tags")
        if self.times_ms is not None and len(self.times_ms) != len(self.events):
            raise ValueError(f"{len(self.events)} events but {len(self.times_ms)} times")


@dataclass
class BatchResult:
    """How one batch ended: which events were accepted, which rejected and why, at what cost."""

    batch: Batch
    accepted: list[int] = field(default_factory=list)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)
    requests: int = 0
    # Rejected events whose refusal named no event (a body without `param`), by index.
    unnamed: set[int] = field(default_factory=set)
    # Events not sent because they were older than the API takes when their request was made
    # (they were not when they were built: a batch waits to fill, for a free slot, for retries).
    expired: list[int] = field(default_factory=list)
    # Rejected events older than the API takes when their refusal came, which spoke of their
    # time (they crossed the line during their requests): refused for their age.
    aged: set[int] = field(default_factory=set)
