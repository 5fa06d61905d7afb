"""Building one record's event: filter, build, contract, window, identifiers, dedup.

`EventBuilder.build` returns what became of the record: the event to batch (`Built`), a
`Rejection` with its stage and reason, or an outcome settled at once (filtered, duplicate,
skipped as unmatchable). It writes nothing and sends nothing.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from target_openai_capi.contract import TOO_OLD, built_event_problem, dedup_name, window_problem
from target_openai_capi.mapping.assembler import Assembler, compile_assembler
from target_openai_capi.mapping.errors import MappingError, TooOld
from target_openai_capi.mapping.event import (
    HASHED_DATA_NOTE_END,
    HASHED_ID_PREFIX,
    build_event,
    event_time_ms,
    id_key_properties,
    passes_filter,
)
from target_openai_capi.mapping.stream_mapping import StreamMapping
from target_openai_capi.pipeline.accounting import (
    DUPLICATE,
    FILTERED,
    SKIPPED_UNMATCHABLE,
    STAGE_MAPPING,
    STAGE_VALIDATION,
    STAGE_WINDOW,
)
from target_openai_capi.pipeline.coverage import identifiers
from target_openai_capi.pipeline.log_limit import LOGGED_PER_KIND, NOTE, LimitedLog
from target_openai_capi.reading.envelope import RecordEnvelope

if TYPE_CHECKING:
    from target_openai_capi.delivery.batch import WireEvent

# In-run dedup remembers this many recent (event name, id) keys: far more than a tap re-sends
# around its bookmark, and few enough (~3 MB) that the cap is reached early and memory stays
# flat however long the stream. OpenAI deduplicates on (pixel, event name, id) anyway; this
# only saves requests, and says when two streams' ids collide.
RECENT_EVENT_KEYS = 20_000
# And the run's first keys, as many, kept to its end: the second of two tables numbered from 1
# (each longer than the recent keys) meets the first's ids there, and its collision is said.
FIRST_EVENT_KEYS = 20_000
# Event ids whose making a stream is told of, once (_say_how_the_id_was_made).
_ID_PREFIXES_TOLD = ("rec_", HASHED_ID_PREFIX)
_MADE_ID = re.compile(r"rec_[0-9a-f]{32}|" + HASHED_ID_PREFIX + "[0-9a-f]{64}")
# Before the dedup name of an event only validated (a dry-run stream): a key of its own.
VALIDATED_ONLY = "validate_only:"
_UNSEEN = object()  # (an event key not among the recent ones)


@dataclass(frozen=True)
class StreamInfo:
    """What the pipeline knows of a stream from its SCHEMA (for event ids and dead letters)."""

    name: str
    key_properties: Sequence[str]
    schema: Mapping[str, Any] | None


@dataclass(frozen=True)
class Rejection:
    """Why a record is rejected: its stage (accounting.py STAGE_*) and a reason a person can act
    on; the event id when there is one, and the server's own message for the API stage."""

    stage: str
    reason: str
    event_id: str | None = None
    server_message: str | None = None


class Built(NamedTuple):
    """An event ready to batch, with its dedup name (the type, or a custom event's name) and the
    identifier kinds it carries (for match coverage). The event is a dict, or its JSON already
    serialised (orjson.Fragment) when a worker process built it (parallel/)."""

    event: WireEvent
    name: str
    identifiers: frozenset[str]
    timestamp_ms: int  # (the API refuses it once older than 7 days: checked again at sending)


# What became of a record before the run's own state (dedup) has a say: its event, a rejection,
# or an outcome settled at once (FILTERED, SKIPPED_UNMATCHABLE).
Outcome = Built | Rejection | str


class HeldCopy(NamedTuple):
    """A later copy of an event whose first copy is still on its way: if the API refuses that
    one, this copy (perhaps fixed) is sent instead; if it accepts it, this one is a duplicate."""

    built: Built


