"""Per-stream counts of what happened to every record received, and the run summary line."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# Outcomes, in the order the summary prints them. received = the sum of all the others.
SENT = "sent"
VALIDATED = "validated"  # dry run: the API validated the event and stored nothing
DUPLICATE = "duplicate"  # the same (type, id) was already sent in this run
FILTERED = "filtered"  # the stream's `filter` was false, or a stream map dropped it
SKIPPED_STREAM = "skipped_stream"  # the stream has no entry under `streams`
# skip_unmatchable: the event carried none of the stream's match_identifiers
SKIPPED_UNMATCHABLE = "skipped_unmatchable"
REJECTED = "rejected"  # dead-lettered, with a stage and a reason
# Only after a run stopped on an error: the event was in an open batch, in flight, or held
# behind a copy in flight, and no answer settled it (the next run from the last STATE sends it
# again; the API ignores a copy of an event it already accepted).
UNSETTLED = "unsettled"
OUTCOMES = (
    SENT,
    VALIDATED,
    DUPLICATE,
    FILTERED,
    SKIPPED_STREAM,
    SKIPPED_UNMATCHABLE,
    REJECTED,
    UNSETTLED,
)

# Stages at which a record can be rejected.
STAGE_INPUT = "input"  # the line itself: not JSON, not UTF-8, RECORD before its SCHEMA
STAGE_SCHEMA = "schema"  # the record does not match its stream's schema
STAGE_MAPPING = "mapping"  # a mapped value cannot become an event field
STAGE_VALIDATION = "validation"  # the built event breaks the API contract
STAGE_WINDOW = "window"  # older than 7 days or more than 10 minutes ahead
STAGE_API = "api"  # the API refused the event


@dataclass
class RunAccount:
    """Counts outcomes per stream; `received` always equals the sum of the outcomes."""

    started: float = field(default_factory=time.monotonic)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rejected_by_stage: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    requests: int = 0

    def count(self, stream: str, outcome: str, n: int = 1) -> None:
        """Record the outcome of n records of a stream."""
        self.outcomes[stream][outcome] += n

    def reject(self, stream: str, stage: str) -> None:
        """Record one rejected record and the stage that rejected it."""
        self.outcomes[stream][REJECTED] += 1
        self.rejected_by_stage[stream][stage] += 1

    def total(self, outcome: str) -> int:
        """Total of one outcome over all streams."""
        return sum(counts[outcome] for counts in self.outcomes.values())

    def received(self, stream: str | None = None) -> int:
        """Records received (for one stream, or all)."""
        streams = [stream] if stream is not None else list(self.outcomes)
        # (read, not filled: a stream asked about is not thereby one that arrived)
        return sum(sum(self.outcomes.get(s, {}).values()) for s in streams)

    def progress_line(self) -> str:
        """One line for long runs: rate, sent, rejected."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        received = self.received()
        return (
            f"Progress: {received} records in {elapsed:.0f}s ({received / elapsed:.0f}/s), "
            f"{self.total(SENT)} sent, {self.total(VALIDATED)} validated, "
            f"{self.total(REJECTED)} rejected"
        )

    def summary_line(self) -> str:
        """The end-of-run summary: per stream, received = the sum of the outcomes."""
        parts = []
        for stream in sorted(self.outcomes):
            counts = self.outcomes[stream]
            detail = " ".join(f"{o}={counts[o]}" for o in OUTCOMES if counts[o])
            stages = self.rejected_by_stage.get(stream)
            if stages:
                detail += " (" + ", ".join(f"{s}={n}" for s, n in sorted(stages.items())) + ")"
            parts.append(f"{stream}: received={self.received(stream)} {detail}".rstrip())
        totals = " ".join(
            f"{o}={self.total(o)}" for o in OUTCOMES if o != UNSETTLED or self.total(o)
        )
        return f"Run summary: received={self.received()} {totals} requests={self.requests}" + (
            "; " + "; ".join(parts) if parts else ""
        )

    def counts(self) -> list[tuple[str, str, int]]:
        """(stream, outcome, count) for every non-zero count; rejections by stage too."""
        rows = [
            (stream, outcome, counts[outcome])
            for stream, counts in sorted(self.outcomes.items())
            for outcome in OUTCOMES
            if counts[outcome]
        ]
        rows += [
            (stream, f"{REJECTED}:{stage}", n)
            for stream, stages in sorted(self.rejected_by_stage.items())
            for stage, n in sorted(stages.items())
        ]
        return rows
