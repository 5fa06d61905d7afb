"""Worker processes (parallel/): a run that prepares records in them sends, rejects, counts and
checkpoints exactly what a run in one process does; a worker that dies costs nothing.

The target starts its workers while it reads the first lines, so these tests play a tap that
pauses after its first records (as a tap does while it pages through an API): by the time the
rest arrives the workers are ready, and the summary line says how many records they prepared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from conftest import API_KEY, DAY_MS, PIXEL_ID
from support import (
    TARGET_CMD,
    TargetRun,
    iso_minutes_ago,
    record,
    run_target,
    schema,
    state,
    target_config,
)

from target_openai_capi.pipeline.events import Rejection
from target_openai_capi.reading.envelope import record_json_in_line
from target_openai_capi.reading.line_chunks import CHUNK_BYTES, LineChunks
from target_openai_capi.sandbox import start_sandbox

STREAM = "orders"
PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "created": {"type": "string"},
    "total": {"type": "number"},
    "currency": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "test": {"type": "boolean"},
    "channel": {"type": "string"},
    "page": {"type": "string"},
    "items": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        },
    },
}
MAPPING = {
    "event_type": "order_created",
    "filter": "!test",
    "fields": {
        "id": "id",
        "timestamp": "created",
        "amount": "total",
        "currency": "currency",
        "email": "email",
        "contents": "items[].{id: sku, quantity: qty}",
        "action_source": "channel || 'physical_store'",
        "source_url": "page",
    },
}
PREPARED = re.compile(
    r"Worker processes: (\d+)(?:, stopped \(said above\))?; ([\d,]+) of ([\d,]+) records"
)


def order(n: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"o{n}",
        "created": iso_minutes_ago(10 + n % 30),
        "total": round(n % 90 + (n % 100) / 100, 2),
        "currency": ["USD", "EUR", "JPY"][n % 3],
        "email": f" Buyer{n % 40}@Example.com ",
        "test": False,
        "items": [{"sku": f"sku-{n % 7}", "qty": 1 + n % 3}],
    }
    row.update(changes)
    return row


def mixed_input(count: int) -> tuple[list[str], list[str]]:
    """(head, tail): every kind of line the target meets, most of them in the tail."""
    head = [schema(STREAM, PROPERTIES, ["id"]), schema("unmapped", {"id": {"type": "integer"}})]
    head += [record(STREAM, order(n)) for n in range(5)]
    tail: list[str] = []
    for n in range(5, count):
        if n % 97 == 0:
            tail.append(state({"bookmarks": {STREAM: {"n": n}}}))
        kind = n % 23
        if kind == 1:
            row = order(n, test=True)  # filtered
        elif kind == 2:
            row = order(n)
            del row["id"]  # no key property: rejected at schema
        elif kind == 3:
            row = order(n, total="not a number")  # schema
        elif kind == 4:
            row = order(n, currency="ZZZ")  # mapping: not a currency
        elif kind == 5:
            row = order(n, created=iso_minutes_ago(9 * 24 * 60))  # older than the window
        elif kind == 6:
            row = order(n - 6)  # the same event again: a duplicate
        elif kind == 7:
            row = order(n, email="not an email")  # sent without it, with a note
        elif kind == 8:
            row = order(n, _sdc_extracted_at="2026-01-01T00:00:00Z")  # tap metadata
        elif kind == 9:
            row = order(n, created=iso_minutes_ago(120))  # the sandbox finds it stale
        elif kind == 10:
            row = order(n, channel="web")  # the contract: a web event needs its page
        else:
            row = order(n)
        tail.append(record(STREAM, row))
        if n % 211 == 0:
            tail += ["", "{not json", record("unmapped", {"id": n})]
        if n % 307 == 0:
            tail += hostile_lines(n)
        if n == count // 2:  # a new SCHEMA mid-stream: the plan changes under chunks in flight,
            # and records after it come out otherwise (their totals are no longer strings)
            tail.append(schema(STREAM, {**PROPERTIES, "total": {"type": "string"}}, ["id"]))
        if n == count // 2 + 400:
            tail.append(schema(STREAM, PROPERTIES, ["id"]))
    tail.append(state({"bookmarks": {STREAM: {"n": count}}}))
    return head, tail


def start_target(
    config: dict[str, Any], head: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The CLI, fed `head` so far."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(("\n".join(head) + "\n").encode())
    proc.stdin.flush()
    return proc


def hostile_lines(n: int) -> list[str]:
    """Lines of the orders stream a worker must leave to the main process, or handle alike."""
    good = json.loads(record(STREAM, order(n + 100_000)))
    deep = "[" * 5000 + "]" * 5000
    return [
        record(STREAM, order(n + 200_000, email="caf\udcff@example.com")),  # a lone surrogate
        json.dumps(good).replace('"total": ', '"total": 1e999999, "x": '),  # beyond a Decimal
        json.dumps({**good, "record": {**good["record"], "items": deep}}).replace(
            f'"{deep}"', deep
        ),  # nested too deeply
        json.dumps({"type": "RECORD", "stream": STREAM, "record": [1, 2]}),  # not an object
        json.dumps({"type": "RECORD", "stream": 7, "record": {"id": "x"}}),  # stream not text
        json.dumps({"type": "RECORD", "stream": STREAM}),  # no record
        record(STREAM, order(n + 300_000, id="x" * 300)),  # id longer than the API takes
        record(STREAM, order(n + 400_000, items=[{"sku": "a", "qty": -1}])),  # negative
        record(STREAM, order(n + 500_000, created="2026-13-45T99:00:00Z")),  # no such date
        record(STREAM, {**order(n + 600_000), "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
        "\x00" * 10,
        '{"type": "RECORD", "stream": "orders", "record": {"id": "dup", "id": "dup2"}}',
    ]


def wait_until_idle(workers: list[psutil.Process], timeout: float = 60) -> None:
    """Until each worker has used no CPU for half a second (its imports done: it waits)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        last = -1.0
        while time.monotonic() < deadline:
            times = worker.cpu_times()
            used = times.user + times.system
            if used == last:
                break
            last = used
            time.sleep(0.5)