def prepare_event(
    mapping: StreamMapping,
    stream: StreamInfo,
    envelope: RecordEnvelope,
    *,
    user_field_style: str,
    default_phone_region: str | None,
    now_ms: int,
    assemble: Assembler | None = None,
) -> tuple[Outcome, list[str], str | None]:
    """The record's event or what else became of it, with notes on identifiers left out and the
    built event's id (None when none was built). Pure: no I/O, no state; a worker process runs
    it as the main process would (parallel/). `assemble` is the stream's compiled build_event
    (mapping/assembler.py), when there is one."""
    record = envelope.record
    try:
        if not passes_filter(mapping, record):
            return FILTERED, [], None
        if assemble is not None:
            # An id hashed from the record covers all of it, not only the read paths.
            event, notes = assemble(record, envelope.whole_exactly)
        else:
            event, notes = build_event(
                mapping,
                record,
                stream.key_properties,
                user_field_style=user_field_style,
                default_phone_region=default_phone_region,
                whole_record=envelope.whole_exactly,
            )
    except TooOld as exc:  # older than the window: no fix of the record sends it
        return Rejection(STAGE_WINDOW, f"{TOO_OLD} ({exc})", event_id=exc.event_id), [], None
    except MappingError as exc:
        if _older_than_the_window(mapping, record, now_ms):  # (as below: no fix sends it)
            reason = f"{TOO_OLD} (and {exc})"
            return Rejection(STAGE_WINDOW, reason, event_id=exc.event_id), [], None
        return Rejection(STAGE_MAPPING, str(exc), event_id=exc.event_id), [], None
    event_id: str = event["id"]
    # The window first: an event older than 7 days (a time of 1970 as well) is refused as such,
    # whatever else is wrong with it, since no rerun can send it (on_rejected: fail goes on).
    stamp = event.get("timestamp_ms")
    problem = window_problem(stamp, now_ms) if type(stamp) is int else None
    if problem is not None:
        return Rejection(STAGE_WINDOW, problem, event_id=event_id), notes, event_id
    # The user values were each checked against the contract as they were made (user_values.py).
    problem = built_event_problem(event, normalised_user=True)
    if problem is not None:
        return Rejection(STAGE_VALIDATION, problem, event_id=event_id), notes, event_id
    kinds = identifiers(event)
    wanted = mapping.match_identifiers
    if wanted is not None and not kinds & wanted:
        return SKIPPED_UNMATCHABLE, notes, event_id
    return Built(event, dedup_name(event), kinds, event["timestamp_ms"]), notes, event_id


def _older_than_the_window(mapping: StreamMapping, record: Mapping[str, Any], now_ms: int) -> bool:
    """Whether a record whose event could not be built has a time older than 7 days (read as
    the event's own would be): then that is why it is refused, whatever else is wrong."""
    try:
        return window_problem(event_time_ms(mapping, record), now_ms) == TOO_OLD
    except TooOld:
        return True
    except Exception:  # (no readable time: the mapping's error is the reason)
        return False


# Where an event came from, for in-run dedup: its stream, or (the stream a stream map made it
# of, the stream it was mapped into).
_Source = str | tuple[str, str]


def _named(source: _Source) -> str:
    """A source as a message names it: `orders`, or `orders_eu' as 'orders` (in its quotes)."""
    return source if isinstance(source, str) else f"{source[0]}' as '{source[1]}"


def _id_in_a_stream_map(mapping: StreamMapping, keys: Sequence[str]) -> str | None:
    """What the stream's event id is made of, as a stream map's expression writes it
    (`str(order_id)`), or None when that is no column (an expression, a hash of the row)."""
    text = mapping.texts.get("id")
    if "id" in mapping.fields:
        column = text.strip() if isinstance(text, str) else ""
        return f"str({column})" if column.isidentifier() else None
    columns = list(id_key_properties(keys)) or ["id"]  # (unkeyed: the record's own `id`)
    if not all(column.isidentifier() for column in columns):
        return None
    return " + ':' + ".join(f"str({column})" for column in columns)


