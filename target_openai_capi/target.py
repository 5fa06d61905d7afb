"""The target: declares its settings and wires the Singer message flow to the pipeline."""

from __future__ import annotations

import decimal
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click
import msgspec
import simplejson
from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import Sink

from target_openai_capi.accounting import REJECTED, SKIPPED_STREAM, STAGE_MAPPING
from target_openai_capi.batch_files import BatchFileError, check_batch_message, read_lines
from target_openai_capi.config import API_KEY_PREFIX, CONFIG_SCHEMA, config_problems
from target_openai_capi.dead_letter import DeadLetterError
from target_openai_capi.delivery import DeliveryError
from target_openai_capi.delivery.credential_check import check_credentials
from target_openai_capi.delivery.request_log import RequestLogError
from target_openai_capi.mapping.event import StreamMapping, compile_stream_mapping
from target_openai_capi.mapping.identity import (
    DEFAULT_USER_FIELD_STYLE,
    USER_FIELD_STYLES,
    USER_FIELDS,
    unsendable_user_field,
)
from target_openai_capi.pipeline import (
    Pipeline,
    PipelineSettings,
    RunFailed,
    integration_source,
    uploader_from_config,
)
from target_openai_capi.quiet_input import QuietInputDelivery
from target_openai_capi.reader import (
    RECORD_CHECKED_KEY,
    RECORD_LINE_KEY,
    RECORD_SOURCE_KEY,
    BadLine,
    TolerantReader,
)
from target_openai_capi.schema_check import schema_problem
from target_openai_capi.sink import ConversionsSink
from target_openai_capi.stream_matching import unmatched_entries

# Records in BATCH files, decoded as the reader decodes RECORD messages: floats as Decimals.
BATCH_RECORD_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=decimal.Decimal)


def _raised_by_stream_map(exc: BaseException) -> bool:
    """True when the exception came out of the SDK's stream-map evaluation (a user expression)."""
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("singer_sdk.mapper", "simpleeval")):
            return True
        traceback = traceback.tb_next
    return False


def main() -> None:
    """The console script: the SDK's CLI, with a config file that cannot be read said plainly
    (the SDK reads it before the target exists, and would end in a traceback)."""
    try:
        TargetOpenAICapi.cli()
    except (ValueError, OSError) as exc:  # JSONDecodeError is a ValueError
        if not _from_config_file(exc):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        name = getattr(exc, "filename", None)
        where = f" {name!r}" if name else ""
        print(
            f"target-openai-capi: the config file{where} cannot be read: {reason}", file=sys.stderr
        )
        sys.exit(1)


def _from_config_file(exc: BaseException) -> bool:
    """True when the exception was raised while the SDK read a --config file."""
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name in ("from_cli_args", "read_json_file"):
            return True
        traceback = traceback.tb_next
    return False