# A sitecustomize that makes the target start its workers as new Python processes, as it does
# where it cannot fork them (macOS, Windows): on Linux it forks them (parallel/pool.py).
SPAWN_WORKERS = "import target_openai_capi.parallel.pool as pool\npool.FORK_WORKERS = False\n"


def hooked_env(tmp_path: Path, sitecustomize: str) -> dict[str, str]:
    """The environment for a CLI whose Python runs `sitecustomize` first."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(sitecustomize)
    return {**os.environ, "PYTHONPATH": f"{hook}:{os.environ.get('PYTHONPATH', '')}"}


def run_with_pause(
    config: dict[str, Any],
    head: list[str],
    tail: list[str],
    tmp_path: Path,
    *,
    kill: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str, list[list[str]]]:
    """The CLI fed `head`, then (once its worker processes run) `tail`; with `kill`, every
    worker is killed before the tail is written. Also returns the workers' command lines."""
    proc = start_target(config, head, tmp_path, env)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while len(parent.children()) < config["worker_processes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = parent.children()
    assert len(workers) == config["worker_processes"]
    wait_until_idle(workers)  # ready, and waiting for their first chunk
    commands = [worker.cmdline() for worker in workers]
    if kill:
        for worker in workers:
            os.kill(worker.pid, 9)
        psutil.wait_procs(workers, timeout=10)
    stdout, stderr = proc.communicate(("\n".join(tail) + "\n").encode(), timeout=180)
    return proc.returncode, stdout.decode(), stderr.decode(), commands


def dead_letters(path: Path) -> list[dict[str, Any]]:
    """The dead-letter file's lines, without the time of each rejection."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        line.get("dead_letter", {}).pop("rejected_at", None)
    return lines


def summary(stderr: str) -> list[str]:
    return [line.split("| ")[-1] for line in stderr.splitlines() if "received=" in line]


@pytest.fixture
def stale_after_an_hour():
    """Two sandboxes whose clocks run 7 days minus 1 hour ahead: the API refuses events older
    than an hour that the target's own window lets through (dead letters from the API stage)."""
    skew = 7 * DAY_MS - 3600 * 1000

    def clock() -> int:
        return int(time.time() * 1000) + skew

    with (
        start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}, now_ms=clock) as one,
        start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}, now_ms=clock) as other,
    ):
        yield one, other


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_run_with_workers_does_exactly_what_a_run_in_one_process_does(
    stale_after_an_hour, tmp_path, start
):
    alone_api, workers_api = stale_after_an_hour
    head, tail = mixed_input(3000)
    settings = {"batch_size": 100, "max_concurrent_requests": 1, "default_phone_region": "US"}
    (tmp_path / "alone").mkdir()
    (tmp_path / "workers").mkdir()
    alone = run_target(
        target_config(
            alone_api.url, tmp_path / "alone", {STREAM: MAPPING}, worker_processes=0, **settings
        ),
        head + tail,
        tmp_path / "alone",
    )
    code, stdout, stderr, commands = run_with_pause(
        target_config(
            workers_api.url, tmp_path / "workers", {STREAM: MAPPING}, worker_processes=2, **settings
        ),
        head,
        tail,
        tmp_path / "workers",
        env=hooked_env(tmp_path, SPAWN_WORKERS) if start == "spawn" else None,
    )
    assert alone.returncode == 0, alone.output
    assert code == 0, stderr
    # Forked workers run the main process's command; spawned ones their own module.
    spawned = ["target_openai_capi.parallel.worker" in command for command in commands]
    assert spawned == [start == "spawn"] * 2, commands
    match = PREPARED.search(stderr)
    assert match, stderr
    assert match.group(1) == "2"
    # Records of chunks in flight when the SCHEMA changed go the main process's way: most of
    # the rest went through a worker.
    assert int(match.group(2).replace(",", "")) > 500
    assert "Worker processes" not in alone.stderr
    # The same events, in the same requests, the same STATE, dead letters and counts.
    assert workers_api.events() == alone_api.events()
    assert len(alone_api.events()) > 1000
    assert stdout == alone.stdout
    assert len(alone.states) > 5
    assert alone.states[-1] == {"bookmarks": {STREAM: {"n": 3000}}}
    assert dead_letters(tmp_path / "workers" / "dead.jsonl") == dead_letters(
        tmp_path / "alone" / "dead.jsonl"
    )
    rejected = dead_letters(tmp_path / "alone" / "dead.jsonl")
    stages = {line["dead_letter"]["stage"] for line in rejected if "dead_letter" in line}
    assert stages == {"input", "schema", "mapping", "validation", "window", "api"}
    assert summary(stderr) == summary(alone.stderr)
    assert "filtered=" in summary(stderr)[0]
    assert "duplicate=" in summary(stderr)[0]
    notes = [line.split("| ")[-1] for line in stderr.splitlines() if "not an email" in line]
    assert notes
    assert notes == [
        line.split("| ")[-1] for line in alone.stderr.splitlines() if "not an email" in line
    ]


