"""The target: declares its settings and wires the Singer message flow to the pipeline."""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import gc
import logging
import os
import re
import sys
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any, NoReturn

import click
from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    MapExpressionError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import PluginMapper, RemoveRecordTransform, SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import Sink

from target_openai_capi.config import (
    API_KEY_PREFIX,
    CONFIG_SCHEMA,
    FLATTENING_SETTINGS,
    compile_streams,
    config_problems,
    dry_run_variable_problems,
    environment_beside_a_file,
    environment_problems,
    fill_from_environment,
    flattening_from_environment,
    setting,
    unknown_settings,
    unknown_variables,
    without_key,
)
from target_openai_capi.delivery import DeliveryError
from target_openai_capi.delivery.credential_check import check_credentials
from target_openai_capi.delivery.request_log import RequestLogError
from target_openai_capi.log_safety import OneLine, hide_in_every_log_line, log_safe, show_in_log
from target_openai_capi.mapping.stream_mapping import preset_expressions, written_expressions
from target_openai_capi.output_files import protect_input
from target_openai_capi.parallel.pool import WorkerPool
from target_openai_capi.parallel.prepared import PreparedRecord
from target_openai_capi.pipeline.accounting import STAGE_INPUT
from target_openai_capi.pipeline.checkpoint import StateOutputClosed, StateWriter, write_line
from target_openai_capi.pipeline.dead_letter import DeadLetterError, input_stat
from target_openai_capi.pipeline.events import StreamInfo
from target_openai_capi.pipeline.run import Pipeline
from target_openai_capi.pipeline.settings import (
    PipelineSettings,
    integration_source,
    uploader_from_config,
)
from target_openai_capi.pipeline.settling import INPUT_STREAM as INPUT
from target_openai_capi.pipeline.settling import RunFailed
from target_openai_capi.presets import apply_preset
from target_openai_capi.reading.batch_files import BatchFileError, batch_records
from target_openai_capi.reading.envelope import RecordEnvelope
from target_openai_capi.reading.reader import BadLine, TolerantReader
from target_openai_capi.reading.schema_check import schema_problem, with_properties
from target_openai_capi.run_summary import log_counts, log_summary
from target_openai_capi.sink import ConversionsSink
from target_openai_capi.stream_maps import through_stream_maps
from target_openai_capi.termination import MessageGuard


def _filter_every_handler() -> None:
    """OneLine on every log handler: the root's, and any a logging config (SINGER_SDK_LOG_CONFIG)
    attached to a logger of its own, the target's too: a line through those went unfiltered (a
    stream's name with a newline forged a log line there, and the key was not hidden)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if not any(isinstance(f, OneLine) for f in handler.filters):
                handler.addFilter(OneLine())


def _mend_bare_type_names(schema: Any) -> None:
    """The SDK's stream_maps schema (0.54) lists a bare "null" among the alternatives of
    `__else__`, where a schema belongs: any other value there crashed the schema check (a
    traceback for `__else__: "__null__"`), instead of saying the value is not allowed. Each
    such name is made the schema it means ({"type": "null"}), in place."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
                value[:] = [{"type": v} if isinstance(v, str) else v for v in value]
            _mend_bare_type_names(value)
    elif isinstance(schema, list):
        for item in schema:
            _mend_bare_type_names(item)


_UNEXPECTED_IN_AN_ENTRY = re.compile(
    r"Additional properties are not allowed \('([^']+)'(?:, '[^']+')* (?:was|were) "
    r"unexpected\) in config\['streams'\]\['([^']+)'\]"
)


# A value as the SDK's validator quotes it from the config it read (floats as Decimals).
_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")
# The longest value a config error quotes (the SDK's validator quotes a value whole), and the
# longest message (one quoting a long list of short values).
_MAX_QUOTED_SETTING = 200
_MAX_CONFIG_MESSAGE = 1_000


# A long quoted value in a config message (the SDK's validator quotes a value whole): a run
# of characters without its quote (not a list of short values, each in its own quotes).
_LONG_QUOTED = re.compile(
    rf"(')([^'\n]{{{_MAX_QUOTED_SETTING + 1},}})'|(\")([^\"\n]{{{_MAX_QUOTED_SETTING + 1},}})\""
)


def _cut_to_be_read(error: str) -> str:
    """A config message with a long quoted value (10,000 characters made a 10 KB log line),
    the value cut, the rest of the message kept (the setting, the rule, the values allowed).
    After the key is hidden: a key cut short is no longer found whole."""

    def cut(found: re.Match[str]) -> str:
        quote, value = (found[1], found[2]) if found[1] else (found[3], found[4])
        return f"{quote}{value[:_MAX_QUOTED_SETTING]}... ({len(value):,} characters){quote}"

    error = _LONG_QUOTED.sub(cut, error)
    if len(error) > _MAX_CONFIG_MESSAGE:  # (a list of 3,000 short values: cut in its middle)
        error = f"{error[:600]}... ({len(error):,} characters) ...{error[-300:]}"
    return error