class EventBuilder:
    """Maps records to events by their stream's mapping and remembers recent event keys."""

    def __init__(
        self,
        mappings: Mapping[str, StreamMapping],
        *,
        user_field_style: str,
        default_phone_region: str | None,
        log: LimitedLog,
        now_ms: Callable[[], int],
    ) -> None:
        self.mappings = mappings
        self._user_field_style = user_field_style
        self._default_phone_region = default_phone_region
        self._log = log
        self._now_ms = now_ms
        # Recent event keys, each with the stream of its first copy (None: not known).
        self._recent: OrderedDict[tuple[str, str], _Source | None] = OrderedDict()
        self._first: dict[tuple[str, str], _Source | None] = {}  # (FIRST_EVENT_KEYS)
        self._collisions_told: set[tuple[_Source, _Source]] = set()  # (this, the other)
        self._notes_told: set[tuple[str, str]] = set()  # (stream, a note said once a stream)
        self._places_told: dict[str, int] = {}  # stream -> how many such notes were said
        # Whether an event of this (name, id) is batched or in flight, not yet settled: then a
        # later copy is held (HeldCopy), not a duplicate. Set by the pipeline.
        self.is_unsettled: Callable[[tuple[str, str]], bool] = lambda key: False
        # Streams whose events are only validated (dry_run), set by the pipeline.
        self.validate_only_streams: frozenset[str] = frozenset()
        self._id_streams_checked: set[str] = set()  # streams checked for hashed event ids
        # (stream, "rec_" or "sha2"): told how such an id of the stream was made.
        self._id_kinds_told: set[tuple[str, str]] = set()
        # Per stream: its compiled build_event, and the key properties it was compiled for.
        self._assemblers: dict[str, tuple[Sequence[str], Assembler | None]] = {}

    def build(self, stream: StreamInfo, envelope: RecordEnvelope) -> Outcome | HeldCopy:
        """The record's event, its rejection, or the outcome it is settled with at once."""
        mapping = self.mappings[stream.name]
        outcome, notes, event_id = prepare_event(
            mapping,
            stream,
            envelope,
            user_field_style=self._user_field_style,
            default_phone_region=self._default_phone_region,
            now_ms=self._now_ms(),
            assemble=self._assembler(stream),
        )
        mapped_from = None if envelope.before_maps is None else envelope.before_maps[0].name
        return self.settle_prepared(stream, outcome, notes, event_id, mapped_from)

    def settle_prepared(
        self,
        stream: StreamInfo,
        outcome: Outcome,
        notes: list[str],
        event_id: str | None,
        mapped_from: str | None = None,
    ) -> Outcome | HeldCopy:
        """What the run makes of a prepared outcome: DUPLICATE for an event sent recently,
        HeldCopy for one whose first copy is still on its way; the notes of an event to send
        logged ("sent without it": not said of a record rejected, skipped or a duplicate).
        `event_id` is the built event's, when one was built (prepare_event); `mapped_from`, the
        stream whose record the user's stream maps made this one of."""
        if event_id is not None:
            if stream.name not in self._id_streams_checked:
                self._say_if_ids_are_hashed(stream, event_id)
            if (
                event_id.startswith(_ID_PREFIXES_TOLD)
                and (stream.name, event_id[:4]) not in self._id_kinds_told
            ):
                self._say_how_the_id_was_made(stream, event_id)
        if type(outcome) is not Built:
            return outcome
        if stream.name in self.validate_only_streams:
            # Its own dedup keys: an event only validated was not sent, so it makes no event
            # of a stream sent for real a duplicate (nor one of them, this one).
            outcome = outcome._replace(name=VALIDATED_ONLY + outcome.name)
        key = (outcome.name, str(event_id))
        result: Outcome | HeldCopy = outcome
        # (two tables a stream map aliases to one stream are two sources of ids)
        source: _Source = stream.name
        if mapped_from is not None and mapped_from != stream.name:
            source = (mapped_from, stream.name)
        first = self._recent.get(key, _UNSEEN)  # (one lookup: every event comes here)
        if first is _UNSEEN:
            first = self._first.get(key, _UNSEEN)
        if first is _UNSEEN:
            self._remember(key, source)
            if self.is_unsettled(key):
                # A first copy still on its way, whose key more recent ones pushed out (a long
                # back-off of its batch): the API keeps the first it gets, so this one waits.
                result = HeldCopy(outcome)
        else:
            result = HeldCopy(outcome) if self.is_unsettled(key) else DUPLICATE
            if first is not None and first != source:
                self._say_ids_collide(source, first, outcome.name, stream)  # type: ignore[arg-type]
        if result is not DUPLICATE:
            for note in notes:
                if note.endswith(HASHED_DATA_NOTE_END):  # (about a place, not a record: once)
                    self._say_once(stream.name, note)
                    continue
                self._log.warning(stream.name, NOTE, "Record of '%s': %s", stream.name, note)
        return result

    def _assembler(self, stream: StreamInfo) -> Assembler | None:
        """The stream's compiled build_event, compiled at its first record (and again when a
        SCHEMA changes its key properties)."""
        known = self._assemblers.get(stream.name)
        if known is not None and known[0] == stream.key_properties:
            return known[1]
        assemble = compile_assembler(
            self.mappings[stream.name],
            stream.key_properties,
            self._user_field_style,
            self._default_phone_region,
        )
        self._assemblers[stream.name] = (stream.key_properties, assemble)
        return assemble

    def mark_sent(self, key: tuple[str, str]) -> None:
        """An event of this (name, id) is on its way again (a copy in place of a refused one)."""
        if key not in self._recent:
            self._remember(key, None)

    def forget(self, event_name: str, event_id: str) -> None:
        """The event was not sent: a later copy in this run (perhaps fixed) is not a duplicate."""
        self._recent.pop((event_name, event_id), None)
        self._first.pop((event_name, event_id), None)

    def _say_ids_collide(
        self, this: _Source, first: _Source, event_name: str, stream: StreamInfo
    ) -> None:
        """Once per pair of sources: an event of this one has the name and id of one of another
        (a stream, or a stream a stream map aliased to another's name); the API keeps the
        first, so this one is a duplicate."""
        if (this, first) in self._collisions_told:
            return
        self._collisions_told.add((this, first))
        if isinstance(this, tuple):  # (a stream map's copy: one entry serves both sources)
            made_of = _id_in_a_stream_map(self.mappings[stream.name], stream.key_properties)
            example = (
                f'such as "order_key": "\'{this[0]}:\' + {made_of}"'
                if made_of
                else "made of its source stream's name and what the id is made of"
            )
            advice = f"add to each stream map a property unique across them, {example}, and map "
            advice += "fields.id to it"
        else:
            advice = "map fields.id on each to an id unique across them, such as "
            advice += f"join(':', ['{this}', to_string(id)])"
        self._log.logger.warning(
            "Stream '%s': an event has the name (%s) and id of an event of stream '%s' in this "
            "run, so it is counted a duplicate and not sent unless that one is refused (the API "
            "keeps the first event of a name and id). If the two streams' records are different "
            "conversions (two tables numbered from 1), %s.",
            _named(this),
            event_name.removeprefix(VALIDATED_ONLY),
            _named(first),
            advice,
        )

    def _say_once(self, stream: str, note: str) -> None:
        """A note about a place in the stream's events, said once (and at most
        LOGGED_PER_KIND places a stream: names that are data make places without end)."""
        if (stream, note) in self._notes_told:
            return
        told = self._places_told.get(stream, 0)
        self._places_told[stream] = told + 1
        if told < LOGGED_PER_KIND:
            self._notes_told.add((stream, note))
            self._log.logger.warning("Stream '%s': %s.", stream, note)
        elif told == LOGGED_PER_KIND:
            self._log.logger.warning(
                "Stream '%s': more places of personal data hashed: not logged from now on.",
                stream,
            )

    def _remember(self, key: tuple[str, str], stream: _Source | None) -> None:
        """Keep the key of an event on its way, with its stream (None: not known)."""
        self._recent[key] = stream
        if len(self._recent) > RECENT_EVENT_KEYS:
            self._recent.popitem(last=False)
        if len(self._first) < FIRST_EVENT_KEYS:
            self._first.setdefault(key, stream)

    def _say_if_ids_are_hashed(self, stream: StreamInfo, event_id: str) -> None:
        """Once per stream: its event ids are hashes of the records (no id, no key properties)."""
        self._id_streams_checked.add(stream.name)
        if "id" in self.mappings[stream.name].fields:
            return
        if _MADE_ID.fullmatch(event_id) and event_id[0] == "r":
            if id_key_properties(stream.key_properties):
                return  # (a record without its key: said by _say_how_the_id_was_made)
            self._id_kinds_told.add((stream.name, "rec_"))  # (said here)
            self._log.logger.warning(
                "Stream '%s' has no `id` mapping and no key properties%s, and its first record "
                "no `id` property with a value: its event ids are hashes of each record's own "
                "data (tap and loader metadata such as _sdc_* or _fivetran_* left out), so an "
                "edited row becomes a new event. Map `fields.id` to a stable column.",
                stream.name,
                " but tap metadata (where a row was read, not which row it is)"
                if stream.key_properties
                else "",
            )

    def _say_how_the_id_was_made(self, stream: StreamInfo, event_id: str) -> None:
        """Once per stream and kind: a record's id was a hash of its data although the stream
        has an id (a placeholder, or none), or an id held an email address or a phone number
        (sent hashed)."""
        if not _MADE_ID.fullmatch(event_id):
            return  # (an id of the record's own that looks so)
        self._id_kinds_told.add((stream.name, event_id[:4]))
        if "id" in self.mappings[stream.name].fields:
            source = "`fields.id`"
        elif id_key_properties(stream.key_properties):
            source = "`id` property or key properties"
        else:
            source = "`id` property"
        if event_id.startswith("rec_"):
            self._log.logger.warning(
                "Stream '%s': a record's %s gave no id (null, empty, or a placeholder such as "
                "'(not set)' or 'NULL'), so its event id is a hash of its own data: records "
                "without an id are not taken for one another.",
                stream.name,
                source,
            )
        else:
            self._log.logger.warning(
                "Stream '%s': event ids that hold an email address or a phone number (from the "
                "%s) are sent as "
                "'%s' and the SHA-256 of the id, never raw. Map `fields.id` to a column without "
                "personal data (an order or lead number) to keep ids readable.",
                stream.name,
                "mapped `fields.id`" if source == "`fields.id`" else source,
                HASHED_ID_PREFIX,
            )
