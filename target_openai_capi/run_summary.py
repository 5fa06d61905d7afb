"""What a run says at its end: the summary line, METRIC counters, match coverage, and warnings."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection

from target_openai_capi.pipeline.accounting import FILTERED, REJECTED, SKIPPED_STREAM
from target_openai_capi.pipeline.run import Pipeline
from target_openai_capi.stream_matching import unmatched_entries


def _metric(logger: logging.Logger, metric: str, value: int, **tags: str) -> None:
    """One counter, in the shape of the SDK's METRIC lines (log-based dashboards read them)."""
    point = {"type": "counter", "metric": metric, "value": value, "tags": tags}
    logger.info("METRIC: %s", json.dumps(point))


def log_counts(pipeline: Pipeline, logger: logging.Logger) -> None:
    """The summary line, the match coverage, and both as METRIC lines: what every run ends
    with, one that failed too (a dashboard counts its sends and rejections as well)."""
    account = pipeline.account
    logger.info(account.summary_line())
    for stream, outcome, count in account.counts():
        _metric(logger, "capi_records", count, stream=stream, outcome=outcome)
    coverage = pipeline.coverage
    for line in coverage.lines():
        logger.info("%s", line)
    for stream, kind, count in coverage.metrics():
        _metric(logger, "capi_match_coverage", count, stream=stream, identifier=kind)


def log_summary(
    pipeline: Pipeline,
    logger: logging.Logger,
    refused: Collection[str] = (),
    *,
    whole_input: bool = True,
) -> str | None:
    """Log the run's summary; the reason the run fails after all (no stream matched), or None.
    `refused`: the streams whose SCHEMA was refused. `whole_input` False: a signal stopped the
    run before the end of its input, so an entry whose stream had not come yet is not named,
    nor does the run fail for records of streams without an entry (their entry's stream may
    have been to come): it says they were skipped with no STATE past them."""
    account = pipeline.account
    log_counts(pipeline, logger)
    arrived = [stream for stream in account.outcomes if stream != "(input)"]
    for stream in arrived:
        filtered = account.outcomes[stream][FILTERED]
        if not filtered or filtered != account.received(stream):
            continue
        if pipeline.dropped_by_stream_map[stream] == filtered:
            # Only when an entry under `streams` was to get them: a stream left out on purpose
            # (`orders: null`, `__else__: null`) with no entry says nothing.
            outputs = pipeline.stream_map_outputs.get(stream, [])
            if any(account.received(name) for name in outputs if name != stream):
                continue  # (an alias got the rest: counted under its own name)
            if any(name in pipeline.mappings for name in [stream, *outputs]):
                logger.warning(
                    "Stream '%s': its stream maps dropped all %d of its records (a "
                    "`__filter__`, `__else__: null`, or the stream mapped to null), so no entry "
                    "under `streams` got them: if that was not meant, check stream_maps.",
                    stream,
                    filtered,
                )
        elif stream in pipeline.mappings:
            logger.warning(
                "streams.%s: all %d of its records were filtered out (by its `filter`, or a "
                "stream map): if that was not meant, check it.",
                stream,
                filtered,
            )
    for line in pipeline.field_watch.lines():
        logger.warning("%s.", line)
    failure = _unmatched(pipeline, logger, arrived, refused, whole_input=whole_input)
    if not whole_input and set(pipeline.mappings) - set(arrived) - pipeline.described:
        logger.info(
            "The input was not read to its end (stopped by a signal): entries under `streams` "
            "whose stream did not come are not named."
        )
    if failure is not None:
        return failure
    rejected = account.total(REJECTED)
    if rejected and not pipeline.settings.dead_letter_path:
        logger.warning(
            "%d record%s rejected; set dead_letter_path to keep %s for replay.",
            rejected,
            " was" if rejected == 1 else "s were",
            "it" if rejected == 1 else "them",
        )
    return None


def _unmatched(
    pipeline: Pipeline,
    logger: logging.Logger,
    arrived: list[str],
    refused: Collection[str],
    *,
    whole_input: bool,
) -> str | None:
    """Say which entries matched no stream (only when the whole input was read: else their
    streams may be yet to come); the reason the run fails for it, or None: records of a
    stream without an entry that arrived were skipped, and no STATE passed them."""
    account = pipeline.account
    if whole_input:
        # An entry whose stream's SCHEMA came without records: a scheduled run, nothing new.
        quiet = sorted((pipeline.described & set(pipeline.mappings)) - set(arrived) - set(refused))
        for stream in quiet:
            logger.info("streams.%s: its SCHEMA arrived, and no records this run.", stream)
        for line in unmatched_entries(pipeline.mappings, [*arrived, *quiet], refused):
            logger.warning("%s.", line)
    misspelt = pipeline.misspelt_entries()
    if not whole_input:
        if misspelt or pipeline.nothing_matched:  # (the entries' streams may have been to come)
            logger.warning(
                "Records of streams without an entry under `streams` were skipped (%s), and no "
                "STATE was written past them: the next run reads them again. If an entry is "
                "misnamed, name it as the tap names its stream.",
                ", ".join(
                    sorted(s for s, counts in account.outcomes.items() if counts[SKIPPED_STREAM])
                ),
            )
        return None
    if misspelt:
        return " ".join(
            f"Stream '{stream}' has no entry under `streams`, and `streams.{entry}` matched no "
            f"stream: is it misspelt? Name the entry '{stream}', or set allow_unmatched_streams: "
            "true to skip streams without an entry; no STATE was written past its records."
            for stream, entry in misspelt.items()
        )
    if pipeline.nothing_matched:
        return (
            f"{account.total(SKIPPED_STREAM) + pipeline.dropped_by_else()} "
            "records arrived and none matched an entry "
            "under `streams` (see above); no STATE was written past them. Name the entries as "
            "the tap names its streams, or set allow_unmatched_streams: true."
        )
    return None