def test_records_rejected_at_every_stage_before_delivery_are_rejected_in_workers(sandbox, tmp_path):
    """The workers find why a record is rejected (its schema, a key property missing, the
    mapping, the contract, the window; explaining an event the contract refuses is the slowest
    step of all), and the main process dead-letters it from the line it kept, as it does a
    record it rejected itself: a stream of bad records is not read on one core."""
    head = [schema(STREAM, PROPERTIES, ["id"]), record(STREAM, order(0))]
    tail = []
    for n in range(1, 601):
        if n % 5 == 0:
            row = order(n, channel="web")  # the contract: a web event needs its page
        elif n % 5 == 1:
            row = order(n, currency="ZZZ")  # the mapping: not a currency
        elif n % 5 == 2:
            row = order(n, created=iso_minutes_ago(9 * 24 * 60))  # older than the window
        elif n % 5 == 3:
            row = order(n, total="not a number")  # its schema: a number
        else:
            row = order(n)
            del row["id"]  # its key property
        tail.append(record(STREAM, row))
    # A property the mapping does not read holds a number beyond a Decimal: the record cannot
    # be decoded whole, and its dead letter still names its key.
    tail[0] = tail[0].replace('"test": false', '"test": false, "x": 1e9999999999999999999999')
    # One not shaped as read (a number for a string: decoded whole, then refused by its schema)
    # with an escape, a number form and a key twice: its dead letter is the record as it
    # arrived, with workers or without.
    unusual = '"test": false, "note": "caf\\u00e9", "big": 1.50e2, "big": 2'
    tail[2] = record(STREAM, order(3, currency=5)).replace('"test": false', unusual)
    tail.append(state({"bookmarks": {STREAM: {"n": 600}}}))
    alone, alone_events = run_alone(head + tail, tmp_path)
    stdout, stderr, prepared = run_with_workers(sandbox, head, tail, tmp_path)
    assert prepared == (601, 601)
    assert summary(stderr) == summary(alone.stderr)
    assert "rejected=600 " in summary(stderr)[0]
    assert stdout == alone.stdout
    assert sandbox.events() == alone_events
    assert len(alone_events) == 1
    letters = dead_letters(tmp_path / "workers" / "dead.jsonl")
    assert letters == dead_letters(tmp_path / "alone" / "dead.jsonl")
    reasons = [line["dead_letter"]["reason"] for line in letters if "dead_letter" in line]
    assert len(reasons) == 600
    assert "source_url: is required when action_source is 'web'" in reasons[4::5]
    assert reasons[7].startswith("record does not match its schema: ")
    assert "total" in reasons[7]
    assert reasons[2] == (
        "record does not match its schema: Record Message Validation Error: "
        "record.currency must be string"
    )
    assert reasons[3] == "record lacks key properties ['id']"
    ids = {line["record"].get("id") for line in letters[1:]}
    assert ids == {f"o{n}" for n in range(1, 601) if n % 5 != 4} | {None}
    assert letters[1]["dead_letter"]["key"] == {"id": "o1"}
    as_it_arrived = record_json_in_line(tail[2].encode())
    assert as_it_arrived is not None
    assert b"caf\\u00e9" in as_it_arrived
    for run in ("workers", "alone"):
        assert as_it_arrived in (tmp_path / run / "dead.jsonl").read_bytes(), run
    assert "1e9999999999999999999999" in (tmp_path / "workers" / "dead.jsonl").read_text()
    warnings = [line.split("| ")[-1] for line in stderr.splitlines() if "Rejected" in line]
    assert warnings == [
        line.split("| ")[-1] for line in alone.stderr.splitlines() if "Rejected" in line
    ]
    assert len(warnings) > 3


def test_a_schema_that_writes_nullable_columns_as_alternatives_is_read_in_workers(
    sandbox, tmp_path
):
    """`anyOf: [{type: null}, {...}]`, as singer-io and pipelinewise taps write a nullable
    column: the records are decoded at their read paths and prepared in the workers, as those
    of a schema with `type` lists are (their stream was decoded whole in the main process)."""
    nullable = {
        name: {"anyOf": [{"type": "null"}, spec], "description": name}
        for name, spec in PROPERTIES.items()
        if name != "id"
    }
    head = [schema(STREAM, {**PROPERTIES, **nullable}, ["id"]), record(STREAM, order(0))]
    tail = [record(STREAM, order(n)) for n in range(1, 400)]
    tail.append(record(STREAM, order(400, total="not a number")))
    alone, alone_events = run_alone(
        [schema(STREAM, PROPERTIES, ["id"]), *head[1:], *tail], tmp_path
    )
    _, stderr, prepared = run_with_workers(sandbox, head, tail, tmp_path)
    assert prepared == (401, 401)  # (the one its schema refuses too)
    assert sandbox.events() == alone_events
    assert len(alone_events) > 200
    assert summary(stderr) == summary(alone.stderr)
    assert "schema=1" in summary(stderr)[0]


def test_a_stream_keyed_by_tap_metadata_sends_its_records(sandbox, tmp_path):
    """A tap that keys its stream by `_sdc_sequence` (and requires it): tap metadata is taken
    out of each record before it is checked, as the SDK takes it out, so neither the key check
    nor the schema's `required` may ask for it. Every record was rejected ("lacks key
    properties"), with workers and without."""
    props = {**PROPERTIES, "_sdc_sequence": {"type": "integer"}}
    keyed = {"type": "SCHEMA", "stream": STREAM, "key_properties": ["id", "_sdc_sequence"]}
    keyed["schema"] = {"type": "object", "properties": props, "required": ["_sdc_sequence"]}
    rows = [{**order(n, currency="USD"), "_sdc_sequence": n + 1} for n in range(300)]
    head = [json.dumps(keyed), record(STREAM, rows[0])]
    tail = [record(STREAM, row) for row in rows[1:]]
    alone, alone_events = run_alone([*head, *tail], tmp_path)
    assert "received=300 sent=300" in summary(alone.stderr)[0], alone.stderr
    _, stderr, prepared = run_with_workers(sandbox, head, tail, tmp_path)
    assert prepared == (300, 300)
    assert sandbox.events() == alone_events
    assert len(alone_events) == 300
    assert summary(stderr) == summary(alone.stderr)


def run_with_workers(
    sandbox: Any, head: list[str], tail: list[str], tmp_path: Path
) -> tuple[str, str, tuple[int, int]]:
    """The CLI with two workers into `sandbox`, fed `head`, then `tail` once they run: its
    stdout and stderr, and (records prepared in the workers, records) from its summary."""
    (tmp_path / "workers").mkdir()
    config = target_config(sandbox.url, tmp_path / "workers", {STREAM: MAPPING}, worker_processes=2)
    code, stdout, stderr, _ = run_with_pause(config, head, tail, tmp_path / "workers")
    assert code == 0, stderr
    match = PREPARED.search(stderr)
    assert match, stderr
    counts = (int(match.group(2).replace(",", "")), int(match.group(3).replace(",", "")))
    return stdout, stderr, counts


