"""Parallel pipelines: two target processes at once into one sandbox (docs/scaling.md).

Stable event ids make partitioned runs safe to run side by side: disjoint partitions store
every event once, and overlapping partitions store the overlap once too (the API deduplicates
on pixel, type and id), however the two processes interleave.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD, now_ms, record, schema

STREAM = "conversions"
PROPERTIES = {
    "id": {"type": "string"},
    "type": {"type": "string"},
    "timestamp_ms": {"type": "integer"},
    "amount": {"type": "number"},
    "currency": {"type": "string"},
}


def partition(ids: range, base_ms: int) -> bytes:
    """A Singer stream of order_created rows with the given ids (warehouse-shaped)."""
    lines = [schema(STREAM, PROPERTIES, ["id"])]
    for n in ids:
        row = {
            "id": f"ord_{n}",
            "type": "order_created",
            "timestamp_ms": base_ms - n * 1000,
            "amount": 10 + n % 7,
            "currency": "USD",
        }
        lines.append(record(STREAM, row))
    lines.append(json.dumps({"type": "STATE", "value": {"partition_last_id": ids[-1]}}))
    return ("\n".join(lines) + "\n").encode()


def run_together(sandbox, tmp_path: Path, inputs: list[bytes]) -> list[tuple[int, str, str]]:
    """Start one target process per input at once, feed them, and wait for all of them."""
    config = {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "batch_size": 50,  # several requests per process, so their requests interleave
        "max_concurrent_requests": 2,
        "streams": {STREAM: {}},
    }
    procs = []
    for index, data in enumerate(inputs):
        path = tmp_path / f"config-{index}.json"
        path.write_text(json.dumps(config))
        proc = subprocess.Popen(
            [*TARGET_CMD, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        procs.append((proc, data))
    results = []
    for proc, data in procs:
        # The other processes are already running: this only feeds stdin and drains the pipes.
        out, err = proc.communicate(data, timeout=120)
        results.append((proc.returncode, out.decode(), err.decode()))
    return results


def stored_ids(sandbox) -> list[str]:
    return [event["id"] for event in sandbox.events(PIXEL_ID)]


@pytest.mark.parametrize(
    ("ranges", "overlap"),
    [
        pytest.param([range(0, 300), range(300, 600)], 0, id="disjoint"),
        pytest.param([range(0, 400), range(200, 600)], 200, id="overlapping"),
        pytest.param([range(0, 600), range(0, 600), range(0, 600)], 1200, id="same-three-times"),
    ],
)
def test_parallel_partitions_store_every_event_once(sandbox, tmp_path, ranges, overlap):
    base = now_ms() - 60_000
    results = run_together(sandbox, tmp_path, [partition(r, base) for r in ranges])

    for (returncode, stdout, stderr), ids_sent in zip(results, ranges, strict=True):
        assert returncode == 0, stderr
        assert "Traceback" not in stderr
        # Each process wrote its own STATE once its events were accepted.
        assert json.loads(stdout.splitlines()[-1]) == {"partition_last_id": ids_sent[-1]}
    ids = stored_ids(sandbox)
    assert sorted(ids) == sorted(f"ord_{n}" for n in range(600))  # each event exactly once
    stats = sandbox.stats()
    assert stats["accepted"] == 600
    assert stats["duplicates"] == overlap
    sent = sum(
        int(err.split("Run summary: ")[1].split(" sent=")[1].split()[0]) for *_, err in results
    )
    assert sent == sum(len(r) for r in ranges)  # every process sent its whole partition


def test_a_rerun_of_a_finished_partition_changes_nothing(sandbox, tmp_path):
    data = partition(range(0, 100), now_ms() - 60_000)
    first = run_together(sandbox, tmp_path, [data])
    assert first[0][0] == 0, first[0][2]
    before: dict[str, Any] = {e["id"]: e for e in sandbox.events(PIXEL_ID)}

    again = run_together(sandbox, tmp_path, [data])
    assert again[0][0] == 0, again[0][2]
    assert {e["id"]: e for e in sandbox.events(PIXEL_ID)} == before
    assert sandbox.stats()["duplicates"] == 100