def _input_stat(file_input: IO[Any] | None) -> os.stat_result | None:
    """What the run reads from (a file or stdin), to tell whether it is the dead-letter file."""
    try:
        return os.fstat((file_input or sys.stdin).fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind it (a test's StringIO)
        return None


class TargetOpenAICapi(Target):
    """Delivers Singer records as conversion events to OpenAI's Conversions API."""

    name = "target-openai-capi"
    config_jsonschema = CONFIG_SCHEMA
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
    # Termination signals (_handle_termination); class defaults, as a signal may come early.
    _terminating = False
    _in_message = False
    _pending_signal: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # All sinks share one uploader and one STATE checkpoint, so drains run one at a time.
        self.max_parallelism = 1
        self._last_state_line: str | None = None
        self._decoding_chosen_for: dict[str, Sink | None] = {}  # stream -> its sink then
        self._versions_seen: set[str] = set()  # streams whose ACTIVATE_VERSION was logged
        self.pipeline = Pipeline(
            PipelineSettings.from_config(self.config),
            self._compile_streams(),
            uploader_from_config(self.config),
            emit_state=self._write_state_message,
            logger=self.logger,
        )
        # The main thread holds this while it handles a message; between messages (waiting for
        # input) the quiet-input thread may deliver what has waited too long.
        self._message_lock = threading.Lock()
        self.quiet_input = QuietInputDelivery(self.pipeline.deliver_when_quiet, self._message_lock)
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            reader.on_bad_line = self._reject_line
            reader.keep_sources = bool(self.pipeline.settings.dead_letter_path)
            reader.strict = self.pipeline.settings.on_rejected == "fail"
        key = str(self.config.get("api_key", ""))
        if not key.startswith(API_KEY_PREFIX):
            self.logger.warning(
                "api_key does not start with %s: the API accepts only Conversions API keys "
                "(scope ads.third_party_events.write), not Advertiser API keys.",
                API_KEY_PREFIX,
            )

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check plus cross-setting checks, with the API key redacted."""
        for setting in ("api_key", "pixel_id"):
            # Meltano passes only settings a plugin declares: a loader with only a pip_url
            # gets none, though TARGET_OPENAI_CAPI_API_KEY is set.
            variable = f"TARGET_OPENAI_CAPI_{setting.upper()}"
            if self._config.get(setting) in (None, "") and os.environ.get(variable):
                self._config[setting] = os.environ[variable]
        key = self._config.get("api_key")
        if isinstance(key, str) and key != key.strip():  # as read from a secret file
            self._config["api_key"] = key.strip()
        errors = super()._validate_config(raise_errors=False)
        if not errors:
            errors = config_problems(self.config)
        if isinstance(key, str) and key.strip():
            # The key as given, trimmed, and as repr() writes it (a newline as \\n).
            for form in {key, key.strip(), repr(key)[1:-1], repr(key.strip())[1:-1]}:
                errors = [e.replace(form, "***") for e in errors]
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors

    def _compile_streams(self) -> dict[str, StreamMapping]:
        mappings, errors = {}, []
        for stream, entry in (self.config.get("streams") or {}).items():
            try:
                mappings[stream] = compile_stream_mapping(stream, entry or {})
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        style = str(self.config.get("user_field_style") or DEFAULT_USER_FIELD_STYLE)
        for stream, mapping in mappings.items():
            for name in sorted(set(mapping.fields) - USER_FIELD_STYLES[style].keys()):
                if name in USER_FIELDS:
                    self.logger.warning(
                        "streams.%s.fields.%s is not sent: %s.",
                        stream,
                        name,
                        unsendable_user_field(name, style),
                    )
        return mappings

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        self._one_message(self._process_schema, message_dict)

    def _process_schema(self, message_dict: dict[str, Any]) -> None:
        stream = message_dict.get("stream")
        if not isinstance(stream, str) or not stream:
            raise BadLine("SCHEMA message has no stream name")
        problem = schema_problem(message_dict.get("schema"), message_dict.get("key_properties"))
        try:
            if problem is None:
                super()._process_schema_message(message_dict)
        except (BadLine, InvalidInputLine):
            raise
        except Exception as exc:  # a schema the SDK or a validator cannot use is bad input
            problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        if problem is not None:
            self._refuse_schema(stream, problem)
        self._choose_record_decoder(stream)
        if self.config.get("stream_maps"):
            # Also streams whose sink this SCHEMA replaced through a stream map's alias (only
            # stream maps alias; without them this would make n SCHEMAs cost n * n).
            for other in list(self._decoding_chosen_for):
                self._choose_record_decoder(other)

    def _refuse_schema(self, stream: str, problem: str) -> None:
        """Record the SCHEMA line as rejected; the stream's records then say why they are."""
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            reader.refused_schemas[stream] = problem
        raise BadLine(f"SCHEMA for stream {stream!r} refused: {problem}")

    def _choose_record_decoder(self, stream: str) -> None:
        """Have the reader decode only the paths the stream's sink reads, where that is safe.

        Safe when the record reaches the sink as decoded: no stream map renames, filters,
        reshapes or flattens it (those may read any property).
        """
        reader = self.message_reader
        if not isinstance(reader, TolerantReader):
            return
        maps = self.mapper.stream_maps.get(stream, [])
        sink = self._sinks_active.get(stream)
        if stream in self._decoding_chosen_for and self._decoding_chosen_for[stream] is sink:
            return  # a repeated SCHEMA (some taps send one before every batch): nothing changed
        self._decoding_chosen_for[stream] = sink
        decoding = None
        if (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and isinstance(sink, ConversionsSink)
        ):
            decoding = sink.record_decoding()
        reader.set_record_decoding(stream, decoding)

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        self._one_message(self._process_record, message_dict)

    def _process_record(self, message_dict: dict[str, Any]) -> None:
        numbered = self.pipeline.checkpoints.numbered
        # Set when the reader decoded only the read paths: dead letters keep the whole record.
        self.pipeline.record_source = message_dict.get(RECORD_SOURCE_KEY)
        self.pipeline.record_line = message_dict.get(RECORD_LINE_KEY)
        self.pipeline.record_checked = RECORD_CHECKED_KEY in message_dict
        try:
            super()._process_record_message(message_dict)
        except Exception as exc:
            if not _raised_by_stream_map(exc) or self.pipeline.checkpoints.numbered != numbered:
                raise
            self._reject_stream_map_failure(message_dict, exc)
            return
        if self.pipeline.checkpoints.numbered == numbered:
            # No sink saw it: a stream map dropped the record.
            self.pipeline.filtered_by_stream_map(message_dict["stream"])

    def _process_batch_message(self, message_dict: dict[str, Any]) -> None:
        self._one_message(self._process_batch, message_dict)

    def _process_batch(self, message_dict: dict[str, Any]) -> None:
        """A BATCH message's records go the way RECORD messages go, one by one (the SDK's own
        handling passes them to process_batch, past validation, mapping and accounting).

        One that cannot be read stops the run cleanly: what came before is delivered and its
        STATE written, nothing after it, so the next run reads the batch again.
        """
        stream = message_dict.get("stream")
        if not isinstance(stream, str) or stream not in self.mapper.stream_maps:
            raise BadLine(f"BATCH for stream {str(stream)[:80]!r} came before its SCHEMA")
        try:
            gzipped, paths = check_batch_message(message_dict)
            for path in paths:
                for number, line in read_lines(path, gzipped=gzipped):
                    self._process_batch_line(stream, path, number, line)
        except BatchFileError as exc:
            self.pipeline.flush()
            raise RunFailed(
                f"BATCH message for stream {stream!r} cannot be used: {exc}. Stopping without "
                "STATE past it (what came before it was delivered); the next run reads it again."
            ) from None

    def _process_batch_line(self, stream: str, path: Path, number: int, line: bytes) -> None:
        where = f"line {number} of BATCH file {path.name!r}"
        try:
            record = BATCH_RECORD_DECODER.decode(line)
        except (msgspec.DecodeError, decimal.InvalidOperation, RecursionError, UnicodeError):
            reason = f"{where} is not a JSON record this target can read"
        else:
            if isinstance(record, dict):
                self._process_record({"type": "RECORD", "stream": stream, "record": record})
                return
            reason = f"{where} is not a JSON object"
        self.pipeline.reject_line(number, line.decode("utf-8", "replace").rstrip(), "input", reason)

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

    def _reject_stream_map_failure(self, message_dict: dict[str, Any], exc: Exception) -> None:
        """A user's stream map expression that fails on one record rejects that record."""
        stream = str(message_dict["stream"])
        sink = self._sinks_active.get(stream)
        detail = " ".join(str(exc).split())[:200]
        self.pipeline.reject(
            stream,
            message_dict.get("record") or {},
            sink.key_properties if sink is not None else [],
            sink.schema if sink is not None else None,
            STAGE_MAPPING,
            f"stream_maps expression failed on this record ({type(exc).__name__}: {detail})",
        )

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        self._one_message(self._process_state, message_dict)

    def _process_state(self, message_dict: dict[str, Any]) -> None:
        super()._process_state_message(message_dict)
        self.pipeline.state_received(message_dict["value"])  # may send batches, wait for some

    def _one_message(
        self, process: Callable[[dict[str, Any]], None], message_dict: dict[str, Any]
    ) -> None:
        """Process one message; a termination signal meanwhile takes effect once it is done,
        so batches and checkpoints are never drained half-updated."""
        self._in_message = True
        try:
            with self._message_lock:
                if self.quiet_input.failure is not None:
                    raise self.quiet_input.failure
                process(message_dict)
        finally:
            self._in_message = False
        if self._pending_signal is not None:
            signum, self._pending_signal = self._pending_signal, None
            self._handle_termination(signum, None)

    def _reject_line(self, line_number: int, raw: str, stage: str, reason: str) -> None:
        with self._message_lock:
            self.pipeline.reject_line(line_number, raw, stage, reason)

    def _write_state_message(self, state: object) -> None:
        """Write STATE to stdout exactly as the tap wrote it, skipping a repeat of the last line.

        The reader keeps a STATE's value as its JSON text (msgspec.Raw): numbers of any size or
        precision go out as they came in (the SDK's json.dumps fails on Decimals).
        """
        if self.pipeline.nothing_matched:
            return  # the run fails at its end (a misnamed stream entry): it reruns from here
        if isinstance(state, msgspec.Raw):
            line = bytes(state).decode("utf-8", errors="surrogateescape")
        else:
            line = simplejson.dumps(state, use_decimal=True, default=str)
        if line != self._last_state_line:
            self._last_state_line = line
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM / SIGINT (an orchestrator cancelling the run): deliver what is batched,
        write STATE, log the summary and exit 0 (1 if that delivery fails).

        A signal that arrives while a message is being processed (or the end of input is
        being delivered) takes effect once that is done. A second signal stops at once,
        without STATE past what is unsent.
        """
        if "pipeline" not in vars(self):  # still starting: nothing read, nothing to deliver
            sys.exit(0)
        if self._terminating or self._pending_signal is not None:
            self.pipeline.uploader.stop()
            self.fail(f"Received signal {signum} again: stopping now.")
        if self._in_message:
            self._pending_signal = signum
            self.logger.info("Received signal %d: stopping after the message in hand.", signum)
            return
        self._terminating = True
        self.logger.info("Received signal %d: delivering what is batched, then stopping.", signum)
        try:
            self.process_endofpipe()
        except (DeliveryError, RunFailed) as exc:
            self.fail(str(exc))
        logging.shutdown()
        sys.exit(0)

    def process_endofpipe(self) -> None:
        """Send what is left, then log the run summary (a signal meanwhile waits for it)."""
        self._in_message = True
        self.quiet_input.stop()
        if self.quiet_input.failure is not None:
            raise self.quiet_input.failure
        try:
            super().process_endofpipe()
            self.finish()
        finally:
            self._in_message = False
        self._pending_signal = None  # the run ends here anyway

    def _metric(self, metric: str, value: int, **tags: str) -> None:
        """One counter, in the shape of the SDK's METRIC lines (log-based dashboards read them)."""
        point = {"type": "counter", "metric": metric, "value": value, "tags": tags}
        self.logger.info("METRIC: %s", json.dumps(point))

    def finish(self) -> None:
        """Log the summary line and close files and connections."""
        account = self.pipeline.account
        self.logger.info(account.summary_line())
        for stream, outcome, count in account.counts():
            self._metric("capi_records", count, stream=stream, outcome=outcome)
        coverage = self.pipeline.coverage
        for line in coverage.lines():
            self.logger.info("%s", line)
        for stream, kind, count in coverage.metrics():
            self._metric("capi_match_coverage", count, stream=stream, identifier=kind)
        arrived = [stream for stream in account.outcomes if stream != "(input)"]
        for line in unmatched_entries(self.pipeline.mappings, arrived):
            self.logger.warning("%s.", line)
        if self.pipeline.nothing_matched:
            self.fail(
                f"{account.total(SKIPPED_STREAM)} records arrived and none matched an entry "
                "under `streams` (see above); no STATE was written. Name the entries as the tap "
                "names its streams, or set allow_unmatched_streams: true."
            )
        rejected = account.total(REJECTED)
        if rejected and not self.pipeline.settings.dead_letter_path:
            self.logger.warning(
                "%d records were rejected; set dead_letter_path to keep them for replay.",
                rejected,
            )
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
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        if test:
            uploader = target.pipeline.uploader
            works, line = check_credentials(uploader.client, integration_source(target.config))
            print(line)
            uploader.close()
            sys.exit(0 if works else 1)
        try:
            target.pipeline.open_dead_letters(_input_stat(file_input))
            if target.pipeline.uploader.request_log is not None:
                target.pipeline.uploader.request_log.open()
            target.quiet_input.start()
            target.listen(file_input)
        except (DeliveryError, RunFailed, DeadLetterError, RequestLogError) as exc:
            target.fail(str(exc))
        except (
            BadLine,
            InvalidInputLine,
            RecordsWithoutSchemaException,
            MissingKeyPropertiesError,
        ) as exc:  # on_rejected: fail
            target.fail(f"Bad input (on_rejected is 'fail'): {exc}")
        except Exception as exc:  # a bug: say so plainly; the traceback is at DEBUG level
            cls.logger.debug("Unexpected error", exc_info=True)
            target.fail(
                f"Unexpected error ({type(exc).__name__}: {exc}). This is a bug in "
                "target-openai-capi: please report it with the log (LOGLEVEL=DEBUG)."
            )

    def fail(self, message: str) -> None:
        """Stop the run: log why and what was delivered, exit 1 without STATE past the failure."""
        self.quiet_input.stop()
        self.pipeline.close_dead_letters()
        self.logger.error("%s", message)
        self.logger.error(
            "Stopped. No STATE was written past the last delivered records: "
            "rerun with the last STATE to resume."
        )
        self.logger.info(self.pipeline.account.summary_line())
        logging.shutdown()
        sys.exit(1)
