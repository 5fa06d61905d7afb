"""The framework floor: a singer-sdk target whose BatchSink does nothing with its records.

What the Singer SDK itself costs on a stream (reading, record validation unless
`validate_records: false`, date-time parsing, batching, STATE), with the SDK's defaults:
the cookiecutter template minus every line of real work.

    python benchmarks/framework_floor.py --config config.json < stream.singer
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink


class NullSink(BatchSink):
    """Accepts every record and every batch, and does nothing with them."""

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Drop the record."""

    def process_batch(self, context: dict[str, Any]) -> None:
        """Nothing to write."""


class NullTarget(Target):
    """A do-nothing target with the SDK's default reader and settings."""

    name = "target-null"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NullSink


if __name__ == "__main__":
    NullTarget.cli()