def run_alone(lines: list[str], tmp_path: Path) -> tuple[TargetRun, list[dict[str, Any]]]:
    """The CLI without workers on `lines`, into a sandbox of its own: the run and the events."""
    (tmp_path / "alone").mkdir()
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as api:
        config = target_config(api.url, tmp_path / "alone", {STREAM: MAPPING}, worker_processes=0)
        run = run_target(config, lines, tmp_path / "alone")
        assert run.returncode == 0, run.output
        return run, api.events()


def test_workers_that_die_cost_nothing(sandbox, tmp_path):
    head, tail = mixed_input(800)
    alone, alone_events = run_alone(head + tail, tmp_path)
    (tmp_path / "killed").mkdir()
    config = target_config(sandbox.url, tmp_path / "killed", {STREAM: MAPPING}, worker_processes=2)
    code, stdout, stderr, _ = run_with_pause(config, head, tail, tmp_path / "killed", kill=True)
    assert code == 0, stderr
    assert "a worker process stopped" in stderr
    assert "the run goes on in one process" in stderr
    match = PREPARED.search(stderr)
    assert match, stderr
    # Only records of the head (the lines after its SCHEMA went to the workers); the tail came
    # after they were killed.
    assert int(match.group(2)) <= 5
    # Every record is accounted for, by the main process alone, as in a run without workers.
    assert summary(stderr) == summary(alone.stderr)
    assert stdout == alone.stdout
    assert json.loads(stdout.splitlines()[-1]) == {"bookmarks": {STREAM: {"n": 800}}}
    assert sandbox.events() == alone_events
    assert len(alone_events) > 150


# Workers that end before they are ready: forked ones (os.fork patched so that the child exits
# at once), and spawned ones (their Python ends before it runs the worker module).
# Each worker leaves a file named by its pid in $WORKER_DEATHS as it dies (the test waits for
# them: on a busy machine the target may take seconds to reach the start of its workers).
FORKED_WORKERS_DIE = """import os
_fork = os.fork
def fork():
    pid = _fork()
    if pid == 0:
        open(os.path.join(os.environ["WORKER_DEATHS"], str(os.getpid())), "w").close()
        os._exit(3)
    return pid
os.fork = fork
"""
SPAWNED_WORKERS_DIE = SPAWN_WORKERS + (
    "import os, sys\nif 'target_openai_capi.parallel.worker' in sys.orig_argv:\n"
    "    open(os.path.join(os.environ['WORKER_DEATHS'], str(os.getpid())), 'w').close()\n"
    "    os._exit(3)\n"
)


def _wait_for_workers_to_end(pid: int, deaths: Path) -> None:
    """Until a worker has died (its file in `deaths`: the target got as far as starting them)
    and none is alive: the tail is sent then, so the target has a chunk to find them gone
    with. (A forked pool may give up after the first death, before it forks the second.)"""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(deaths.iterdir()):
            try:
                children = psutil.Process(pid).children()
                alive = [c for c in children if c.status() != psutil.STATUS_ZOMBIE]
            except psutil.NoSuchProcess:
                alive = []
            if not alive:
                return
        time.sleep(0.05)
    raise AssertionError(f"the workers did not die within 60 s: {list(deaths.iterdir())}")


@pytest.mark.parametrize("hook", [FORKED_WORKERS_DIE, SPAWNED_WORKERS_DIE], ids=["fork", "spawn"])
def test_workers_that_cannot_start_cost_nothing(sandbox, tmp_path, hook):
    """A worker that dies at start-up: the run goes on in one process and says so."""
    head, tail = mixed_input(400)
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    deaths = tmp_path / "deaths"
    deaths.mkdir()
    env = {**hooked_env(tmp_path, hook), "WORKER_DEATHS": str(deaths)}
    proc = start_target(config, head, tmp_path, env)
    _wait_for_workers_to_end(proc.pid, deaths)
    stdout, stderr = proc.communicate(("\n".join(tail) + "\n").encode(), timeout=120)
    assert proc.returncode == 0, stderr.decode()
    text = stderr.decode()
    # Found before a chunk went to them, or (forked ones take chunks at once) when its answer
    # was due: either way the warning says they did not start.
    assert re.search(
        r"(no worker process could start|a worker process could not start \(exit code 3\)): "
        r"the run goes on in one process",
        text,
    ), text
    alone, alone_events = run_alone(head + tail, tmp_path)
    assert summary(text) == summary(alone.stderr)
    assert stdout.decode() == alone.stdout
    assert json.loads(stdout.decode().splitlines()[-1]) == {"bookmarks": {STREAM: {"n": 400}}}
    assert sandbox.events() == alone_events


def test_a_fork_that_fails_costs_nothing(sandbox, tmp_path):
    """No process can be forked (the system is out of processes or memory)."""
    hook = (
        "import os\n"
        "def fork():\n"
        "    raise BlockingIOError(11, 'Resource temporarily unavailable')\n"
        "os.fork = fork\n"
    )
    head, tail = mixed_input(300)
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    proc = start_target(config, head, tmp_path, hooked_env(tmp_path, hook))
    stdout, stderr = proc.communicate(("\n".join(tail) + "\n").encode(), timeout=120)
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert "could not start a worker process ([Errno 11] Resource temporarily unavailable)" in text
    assert "the run goes on in one process" in text
    # (the count said "Worker processes: 2; 0 of 301 ..." as if two had run)
    assert re.search(
        r"Worker processes: 2, stopped \(said above\); 0 of \d+ records were decoded, checked "
        r"and mapped in them, the others in the main process\.",
        text,
    )
    alone, alone_events = run_alone(head + tail, tmp_path)
    assert summary(text) == summary(alone.stderr)
    assert stdout.decode() == alone.stdout
    assert sandbox.events() == alone_events