def _where_settings_come_from(error: str) -> str:
    """A missing required setting, with where it can be given; a value quoted as JSON has it
    (1.5, not Decimal('1.5'))."""
    error = _DECIMAL_REPR.sub(r"\1", error)
    for name in ("pixel_id", "api_key"):
        if error == f"'{name}' is a required property":
            return (
                f"{error}: set it in the config file, or as TARGET_OPENAI_CAPI_{name.upper()} "
                "(read with --config ENV, and by Meltano)"
            )
    unexpected = _UNEXPECTED_IN_AN_ENTRY.fullmatch(error)
    if unexpected:
        key, stream = unexpected.groups()
        return (
            f"{error}: if `{stream}.{key}` is a stream's name, Meltano read its dot as nesting "
            "(it does so in every object setting's keys), so an entry for a stream named with "
            "a dot cannot be written in its settings"
        )
    if error.endswith("is not of type 'boolean', 'null' in config['dry_run']"):
        return (  # (Meltano passes its variable's value as written: dry_run is text to it)
            f"dry_run is {error.partition(' is not of type')[0]}: use true or false (under "
            "Meltano, TARGET_OPENAI_CAPI_DRY_RUN or the dry_run setting)"
        )
    return error


def _taken_by_another_map(stream: str, maps: Mapping[str, Any]) -> bool:
    """Whether a stream map other than the stream's own takes its records: one that copies it
    (`__source__`), or one whose name is a pattern the stream's matches."""
    return any(
        (isinstance(value, dict) and value.get("__source__") == stream)
        or (key != stream and fnmatch.fnmatchcase(stream, str(key)))
        for key, value in maps.items()
    )


def _names_made_by_stream_maps(
    stream: str, maps: Mapping[str, Any], *, dropped_by_default: bool
) -> list[str]:
    """The streams the SDK's stream maps make of a stream's records, as its mapper registers
    them (singer_sdk/mapper.py `register_raw_stream_schema`): its own (last) map's alias, or
    its name; and each copy a `__source__` map makes; none where a map drops it (`null`)."""
    own: str | None = None if dropped_by_default else stream
    copies: list[str] = []
    for key, value in maps.items():
        source, alias, is_own = key, key, True
        if isinstance(value, dict):
            if "__source__" in value:
                source, is_own = value["__source__"], False
            elif "__alias__" in value:
                alias = PluginMapper._eval_stream(value["__alias__"], stream)
        if stream != source:
            if not fnmatch.fnmatch(stream, str(source)):
                continue
            alias = stream if alias == source else alias
        dropped = value is None or value == "__NULL__"
        if is_own:
            own = None if dropped else alias
        elif not dropped:
            copies.append(alias)
    return [name for name in (own, *copies) if name is not None]


def _declares_its_keys(message: Mapping[str, Any]) -> bool:
    """Whether a SCHEMA message's schema declares each of its key properties (the SDK's stream
    maps refuse one that does not, as if the map were wrong)."""
    properties = message["schema"].get("properties")
    keys = message.get("key_properties") or []
    return isinstance(properties, Mapping) and all(key in properties for key in keys)


def _with_its_keys_declared(message: Mapping[str, Any]) -> dict[str, Any]:
    """The SCHEMA message with each key property it does not list declared as any value."""
    schema = dict(message["schema"])
    properties = schema.get("properties")
    properties = dict(properties) if isinstance(properties, Mapping) else {}
    for key in message.get("key_properties") or []:
        properties.setdefault(key, {})
    schema["properties"] = properties
    return {**message, "schema": schema}


class StreamMapFailed(Exception):
    """A stream map of the config cannot be applied to a stream the tap sent: the run stops."""


