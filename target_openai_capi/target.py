"""The target: declares its settings and wires the Singer message flow to the pipeline."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import Sink

from target_openai_capi.accounting import REJECTED
from target_openai_capi.config import API_KEY_PREFIX, CONFIG_SCHEMA, config_problems
from target_openai_capi.delivery import DeliveryError
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
    uploader_from_config,
)
from target_openai_capi.reader import (
    RECORD_CHECKED_KEY,
    RECORD_LINE_KEY,
    RECORD_SOURCE_KEY,
    BadLine,
    TolerantReader,
)
from target_openai_capi.sink import ConversionsSink


class TargetOpenAICapi(Target):
    """Delivers Singer records as conversion events to OpenAI's Conversions API."""

    name = "target-openai-capi"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ConversionsSink
    message_reader_class = TolerantReader
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
        self.pipeline = Pipeline(
            PipelineSettings.from_config(self.config),
            self._compile_streams(),
            uploader_from_config(self.config),
            emit_state=self._write_state_message,
            logger=self.logger,
        )
        reader = self.message_reader
        if isinstance(reader, TolerantReader):
            reader.on_bad_line = self.pipeline.reject_line
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
        errors = super()._validate_config(raise_errors=False)
        if not errors:
            errors = config_problems(self.config)
        key = str(self._config.get("api_key") or "")
        if key:
            errors = [e.replace(key, "***") for e in errors]
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
        super()._process_schema_message(message_dict)
        # Also streams whose sink this SCHEMA replaced through a stream map's alias.
        for stream in {message_dict["stream"], *self._decoding_chosen_for}:
            self._choose_record_decoder(stream)

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
        super()._process_record_message(message_dict)
        if self.pipeline.checkpoints.numbered == numbered:
            # No sink saw it: a stream map dropped the record.
            self.pipeline.filtered_by_stream_map(message_dict["stream"])

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
            process(message_dict)
        finally:
            self._in_message = False
        if self._pending_signal is not None:
            signum, self._pending_signal = self._pending_signal, None
            self._handle_termination(signum, None)

    def _write_state_message(self, state: dict[str, Any]) -> None:
        """Write STATE to stdout, skipping a repeat of the line written last."""
        line = repr(state)
        if line != self._last_state_line:
            self._last_state_line = line
            super()._write_state_message(state)

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
        try:
            super().process_endofpipe()
            self.finish()
        finally:
            self._in_message = False
        self._pending_signal = None  # the run ends here anyway

    def finish(self) -> None:
        """Log the summary line and close files and connections."""
        account = self.pipeline.account
        self.logger.info(account.summary_line())
        # Same shape as the SDK's METRIC lines, so log-based dashboards can read them.
        for stream, outcome, count in account.counts():
            point = {
                "type": "counter",
                "metric": "capi_records",
                "value": count,
                "tags": {"stream": stream, "outcome": outcome},
            }
            self.logger.info("METRIC: %s", json.dumps(point))
        rejected = account.total(REJECTED)
        if rejected and not self.pipeline.settings.dead_letter_path:
            self.logger.warning(
                "%d records were rejected; set dead_letter_path to keep them for replay.",
                rejected,
            )
        self.pipeline.close()

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: IO[str] | None = None,
    ) -> None:
        """Run the target; a fatal error ends it with one clear message and exit code 1."""
        super(Target, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        try:
            target.listen(file_input)
        except (DeliveryError, RunFailed) as exc:
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
        self.logger.error("%s", message)
        self.logger.error(
            "Stopped. No STATE was written past the last delivered records: "
            "rerun with the last STATE to resume."
        )
        self.logger.info(self.pipeline.account.summary_line())
        logging.shutdown()
        sys.exit(1)