def test_workers_that_run_out_of_descriptors_leave_none_open(sandbox, tmp_path):
    """`ulimit -n 20` with eight workers: the pool gave up at the worker that could not start,
    but the pipes (and processes) of those that did stayed open, so every connection to the
    API failed for want of a descriptor: nothing sent, exit 1 after retrying."""
    head, tail = mixed_input(300)
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=8)
    config |= {"max_attempts": 2, "batch_size": 10}
    done = run_target(config, head + tail, tmp_path, limits=["--nofile=20:20"])
    text = done.stderr
    assert done.returncode == 0, text
    assert "could not start a worker process" in text
    alone, alone_events = run_alone(head + tail, tmp_path)
    # (the same records settled alike; in batches of 10, more requests)
    assert summary(text)[0].split("; ", 1)[1] == summary(alone.stderr)[0].split("; ", 1)[1]

    def by_id(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(events, key=lambda event: event["id"])  # (4 in flight: any order)

    assert by_id(sandbox.events()) == by_id(alone_events)


# --- reading chunks of whole lines -------------------------------------------------------


def chunks_of(data: bytes, pieces: int = 1) -> list[bytes]:
    """The lines LineChunks gives for `data` written to a pipe in `pieces` writes."""
    read_end, write_end = os.pipe()
    step = max(1, len(data) // pieces)
    writer = subprocess.Popen(
        [
            "python3",
            "-c",
            "import os,sys\n"
            f"data=sys.stdin.buffer.read()\nfor i in range(0,len(data),{step}):\n"
            "    os.write(1,data[i:i+" + str(step) + "])",
        ],
        stdin=subprocess.PIPE,
        stdout=write_end,
    )
    os.close(write_end)
    assert writer.stdin is not None
    writer.stdin.write(data)
    writer.stdin.close()
    chunks = LineChunks(read_end)
    lines: list[bytes] = []
    while (chunk := chunks.read()) is not None:
        assert chunk.endswith(b"\n")
        lines += chunk.split(b"\n")[:-1]
    os.close(read_end)
    writer.wait()
    return lines


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a\nb\n",
        b"a\nb",  # the last line has no newline
        b"\n\n \r\n",
        b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n",  # a byte order mark first (only there, it is dropped)
        b"x" * (3 * CHUNK_BYTES) + b"\ny\n",  # a line longer than a chunk
        b"".join(b"line %d\r\n" % n for n in range(50_000)),
    ],
    ids=["empty", "lines", "no-final-newline", "blank", "bom", "long-line", "many"],
)
@pytest.mark.parametrize("pieces", [1, 7, 1000])
def test_chunks_hold_the_lines_that_reading_the_file_gives(data, pieces, tmp_path):
    path = tmp_path / "input"
    path.write_bytes(data)
    with path.open("rb") as file:
        expected = [line.removesuffix(b"\n") for line in file]
    if expected:
        expected[0] = expected[0].removeprefix(b"\xef\xbb\xbf")
    assert chunks_of(data, pieces) == expected


@pytest.mark.parametrize("pieces", [1, 40])
@pytest.mark.parametrize("last", [True, False], ids=["last line", "lines after it"])
def test_a_line_over_the_limit_is_skipped_to_its_end_and_marked(pieces, last):
    """Never held much beyond the limit (a broken tap's endless line took gigabytes): what
    stands for it is a mark with its length and first bytes (or, when its end came in the read
    that passed the limit, the line itself), the lines around it as they were."""
    from target_openai_capi.reading.line_chunks import MAX_LINE_BYTES, overlong_line

    # (Longer than the limit by more than a read: LineChunks must skip it, not hold it.)
    long_line = b'{"type": "RECORD", "x": "' + b"y" * (MAX_LINE_BYTES + 3 * CHUNK_BYTES) + b'"}'
    after = b"" if last else b"b\nc\n"
    lines = chunks_of(b"a\n" + long_line + (b"" if last else b"\n") + after, pieces)
    assert lines[0] == b"a"
    assert lines[2:] == ([] if last else [b"b", b"c"])
    assert len(lines[1]) < 70_000  # the mark, not the line
    mark = overlong_line(lines[1])
    assert mark is not None
    size, head = mark
    assert size == len(long_line)
    assert head == long_line[:65_536]
    assert overlong_line(b"a") is None


def test_a_prepared_record_knows_where_its_line_is_in_the_chunk():
    from target_openai_capi.parallel.prepared import PlanSpec, RecordPreparer
    from target_openai_capi.reading.line_chunks import split_lines

    preparer = RecordPreparer()
    spec = PlanSpec(
        stream=STREAM,
        entry=MAPPING,
        key_properties=("id",),
        reads={**compile_mapping_reads(), "id": True},
        decoding_schema=None,
        validator_schema=None,
        sdc_possible=False,
        user_field_style="plural",
        default_phone_region=None,
    )
    preparer.set_plan(STREAM, 7, spec)
    head, tail = mixed_input(300)
    chunk = ("\n".join(head[2:] + tail) + "\n").encode()
    results = preparer.prepare_all(split_lines(chunk))
    lines = split_lines(chunk)
    prepared = [(r, line) for r, line in zip(results, lines, strict=True) if r is not None]
    assert len(prepared) > 150
    for result, line in prepared:
        assert chunk[result.start : result.end] == line
        assert result.version == 7
    kinds = {result.kind for result, _ in prepared}
    assert kinds == {"built", "filtered", "rejected"}
    stages = {result.rejection.stage for result, _ in prepared if result.rejection is not None}
    assert stages == {"schema", "mapping", "validation", "window"}
    # A record without its key property: refused before mapping, in the sink's words.
    keyless = [result for result, line in prepared if b'"id"' not in line]
    assert keyless
    for result in keyless:
        assert result.rejection == Rejection("schema", "record lacks key properties ['id']")
    # Lines it does not answer: STATE, blank, not JSON, other streams.
    unanswered = [line for r, line in zip(results, lines, strict=True) if r is None]
    assert not any(b'"RECORD"' in line and b'"id"' not in line for line in unanswered)
    assert any(b'"STATE"' in line for line in unanswered)
    assert b"" in unanswered
    assert b"{not json" in unanswered


