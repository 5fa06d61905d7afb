"""The schema verdict on one record, before it is mapped: the same in the sink (sink.py) and in
a worker process (parallel/prepared.py), so a record is rejected with the same words either way.

Pure functions: a record and a compiled check in, a reason or a Rejection out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastjsonschema

from target_openai_capi.pipeline.accounting import STAGE_SCHEMA
from target_openai_capi.pipeline.events import Rejection
from target_openai_capi.reading.envelope import SDC_METADATA


def fast_schema_problem(validate: Callable[[Any], Any], record: Mapping[str, Any]) -> str | None:
    """What fastjsonschema's compiled `validate` finds wrong with the record, in words that name
    the field, not its value; None when it passes."""
    try:
        validate(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _in_order(exc.message.replace("data", "record", 1))
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        # A rule of the tap's schema the check cannot apply to this record's values: the
        # record is rejected with that reason, not the run stopped at it on every rerun.
        return CANNOT_APPLY.format(type(exc).__name__)
    return None


CANNOT_APPLY = "the stream's SCHEMA could not be applied to the record ({})"


# fastjsonschema names the properties `additionalProperties: false` refuses as a Python set,
# whose order changes from one process to the next: the same record got another reason each run.
_UNEXPECTED = re.compile(r"must not contain (\{.*\}) properties$", re.DOTALL)


def _in_order(message: str) -> str:
    """The message with such a set of names written in sorted order."""
    found = _UNEXPECTED.search(message)
    if found is None:
        return message
    try:
        names = ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return message
    if not isinstance(names, set):
        return message
    listed = "{" + ", ".join(repr(name) for name in sorted(names, key=str)) + "}"
    return message[: found.start(1)] + listed + message[found.end(1) :]


def schema_rejection(problem: Exception) -> Rejection:
    """A record its stream's schema refuses (`problem`: the SDK's InvalidRecord)."""
    return Rejection(STAGE_SCHEMA, f"record does not match its schema: {problem}")


def fast_schema_rejection(reason: str, record: dict[str, Any]) -> Rejection:
    """schema_rejection for a `fast_schema_problem` reason, as the sink's validator words it.
    (The SDK is imported here, at a first rejection, not with the module: a worker started as a
    new Python would spend ~0.6 s importing it.)"""
    from singer_sdk.exceptions import InvalidRecord

    return schema_rejection(InvalidRecord(reason, record))


LACKS_KEY_PROPERTIES = "record lacks key properties"


def key_rejection(record: Mapping[str, Any], key_properties: Sequence[str]) -> Rejection | None:
    """A record without one of its stream's key properties (read for its event id). Tap
    metadata (SDC_METADATA) is taken out of a record before it is checked, and is never part of
    an event id: a key property of it is not asked for."""
    missing = [name for name in key_properties if name not in record and name not in SDC_METADATA]
    if missing:
        return Rejection(STAGE_SCHEMA, f"{LACKS_KEY_PROPERTIES} {missing}")
    return None