class TargetOpenAICapi(Target):
    """Delivers Singer records as conversion events to OpenAI's Conversions API."""

    # (The docstring is the --about description, set again here: `python -OO` drops docstrings,
    # and --about said "description": null.) The SDK keeps the CLI, the config, SCHEMA and
    # STATE messages and user stream maps. A RECORD of a stream without stream maps goes from
    # the reader (an envelope) to its sink and on to the pipeline, past the SDK's per-record
    # path. The private SDK hooks this relies on are listed at the singer-sdk pin (pyproject).

    __doc__ = "Delivers Singer records as conversion events to OpenAI's Conversions API."
    name = "target-openai-capi"
    # A copy: the SDK adds its built-in settings to this dict in place, and CONFIG_SCHEMA (the
    # settings' defaults, the docs) must stay this target's own.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    default_sink_class = ConversionsSink
    message_reader_class = TolerantReader
    # Not schema flattening: mappings read the record's nested paths as the tap sends them
    # (customer.email), which flattening would rename (config_problems refuses the setting).
    capabilities = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # (read by _validate_config, which the SDK's __init__ calls)
        self.reads_environment = bool(kwargs.get("parse_env_config", False))
        super().__init__(*args, **kwargs)
        # From here on no log line shows the key (a streams entry may quote it by mistake).
        hide_in_every_log_line(str(self.config.get("api_key") or ""))
        # ... and the names the user gave show as they are, however they look.
        config = self.config
        show_in_log(
            config.get("pixel_id"),
            config.get("dead_letter_path"),
            config.get("request_log_path"),
            *(config.get("streams") or {}),
        )
        # All sinks share one uploader and one STATE checkpoint, so drains run one at a time.
        self.max_parallelism = 1
        self._state_out = StateWriter()
        self._state_withheld = False  # a STATE not written: it would pass dry-run records
        # Per stream: its sink when its records skip stream maps (None: through them), as last
        # chosen at a SCHEMA, with the reader's decoding for it.
        self._direct: dict[str, ConversionsSink | None] = {}
        self._chosen_for: dict[str, Sink | None] = {}  # stream -> its sink at that choice
        self._versions_seen: set[str] = set()  # streams whose ACTIVATE_VERSION was logged
        # Streams whose latest SCHEMA was refused: their records are rejected until one is not.
        self._refused: set[str] = set()
        # Records rejected for a refused SCHEMA, of streams with an entry under `streams`.
        self._refused_records: dict[str, int] = {}
        self._entry_for: dict[str, bool] = {}  # (_has_an_entry of each such stream, once)
        self._sdk_ends_the_run = False  # (it writes its last STATE past every record)
        self._failing = False  # fail() is stopping the run
        # With stream maps: each stream's own SCHEMA, for the dead letter of a record a map
        # fails on (the SDK's mapper changes its copy of the schema in place).
        self._source_streams: dict[str, StreamInfo] = {}
        mappings, errors, warnings = compile_streams(self.config)
        # (an entry's expression, preset or name may quote the key by mistake)
        errors = without_key(errors, self.config.get("api_key"))
        warnings = without_key(warnings, self.config.get("api_key"))
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        # (the user's expressions quoted in a message: `"stripe_amount(em, 'USD')" failed`)
        show_in_log(
            *(text for mapping in mappings.values() for text in mapping.texts.values()),
            *(mapping.event_type_from_text for mapping in mappings.values()),
            *(
                apply_preset(entry).get("filter")
                for entry in (self.config.get("streams") or {}).values()
                if isinstance(entry, dict)
            ),
        )
        for warning in warnings:
            self.logger.warning("%s", warning)
        if self.config.get("dry_run") is True:
            real = sorted(stream for stream, m in mappings.items() if m.dry_run is False)
            if real:
                self.logger.warning(
                    "dry_run is true, but %s set%s dry_run: false: %s events are sent for real.",
                    ", ".join(f"streams.{stream}" for stream in real),
                    "s" if len(real) == 1 else "",
                    "its" if len(real) == 1 else "their",
                )
        with_phone = sorted(stream for stream, m in mappings.items() if "phone" in m.fields)
        if with_phone and not self.config.get("default_phone_region"):
            self.logger.info(
                "%s map%s phone and default_phone_region is unset: a number written without + "
                "or 00 is hashed as written, and matches only if its digits begin with the "
                "country calling code ('(415) 555-2671' does not). Set default_phone_region to "
                "the region such numbers are from.",
                ", ".join(f"streams.{stream}" for stream in with_phone),
                "s" if len(with_phone) == 1 else "",
            )
        entries = self.config.get("streams") or {}
        self.pipeline = Pipeline(
            PipelineSettings.from_config(self.config),
            mappings,
            uploader_from_config(self.config),
            emit_state=self._write_state_message,
            logger=self.logger,
            written_expressions={
                stream: written_expressions(entries[stream]) for stream in mappings
            },
            preset_expressions={
                stream: (str(entries[stream]["preset"]), found)
                for stream, mapping in mappings.items()
                if (found := preset_expressions(entries[stream] or {}, mapping))
            },
        )
        self.pipeline.named_in_stream_maps = frozenset(self.config.get("stream_maps") or {})
        self.guard = MessageGuard(
            deliver_when_quiet=self.pipeline.deliver_when_quiet,
            end_of_input=self.process_endofpipe,
            fail=self.fail,
            fail_at_once=functools.partial(self.fail, at_once=True),
            stop_sending=self.pipeline.uploader.stop,
            logger=self.logger,
            grace_seconds=float(setting(self.config, "stop_grace_seconds")),
        )
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            reader.on_bad_line = self._reject_line
            reader.keep_sources = bool(self.pipeline.settings.dead_letter_path)
            reader.strict = self.pipeline.settings.on_rejected == "fail"
            if self.pipeline.settings.dead_letter_path:
                # Under the message guard's lock: the quiet-input thread writes dead letters
                # under it, into the file this swaps for another and closes.
                reader.on_replay = functools.partial(
                    self.guard.handle, lambda _: self.pipeline.input_is_a_replay(), None
                )
            processes = self.pipeline.settings.worker_processes
            if processes > 0 and mappings:
                reader.pool = WorkerPool(processes, self.logger, str(self.config.get("api_key")))
                reader.on_prepared = self._process_prepared_message
        if not str(self.config.get("api_key", "")).startswith(API_KEY_PREFIX):
            self.logger.warning(
                "api_key does not start with %s: the API accepts only Conversions API keys "
                "(scope ads.third_party_events.write), not Advertiser API keys.",
                API_KEY_PREFIX,
            )

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check plus cross-setting checks, with the API key redacted."""
        fill_from_environment(self._config)
        beside_a_file: list[str] = []
        if not self.reads_environment:
            beside_a_file, notes = environment_beside_a_file(self._config, os.environ)
            for note in notes:
                self.logger.warning("%s", note)
        # Settings the target does not have first: a typo's hint helps most when the setting
        # meant is a required one (apikey), whose error follows. (Flattening is known:
        # config_problems refuses it when on.)
        self.append_builtin_config(self.config_jsonschema)  # (the SDK's: stream_maps, ...)
        _mend_bare_type_names(self.config_jsonschema)
        known = {*self.config_jsonschema.get("properties", {}), *FLATTENING_SETTINGS}
        unknown, warnings = unknown_settings(self._config, known)
        if self.reads_environment:
            flattening_from_environment(self._config, os.environ)
            unknown_vars, more = unknown_variables(os.environ, self._config, known)
            unknown, warnings = unknown + unknown_vars, warnings + more
        # (names the user wrote, shown as written: "Dry Run" too; never a value, nor the key)
        for warning in without_key(warnings, self._config.get("api_key")):
            self.logger.warning("%s", warning)
        errors = super()._validate_config(raise_errors=False)
        errors = [_where_settings_come_from(error) for error in errors]
        if not errors and self.reads_environment:  # (again: the SDK has read a .env file now)
            errors = environment_problems(os.environ, self.config_jsonschema)
        if not errors:
            errors = beside_a_file + dry_run_variable_problems(os.environ)
        if not errors:
            errors = config_problems(self.config) + unknown
        errors = [
            _cut_to_be_read(error) for error in without_key(errors, self._config.get("api_key"))
        ]
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors

    # SCHEMA

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        self.guard.handle(self._process_schema, message_dict)

    def _let_replaced_sinks_go(self) -> None:
        """The SDK keeps a sink its stream's new SCHEMA replaced until the run's last drain, to
        drain its records; here the pipeline holds them (the sink keeps none), and a stream
        whose SCHEMA changes every hundred records kept a sink, with its compiled validator,
        for each change."""
        for replaced in self._sinks_to_clear:
            replaced.clean_up()
        self._sinks_to_clear.clear()

    def _process_schema(self, message_dict: dict[str, Any]) -> None:
        stream = message_dict.get("stream")
        if not isinstance(stream, str) or not stream:
            raise BadLine("SCHEMA message has no stream name")
        show_in_log(stream)  # (a stream's name is no record's data)
        if "schema" in message_dict and self.pipeline.settings.on_rejected != "fail":
            # (With on_rejected: fail such a SCHEMA stops the run, as in the SDK's targets: its
            # standard target tests call `{"type": "object"}` an invalid schema.)
            schema = with_properties(message_dict["schema"], message_dict.get("key_properties"))
            message_dict = {**message_dict, "schema": schema}
        problem = schema_problem(message_dict.get("schema"), message_dict.get("key_properties"))
        if problem is None and self.config.get("stream_maps"):
            self._source_streams[stream] = StreamInfo(
                stream,
                tuple(message_dict.get("key_properties") or ()),
                copy.deepcopy(message_dict["schema"]),
            )
        if (
            problem is None
            and self.config.get("stream_maps")
            and not _declares_its_keys(message_dict)
        ):
            # The SDK's stream maps refuse a SCHEMA whose key properties it does not list (as
            # if the map were wrong); without maps the target takes it: any value, as declared.
            message_dict = _with_its_keys_declared(message_dict)
        try:
            if problem is None:
                super()._process_schema_message(message_dict)
                self._let_replaced_sinks_go()
        except (BadLine, InvalidInputLine):
            raise
        except (MapExpressionError, StreamMapConfigError) as exc:
            # The user's stream map (an expression that does not parse, a key property it
            # removes): not the tap's input. Rejecting the stream's records would move STATE
            # past them, for good; the run stops before any of them instead.
            raise StreamMapFailed(
                f"stream_maps cannot be applied to stream {stream!r}: {exc} Fix the stream map "
                "and run again: no record after this SCHEMA was sent, nor STATE past it written."
            ) from None
        except Exception as exc:  # a schema the SDK or a validator cannot use is bad input
            problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        # (Refused or not, an entry whose stream's SCHEMA arrived is named right: a quiet
        # stream beside one without an entry is no misnamed entry.)
        maps = self.mapper.stream_maps.get(stream) or ()
        # (the streams its maps make, when it has any: an alias may leave its own name out)
        self.pipeline.schema_arrived([m.stream_alias for m in maps] or [stream])
        if problem is not None:
            self._refuse_schema(stream, problem)  # (raises BadLine)
        self._refused.discard(stream)
        self._choose_route(stream)
        if self.config.get("stream_maps"):
            # Also streams whose sink this SCHEMA replaced through a stream map's alias: only
            # those of the names its maps make can have a new one (every stream seen made n
            # SCHEMAs cost n * n: 2,000 tables, a SCHEMA before each record, ran 10x slower).
            for other in {m.stream_alias for m in maps} - {stream}:
                if other in self._chosen_for:
                    self._choose_route(other)

    def _dropped_by_stream_maps(self, stream: str) -> bool:
        """The user's stream_maps drop the stream (`stream: null`, or `__else__: null` without
        an entry for it): none of its records would be sent."""
        maps = self.mapper.stream_maps_dict  # (`__else__` is the mapper's default, not here)
        if _taken_by_another_map(stream, maps):  # (its records may go there: not dropped)
            return False
        if stream in maps:
            return maps[stream] is None or maps[stream] == "__NULL__"
        return self.mapper.default_mapper_type is RemoveRecordTransform

    def _refused_why(self, stream: str) -> str:
        """How a stream whose SCHEMA was refused is named in a message about its records."""
        reader = self.message_reader
        problem = reader.refused_schemas.get(stream) if isinstance(reader, TolerantReader) else None
        return f"has a refused SCHEMA ({problem})" if problem else "has a refused SCHEMA"

    def _has_an_entry(self, stream: str) -> bool:
        """Whether the stream's records would go to an entry under `streams` (by its name, or
        the names the stream maps give them), were its SCHEMA not refused; worked out once a
        stream (neither changes in a run)."""
        if stream in self._entry_for:
            return self._entry_for[stream]
        try:
            names = _names_made_by_stream_maps(
                stream,
                self.mapper.stream_maps_dict,
                dropped_by_default=self.mapper.default_mapper_type is RemoveRecordTransform,
            )
        except Exception:  # (an alias expression that fails: the maps would stop the run too)
            names = None
        has = names is None or any(name in self.pipeline.mappings for name in names)
        self._entry_for[stream] = has
        return has

    def _refused_entries_failure(self) -> str | None:
        """Why the run fails after all: records of a stream with an entry came under a refused
        SCHEMA; or None."""
        reader = self.message_reader
        why = reader.refused_schemas if isinstance(reader, TolerantReader) else {}
        return (
            " ".join(
                f"Stream '{stream}': {count:,} record{'s' if count != 1 else ''} came under a "
                f"SCHEMA that was refused ({why.get(stream, 'see above')}), so none was checked "
                "or sent (each is in the dead-letter file, if one is set), and no STATE was "
                "written past the first: fix the tap's SCHEMA, or remove the entry (or stream "
                "map) that takes the stream, and run again."
                for stream, count in sorted(self._refused_records.items())
            )
            or None
        )

    def _refuse_schema(self, stream: str, problem: str) -> None:
        """Record the SCHEMA line as rejected; the stream's records then say why they are
        (not sent under the stream's earlier SCHEMA: the tap says they follow this one)."""
        self._refused.add(stream)
        self._direct[stream] = None
        self._chosen_for.pop(stream, None)
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            reader.refused_schemas[stream] = problem
            reader.set_record_decoding(stream, None)
        raise BadLine(f"SCHEMA for stream {stream!r} refused: {problem}")

    def _choose_route(self, stream: str) -> None:
        """Whether the stream's records go straight to its sink, and how the reader decodes them.

        Straight, and decoded only at the paths the sink reads, when no stream map renames,
        filters, reshapes or flattens them (those may read any property).
        """
        maps = self.mapper.stream_maps.get(stream, [])
        sink = self._sink(stream)
        if stream in self._chosen_for and self._chosen_for[stream] is sink:
            return  # a repeated SCHEMA (some taps send one before every batch): nothing changed
        self._chosen_for[stream] = sink
        direct = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and isinstance(sink, ConversionsSink)
        )
        self._direct[stream] = sink if direct else None  # type: ignore[assignment]
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            decoding = sink.record_decoding() if direct else None  # type: ignore[union-attr]
            spec = None
            if decoding is not None and reader.pool is not None:
                entry = (self.config.get("streams") or {}).get(stream) or {}
                spec = sink.plan_spec(entry)  # type: ignore[union-attr]
            reader.set_record_decoding(stream, decoding, spec)

    def _sink(self, stream: str) -> Sink | None:
        try:
            return self.get_sink(stream)
        except KeyError:  # no SCHEMA registered it
            return None

    # RECORD and BATCH

    def _process_record_message(self, envelope: RecordEnvelope) -> None:  # type: ignore[override]
        """The reader hands each RECORD on as a RecordEnvelope (reading/envelope.py)."""
        self.guard.handle(self._process_record, envelope)

    def _process_record(self, envelope: RecordEnvelope) -> None:
        sink = self._direct.get(envelope.stream)
        if sink is not None:
            sink.add(envelope)
            return
        stream = envelope.stream
        if stream not in self.mapper.stream_maps or stream in self._refused:
            if stream in self._refused and self._has_an_entry(stream):
                # Rejected, it could not be replayed (its SCHEMA would be refused again): no
                # STATE goes past it, and the run fails at its end (_refused_entries_failure).
                if not self._refused_records:
                    checkpoints = self.pipeline.checkpoints
                    checkpoints.hold("a record under a refused SCHEMA", checkpoints.numbered)
                self._refused_records[stream] = self._refused_records.get(stream, 0) + 1
            raise RecordsWithoutSchemaException(f"RECORD for stream {stream!r} before its SCHEMA")
        through_stream_maps(
            self.mapper.stream_maps[stream],
            envelope,
            self._sink,
            self.pipeline,
            self._source_streams.get(stream) or StreamInfo(stream, (), None),
        )

    def _process_prepared_message(self, run: list[PreparedRecord], chunk: bytes) -> None:
        """RECORDs that a worker process prepared under their stream's current plan, in input
        order, with the chunk of lines they are from (one message-guard turn for the run: a
        signal waits for it)."""
        self.guard.handle(self._process_prepared, (run, chunk))

    def _process_prepared(self, item: tuple[list[PreparedRecord], bytes]) -> None:
        run, chunk = item
        start = 0
        while start < len(run):  # each stretch of one stream's records to its sink
            stream = run[start].stream
            end = start + 1
            while end < len(run) and run[end].stream == stream:
                end += 1
            sink = self._direct.get(stream)
            assert sink is not None  # a current plan is one for a stream that goes straight to it
            sink.add_prepared(run[start:end] if start or end < len(run) else run, chunk)
            start = end

    def _process_batch_message(self, message_dict: dict[str, Any]) -> None:
        self.guard.handle(self._process_batch, message_dict)

    def _process_batch(self, message_dict: dict[str, Any]) -> None:
        """A BATCH message's records go the way RECORD messages go, one by one (the SDK's own
        handling passes them to process_batch, past validation, mapping and accounting).

        One that cannot be read stops the run cleanly: what came before is delivered and its
        STATE written, nothing after it, so the next run reads the batch again.
        """
        stream = message_dict.get("stream")
        if not isinstance(stream, str):
            raise BadLine(f"BATCH for stream {str(stream)[:80]!r} came before its SCHEMA")
        if stream not in self.mapper.stream_maps or stream in self._refused:
            why = self._refused_why(stream) if stream in self._refused else "came before its SCHEMA"
            manifest = message_dict.get("manifest")
            if not manifest or self._dropped_by_stream_maps(stream):
                # (no file named, or its records would go nowhere: none lost with the line)
                raise BadLine(f"BATCH for stream {stream[:80]!r} {why}")
            # (its records are in files the tap may delete: rejected as one line, they could
            # not be replayed, and the summary would count one record for them all)
            self.pipeline.flush()
            raise RunFailed(
                f"BATCH message for stream {stream[:80]!r} {why}: its records cannot be checked "
                "or mapped. Stopping without STATE past it (what came before it was delivered); "
                "the next run reads it again."
            )
        try:
            for item in batch_records(stream, message_dict):
                if type(item) is RecordEnvelope:
                    self._process_record(item)
                else:
                    number, text, reason = item  # type: ignore[misc]
                    self.pipeline.reject_line(number, text, STAGE_INPUT, reason, in_batch_file=True)
        except BatchFileError as exc:
            self.pipeline.flush()
            raise RunFailed(
                f"BATCH message for stream {stream!r} cannot be used: {exc}. Stopping without "
                "STATE past it (what came before it was delivered); the next run reads it again."
            ) from None

    # ACTIVATE_VERSION, STATE, bad lines

    def _process_activate_version_message(self, message_dict: dict[str, Any]) -> None:
        """ACTIVATE_VERSION has nothing to do here (the API only appends events): checked, then
        ignored, once said per stream."""
        stream = message_dict.get("stream")
        version = message_dict.get("version")
        if not isinstance(stream, str) or stream not in self.mapper.stream_maps:
            raise BadLine(f"ACTIVATE_VERSION for stream {str(stream)[:80]!r}, which has no SCHEMA")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BadLine(f"ACTIVATE_VERSION for stream {stream!r} has no integer version")
        if stream not in self._versions_seen:
            self._versions_seen.add(stream)
            self.logger.info(
                "ACTIVATE_VERSION for stream %s ignored: the Conversions API only appends events.",
                stream,
            )

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        self.guard.handle(self._process_state, message_dict)

    def _process_state(self, message_dict: dict[str, Any]) -> None:
        super()._process_state_message(message_dict)
        self.pipeline.state_received(message_dict["value"])  # may send batches, wait for some

    def _reject_line(self, line_number: int, raw: str, stage: str, reason: str) -> None:
        """A bad line is handled like a message (a signal meanwhile waits for it)."""
        self.guard.handle(self._reject_line_now, (line_number, raw, stage, reason))

    def _reject_line_now(self, line: tuple[int, str, str, str]) -> None:
        self.pipeline.reject_line(*line)

    def _write_state_message(self, state: object) -> None:
        """Write STATE to stdout as the tap wrote it (checkpoint.py `StateWriter`)."""
        if self.pipeline.nothing_matched or self.pipeline.misspelt_entries():
            return  # the run fails at its end (a misnamed stream entry): it reruns from here
        checkpoints = self.pipeline.checkpoints
        if self._sdk_ends_the_run and checkpoints.low_water_mark() < checkpoints.numbered:
            return  # (the SDK's last STATE, past a record still held: one under a refused SCHEMA)
        if self.pipeline.holds_state_back():
            self._state_withheld = True
            return
        self._state_out.write(state)

    # The end of a run

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM / SIGINT: termination.py says what happens."""
        if "guard" not in vars(self):  # still starting: nothing read, nothing to deliver
            sys.exit(0)
        if self._failing:  # stopping on an error already, waiting for the requests in flight
            self.logger.error("Signal %d while stopping: stopped at once.", signum)
            logging.shutdown()
            os._exit(1)
        self.guard.signal(signum)

    def process_endofpipe(self) -> None:
        """Send what is left, then log the run summary (a signal meanwhile waits for it)."""
        self.guard.handle_end(self._end_of_input)

    def _end_of_input(self) -> None:
        self.pipeline.flush()
        # The SDK's clean-up and its last STATE, which it writes past every record: written
        # only when the checkpoints hold none back (all is settled now, but a record that came
        # under a refused SCHEMA holds STATE for good)
        self._sdk_ends_the_run = True
        super().process_endofpipe()
        failure = log_summary(
            self.pipeline, self.logger, self._refused, whole_input=not self.guard.stopped_by_signal
        )
        failure = failure or self._refused_entries_failure()
        if self._state_withheld:
            records = self.pipeline.dry_run_records()
            self.logger.warning(
                "Dry run: no STATE was written%s (%s), so the next run reads %s again; a run "
                "with a stream in dry_run writes none past its records.",
                " after the one before the first of them" if self._state_out.wrote else "",
                f"{records:,} records of streams in dry_run"
                if records
                else "dry_run is true, though no record of a stream in dry_run came",
                "them" if records else "this run's records",
            )
        reader = self.message_reader
        if isinstance(reader, TolerantReader) and reader.pool is not None and reader.pool.started:
            records = sum(
                sum(counts.values())
                for stream, counts in self.pipeline.account.outcomes.items()
                if stream != INPUT
            )
            self.logger.info(
                "Worker processes: %d%s; %s of %s records were decoded, checked and mapped in "
                "them%s.",
                reader.pool.processes,
                ", stopped (said above)" if reader.pool.broken else "",
                f"{reader.records_prepared:,}",
                f"{records:,}",
                ", the others in the main process" if reader.pool.broken else "",
            )
        if failure is not None:  # (everything was settled and summarised above)
            self.guard.quiet_input.stop()
            self.pipeline.close()
            self.logger.error("%s", failure)
            logging.shutdown()
            sys.exit(1)
        self.pipeline.close()

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with --test (check the key, pixel id and URL, then exit)."""
        command = super().get_singer_command()
        command.params.append(
            click.Option(
                ["--test"],
                is_flag=True,
                help="Check the api_key, pixel_id and api_url with one validate_only request.",
            )
        )
        return command

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: IO[str] | None = None,
        test: bool = False,
    ) -> None:
        """Run the target; a fatal error ends it with one clear message and exit code 1."""
        super(Target, cls).invoke(about=about, about_format=about_format)
        _filter_every_handler()  # (the SDK's logging is set up by now)
        # urllib3's DEBUG lines show each request's URL, query string and all (LOGLEVEL=DEBUG):
        # the target's own messages say what a request did, without it.
        logging.getLogger("urllib3").setLevel(logging.INFO)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        problems = environment_problems(os.environ) if config.parse_env else []
        for problem in problems:
            cls.logger.error("%s", problem)
        if problems:
            sys.exit(1)
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        hide_in_every_log_line(str(target.config.get("api_key") or ""))
        if test:
            uploader = target.pipeline.uploader
            works, line = check_credentials(
                uploader.client, integration_source(target.config), uploader.policy
            )
            uploader.close()
            try:  # (its bytes, whatever the locale's encoding: a pixel id may be any text)
                write_line(sys.stdout, line.encode("utf-8", errors="replace"))
            except OSError as exc:  # a full disk, a closed pipe
                cls.logger.error(
                    "%s (standard output could not be written: %s)",
                    log_safe(line),
                    exc.strerror or exc,
                )
                sys.exit(1)
            sys.exit(0 if works else 1)
        target.run(file_input)

    def run(self, file_input: IO[str] | None) -> None:
        """Open the run's files, read the input to its end, and stop cleanly on any failure."""
        if file_input is None and sys.stdin is None:  # (started with its input closed: <&-)
            self.fail(
                "There is no input: standard input is closed. Pipe a tap's output in "
                "(tap | target-openai-capi --config ...), or give --input FILE."
            )
        try:
            reads = input_stat(file_input)
            self.pipeline.open_dead_letters(reads)
            protect_input(reads)
            if self.pipeline.uploader.request_log is not None:
                self.pipeline.uploader.request_log.open()
            self.guard.quiet_input.start()
            # What start-up built (modules, the SDK, compiled schemas and mappings) lives as long
            # as the run: moved out of the collector's sight, its full collections stop walking
            # it again and again (~25% of the time of building events, benchmarks/RESULTS.md).
            gc.freeze()
            self.listen(file_input)
        except (DeliveryError, RunFailed, DeadLetterError, RequestLogError, StreamMapFailed) as exc:
            self.fail(str(exc))
        except StateOutputClosed as exc:
            self.fail(f"{exc}; the last STATE written is where the next run resumes.")
        except (
            BadLine,
            InvalidInputLine,
            RecordsWithoutSchemaException,
            MissingKeyPropertiesError,
        ) as exc:  # on_rejected: fail
            self.fail(f"Bad input (on_rejected is 'fail'): {exc}")
        except Exception as exc:  # a bug: say so plainly; the traceback is at DEBUG level
            if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
                self.fail(
                    "A thread could not be started: the limit of processes or threads is "
                    "reached (ulimit -u, a container's pids limit). Raise it, or run with fewer "
                    "(worker_processes: 0, a lower max_concurrent_requests)."
                )
            self.logger.debug("Unexpected error", exc_info=True)
            self.fail(
                f"Unexpected error ({type(exc).__name__}: {exc}). This is a bug in "
                "target-openai-capi: please report it with the log (LOGLEVEL=DEBUG)."
            )

    def fail(self, message: str, *, at_once: bool = False) -> NoReturn:
        """Stop the run: log why and what was delivered, exit 1 without STATE past the failure.
        `at_once` (a second signal): without waiting for a request in flight, whose records are
        counted unsettled (the next run sends them again)."""
        self._failing = True
        self.guard.quiet_input.stop(wait=not at_once)
        self.logger.error("%s", log_safe(message))
        if not at_once:
            self.pipeline.settle_after_failure()  # (the requests in flight end first)
            self.pipeline.close_dead_letters()
        elif self.guard.lock.acquire(blocking=False):
            # At once: only the batches already answered, and only while no other thread
            # settles (the quiet-input thread delivers under the lock); else they all count
            # as unsettled, which is safe: STATE stays before them.
            try:
                self.pipeline.settle_after_failure(wait=False)
                self.pipeline.close_dead_letters()
            finally:
                self.guard.lock.release()
        else:  # (every request made counts, answered or not: the summary says how many)
            # The dead-letter file stays open: the thread that holds the lock may be writing
            # to it (the process exits next).
            self.pipeline.count_requests_made()
        self.logger.error(
            "Stopped. No STATE was written past the last delivered records: "
            "rerun with the last STATE to resume."
        )
        unsettled = self.pipeline.count_unsettled()
        if unsettled:
            self.logger.info(
                "%d record%s had events in batches not yet sent, not yet answered, or refused in "
                "part, or held, when the run stopped (counted 'unsettled' below, as is a record "
                "whose rejection could not be written to the dead-letter file): the next run from "
                "the last STATE sends them again (the API ignores a copy of an event it already "
                "accepted).",
                unsettled,
                "s" if unsettled != 1 else "",
            )
        log_counts(self.pipeline, self.logger)
        logging.shutdown()
        if at_once:  # (sys.exit would wait for the threads of the requests in flight)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(1)
        sys.exit(1)