def compile_mapping_reads() -> dict[str, Any]:
    from target_openai_capi.mapping.stream_mapping import compile_stream_mapping

    reads = compile_stream_mapping(STREAM, MAPPING).reads
    assert reads is not None
    return dict(reads)


def test_a_chunk_ends_at_the_last_newline_of_all_it_read(monkeypatch):
    """Reads as a tap's pauses cut them: whole lines go on at once, the rest of a line waits,
    even when the last read holds no newline of its own."""
    from target_openai_capi.reading import line_chunks

    reads = [b"a\nb", b"cc", b"d\ne", b"\n", b"f\n", b""]
    more = iter([True, False, False, False, False])
    monkeypatch.setattr(line_chunks, "os", SimpleNamespace(read=lambda fd, size: reads.pop(0)))
    monkeypatch.setattr(line_chunks, "readable", lambda fd: next(more))
    monkeypatch.setattr(line_chunks, "enlarge_pipe", lambda fd: None)
    chunks = LineChunks(-1)
    got = []
    while (chunk := chunks.read()) is not None:
        got.append(chunk)
    assert got == [b"a\n", b"bccd\n", b"e\n", b"f\n"]


@pytest.mark.parametrize("listing", ["/proc", "no /proc"])
def test_a_forked_worker_keeps_only_its_two_pipes(listing):
    """Another worker's pipe, the tap's input, sockets, files: a forked worker closes every
    descriptor it inherited but its own two pipes (and stdin, stdout, stderr, which it points
    elsewhere), with or without /proc to list them."""
    from target_openai_capi.parallel import worker

    to_worker, from_main = os.pipe()
    report_read, report_write = os.pipe()
    extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
    pid = os.fork()
    if pid == 0:  # the child: report, then leave at once
        try:
            if listing == "no /proc":
                os.listdir = lambda path: (_ for _ in ()).throw(FileNotFoundError(path))
            worker._keep_only_descriptors(to_worker, report_write)
            still_open = []
            for fd in range(3, 1024):
                try:
                    os.fstat(fd)
                except OSError:
                    continue
                still_open.append(fd)
            os.write(report_write, json.dumps(still_open).encode())
        finally:
            os._exit(0)
    os.close(report_write)
    report = b""
    while chunk := os.read(report_read, 65536):
        report += chunk
    os.waitpid(pid, 0)
    for fd in (to_worker, from_main, report_read, *extra):
        os.close(fd)
    assert json.loads(report) == sorted([to_worker, report_write])


def test_forked_workers_take_every_record_from_the_first_schema_on(sandbox, tmp_path):
    """The first chunk holds the first SCHEMA: the records after it in that chunk go to the
    workers too (forked, they take chunks at once), not only those of later chunks."""
    lines = [schema(STREAM, PROPERTIES, ["id"])]
    lines += [record(STREAM, order(n, currency="USD")) for n in range(2000)]
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    match = PREPARED.search(run.stderr)
    assert match, run.stderr
    assert match.group(2) == "2,000"
    assert len(sandbox.events()) == 2000


def test_records_interleaved_with_an_unmapped_stream_are_still_prepared_in_workers(
    sandbox, tmp_path
):
    """A log-based tap writes the tables it reads as their rows change: each order between two
    rows of a table with no entry under `streams`. Each order was decoded whole then (the line
    after a stream decoded whole was guessed to be one too), which a worker cannot prepare: the
    main process did every record alone, at half the speed, and said "2 of 4,000" here."""
    lines = [schema(STREAM, PROPERTIES, ["id"]), schema("audit_log", {"id": {"type": "integer"}})]
    for n in range(2000):
        lines += [record(STREAM, order(n, currency="USD")), record("audit_log", {"id": n})]
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    match = PREPARED.search(run.stderr)
    assert match, run.stderr
    assert (match.group(2), match.group(3)) == ("2,000", "4,000")  # every order; no audit row
    assert "received=4000 sent=2000" in summary(run.stderr)[0]
    assert sorted(event["id"] for event in sandbox.events()) == sorted(f"o{n}" for n in range(2000))


def test_a_schema_that_uses_definitions_is_read_in_workers(sandbox, tmp_path):
    """A tap that writes a type once and refers to it (`{"$ref": "#/definitions/line"}`): its
    records were decoded whole and prepared in the main process alone (a `$ref` was left whole),
    at half the speed. The definitions are written out where they are used now."""
    properties = {
        **PROPERTIES,
        "total": {"$ref": "#/definitions/amount"},
        "items": {"type": "array", "items": {"$ref": "#/definitions/line"}},
    }
    defined = json.loads(schema(STREAM, properties, ["id"]))
    defined["schema"]["definitions"] = {
        "amount": {"type": "number"},
        "line": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "qty": {"$ref": "#/definitions/count"}},
        },
        "count": {"type": "integer"},
    }
    lines = [json.dumps(defined)]
    lines += [record(STREAM, order(n, currency="USD")) for n in range(2000)]
    lines.append(record(STREAM, order(2000, items=[{"sku": "a", "qty": "two"}])))  # refused
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    match = PREPARED.search(run.stderr)
    assert match, run.stderr
    assert (match.group(2), match.group(3)) == ("2,001", "2,001")
    assert "received=2001 sent=2000" in summary(run.stderr)[0]
    assert "schema=1" in summary(run.stderr)[0]
    assert len(sandbox.events()) == 2000


def test_a_plan_dropped_and_set_again_mid_input_keeps_answers_with_their_chunks(tmp_path):
    """The only planned stream's SCHEMA is refused mid-chunk (its plan is dropped: the chunks
    after go on in the main process), a good one follows at the start of the next chunk (they
    go to the workers again), and later chunks carry SCHEMA lines too. Chunks of 64 KiB here.
    Every answer must stay with its own chunk: the same events, STATE and dead letters as a run
    in one process."""
    chunk = 1 << 16
    good = schema(STREAM, PROPERTIES, ["id"])
    refused = good.replace('"key_properties": ["id"]', '"key_properties": "id"')
    other = schema("unmapped", {"id": {"type": "integer"}})
    lines: list[str] = []
    size = 0
    placed: set[int] = set()
    # chunk number -> the SCHEMA line to put there, and how far into the chunk
    special = {1: (refused, chunk // 2), 2: (good, 500), 5: (other, chunk // 3)}
    n = 0
    lines.append(good)
    size = len(good) + 1
    while size < 11 * chunk:
        at = size // chunk
        if at in special and at not in placed and size % chunk > special[at][1]:
            line = special[at][0]
            placed.add(at)
        else:
            line = record(STREAM, order(n, currency="USD", note="x" * 400))
            n += 1
            if n % 50 == 0:
                lines.append(state({"bookmarks": {STREAM: {"n": n}}}))
                size += len(lines[-1]) + 1
        lines.append(line)
        size += len(line) + 1
    assert placed == {1, 2, 5}
    data = tmp_path / "input.jsonl"
    data.write_text("\n".join(lines) + "\n")
    small_chunks = hooked_env(
        tmp_path, f"import target_openai_capi.reading.line_chunks as c\nc.CHUNK_BYTES = {chunk}\n"
    )
    results = {}
    for workers in (0, 2):
        out = tmp_path / str(workers)
        out.mkdir()
        with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as api:
            config = target_config(
                api.url,
                out,
                {STREAM: MAPPING},
                worker_processes=workers,
                max_concurrent_requests=1,
            )
            (out / "config.json").write_text(json.dumps(config))
            with data.open("rb") as stdin:
                proc = subprocess.run(
                    [*TARGET_CMD, "--config", str(out / "config.json")],
                    stdin=stdin,
                    capture_output=True,
                    env=small_chunks,
                    timeout=300,
                    check=False,
                )
            results[workers] = (proc, api.events(), dead_letters(out / "dead.jsonl"))
    (alone, alone_events, alone_dead), (split, split_events, split_dead) = results[0], results[2]
    # (records came under the refused SCHEMA: the run fails at its end, no STATE past them)
    assert alone.returncode == 1, alone.stderr.decode()
    assert split.returncode == 1, split.stderr.decode()
    assert b"came under a SCHEMA that was refused" in split.stderr
    match = PREPARED.search(split.stderr.decode())
    assert match, split.stderr.decode()
    assert int(match.group(2).replace(",", "")) > 300  # the workers did take part
    assert split_events == alone_events
    assert len(alone_events) > 500
    assert split.stdout == alone.stdout
    assert split_dead == alone_dead
    assert any("was refused" in line["dead_letter"]["reason"] for line in alone_dead)


def test_workers_are_not_forked_beside_upload_threads(sandbox, tmp_path):
    """A stream that goes through a stream map (records in the main process) has had batches
    sent before the first stream that workers can take: upload threads run, and one of them
    could hold a lock a forked child would wait for. The workers are new Pythons instead."""
    head = [schema("first", PROPERTIES, ["id"])]
    head += [record("first", order(n, currency="USD")) for n in range(12)]
    head += [schema(STREAM, PROPERTIES, ["id"])]
    tail = [record(STREAM, order(n, currency="USD")) for n in range(100, 400)]
    config = target_config(
        sandbox.url,
        tmp_path,
        {"first": MAPPING, STREAM: MAPPING},
        worker_processes=2,
        batch_size=5,
        stream_maps={"first": {"extra": "1"}},
    )
    code, _, stderr, commands = run_with_pause(config, head, tail, tmp_path)
    assert code == 0, stderr
    assert all("target_openai_capi.parallel.worker" in command for command in commands), commands
    match = PREPARED.search(stderr)
    assert match, stderr
    assert int(match.group(2).replace(",", "")) > 150
    assert len(sandbox.events()) == 312


# Forked workers stuck before they are ready (as on a lock a thread held at the fork), with
# a one-second deadline for their READY.
FORKED_WORKERS_HANG = """import os, time
import target_openai_capi.parallel.pool as pool
pool.READY_SECONDS = 1.0
_fork = os.fork
def fork():
    pid = _fork()
    if pid == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
    return pid
os.fork = fork
"""


def test_forked_workers_that_never_get_ready_cost_a_deadline_not_the_run(sandbox, tmp_path):
    lines = [schema(STREAM, PROPERTIES, ["id"])]
    lines += [record(STREAM, order(n, currency="USD")) for n in range(300)]
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    started = time.monotonic()
    proc = start_target(config, lines, tmp_path, hooked_env(tmp_path, FORKED_WORKERS_HANG))
    _, stderr = proc.communicate(b"", timeout=120)
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert time.monotonic() - started < 60
    assert "a worker process could not start: the run goes on in one process" in text
    assert len(sandbox.events()) == 300
    assert PREPARED.search(text).group(2) == "0"  # type: ignore[union-attr]


# Workers that hang after they said they are ready (as on a lock, or a loop of their own), with
# a one-second deadline for each chunk's answers.
WORKERS_HANG_ON_CHUNKS = """import time
import target_openai_capi.parallel.pool as pool
from target_openai_capi.parallel.prepared import RecordPreparer
pool.ANSWER_SECONDS = 1.0
def prepare_all(self, lines):
    time.sleep(600)
RecordPreparer.prepare_all = prepare_all
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_that_hang_on_a_chunk_cost_a_deadline_not_the_run(sandbox, tmp_path, start):
    """Only workers prepare chunks (RecordPreparer.prepare_all): here each sleeps on its first,
    and the main process, past the deadline, handles every chunk itself."""
    head = [schema(STREAM, PROPERTIES, ["id"])]  # (the workers start, and wait for chunks)
    tail = [record(STREAM, order(n, currency="USD")) for n in range(300)]
    tail.append(state({"bookmarks": {STREAM: {"n": 300}}}))
    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    hook = WORKERS_HANG_ON_CHUNKS + (SPAWN_WORKERS if start == "spawn" else "")
    started = time.monotonic()
    code, stdout, stderr, _ = run_with_pause(
        config, head, tail, tmp_path, env=hooked_env(tmp_path, hook)
    )
    assert code == 0, stderr
    assert time.monotonic() - started < 60
    assert "a worker process did not answer within 1 s: the run goes on in one process" in stderr
    assert sorted(e["id"] for e in sandbox.events()) == sorted(f"o{n}" for n in range(300))
    assert PREPARED.search(stderr).group(2) == "0"  # type: ignore[union-attr]
    assert json.loads(stdout.splitlines()[-1]) == {"bookmarks": {STREAM: {"n": 300}}}


def taking_chunks(pool: Any, spec: Any) -> Any:
    """The pool with its worker started and taking chunks: forked, at once; spawned (where a
    thread of this test process, a sandbox's say, still runs), once it said it is ready."""
    pool.start()
    pool.set_plan(STREAM, spec)
    deadline = time.monotonic() + 60
    while not pool.usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.usable()
    return pool


def test_answers_are_taken_only_for_the_chunk_asked_for():
    """Each chunk's answers carry its tag: asked for a chunk while the worker answers an
    earlier one, the pool takes nothing and breaks (the reader then handles the chunk)."""
    import logging

    from target_openai_capi.parallel.pool import WorkerPool
    from target_openai_capi.parallel.prepared import PlanSpec

    entry = {"event_type": "order_created", "fields": {"id": "id", "timestamp_ms": "ts"}}
    spec = PlanSpec(STREAM, entry, ("id",), {"id": True, "ts": True}, None, None, False,
                    "plural", None)  # fmt: skip
    pool = taking_chunks(WorkerPool(1, logging.getLogger("test")), spec)
    try:
        line = record(STREAM, {"id": "o1", "ts": 1_764_590_400_000}).encode() + b"\n"
        first = pool.submit(line)
        second = pool.submit(line * 2)
        assert first is not None
        assert second is not None
        assert pool.collect(second) is None  # the worker answers `first` first
        assert pool.broken
    finally:
        pool.close()
    pool = taking_chunks(WorkerPool(1, logging.getLogger("test")), spec)
    try:
        first = pool.submit(line)
        second = pool.submit(line * 2)
        assert first is not None
        assert second is not None
        answered = [pool.collect(first), pool.collect(second)]
        assert [len(results or []) for results in answered] == [1, 2]
        assert not pool.broken
    finally:
        pool.close()


def _peak_rss_mib(config: dict[str, Any], data: bytes, tmp_path: Path) -> tuple[float, float]:
    """Peak RSS (MiB) of the main process and of its largest worker over a run on `data`."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    main = psutil.Process(proc.pid)
    peak_main = peak_worker = 0
    feeder = __import__("threading").Thread(target=proc.communicate, args=(data,))
    feeder.start()
    while proc.poll() is None:
        try:
            peak_main = max(peak_main, main.memory_info().rss)
            for child in main.children():
                peak_worker = max(peak_worker, child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    feeder.join()
    assert proc.returncode == 0
    return peak_main / 2**20, peak_worker / 2**20


def test_a_stream_whose_schema_keeps_changing_keeps_memory_flat(sandbox, tmp_path):
    """A tap that infers its SCHEMA per batch, flipping between two versions: each change left
    a sink (with its compiled validator) in the main process until the run's end, and a frozen,
    never freed plan in each worker: ~60 KiB a change there, 440 MiB a worker after 4,000."""

    def changing(changes: int) -> bytes:
        lines = []
        for change in range(changes):
            props = {
                **PROPERTIES,
                **({"extra": {"type": ["null", "string"]}} if change % 2 else {}),
            }
            lines.append(schema(STREAM, props, ["id"]))
            lines += [record(STREAM, order(change * 20 + n)) for n in range(20)]
        return ("\n".join(lines) + "\n").encode()

    config = target_config(sandbox.url, tmp_path, {STREAM: MAPPING}, worker_processes=2)
    config["dry_run"] = True  # (the sandbox's storing is not what is measured)
    few_main, few_worker = _peak_rss_mib(config, changing(100), tmp_path)
    many_main, many_worker = _peak_rss_mib(config, changing(1100), tmp_path)
    # Before: +72 MiB a worker and +33 MiB for the main process from 100 to 1,100 changes;
    # after: +22 and +15 (~15-20 KiB a change is left, not found yet).
    assert many_worker - few_worker < 40, (few_worker, many_worker)
    assert many_main - few_main < 25, (few_main, many_main)


_FORKED_WORKER = """
import os
from target_openai_capi.parallel.worker import serve_forked
to_worker_r, to_worker_w = os.pipe()
to_main_r, to_main_w = os.pipe()
pid = os.fork()
if pid == 0:
    serve_forked(to_worker_r, to_main_w)
os.close(to_worker_r)
os.close(to_main_w)
os.read(to_main_r, 65536)  # (its READY)
os.close(to_worker_w)  # the end of the input: the worker is done
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked on Linux only")
def test_a_forked_worker_that_ends_warns_of_nothing():
    """Its input pipe was left for the collector, and with warnings on (Meltano sets
    PYTHONWARNINGS=once) a 'ResourceWarning: unclosed file' from worker.py reached the run's
    log, through handlers a forked worker must not use."""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", _FORKED_WORKER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "0"
    assert done.stderr == ""
