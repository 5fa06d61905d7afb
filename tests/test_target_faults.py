"""Under faults every valid event arrives once, bad ones are dead-lettered, counts add up."""

from __future__ import annotations

import glob
import json
import math
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD, now_ms, record, run_target, schema, state

from target_openai_capi.sandbox import FaultConfig


def conversions(n: int, *, start: int = 0, ts: int | None = None) -> list[str]:
    ts = ts or now_ms() - 60_000
    return [
        record("conversions", {"id": f"e{i}", "type": "lead_created", "timestamp_ms": ts})
        for i in range(start, start + n)
    ]


def config_for(url: str, tmp_path, **extra):
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"conversions": {}},
        **extra,
    }


def dead_letters(tmp_path) -> list[dict]:
    path = tmp_path / "dead.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_faults_together_lose_nothing_and_send_nothing_twice(skewed_sandbox, tmp_path):
    sandbox = skewed_sandbox
    sandbox.set_faults(
        FaultConfig(
            latency_ms=10,
            rate_429=0.1,
            retry_after=0,
            rate_500=0.05,
            rate_503=0.05,
            rate_drop=0.05,
            rate_drop_after=0.05,
            seed=7,
        )
    )
    fresh = now_ms() - 60_000
    lines = [schema("conversions", {"id": {}}, ["id"])]
    lines += conversions(300, ts=fresh)
    # Refused by the API (stale on its clock): must end in the dead-letter file.
    stale_ids = [f"stale{i}" for i in range(3)]
    for position, sid in zip((50, 120, 200), stale_ids, strict=True):
        lines.insert(
            position,
            record(
                "conversions",
                {"id": sid, "type": "lead_created", "timestamp_ms": now_ms() - 2 * 3600 * 1000},
            ),
        )
    # Refused by the target itself.
    lines.append(
        record(
            "conversions",
            {
                "id": "bad-amount",
                "type": "order_created",
                "timestamp_ms": fresh,
                "amount": "12.345",
                "currency": "USD",
            },
        )
    )
    lines.append(state({"done": True}))
    config = config_for(sandbox.url, tmp_path, batch_size=50, max_attempts=15, max_retry_seconds=60)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output

    stored = [e["id"] for e in sandbox.events(PIXEL_ID)]
    assert sorted(stored) == sorted(f"e{i}" for i in range(300))  # all valid, none twice
    stats = sandbox.stats()
    assert stats["faults_injected"] > 0  # the faults really happened
    dead = {
        m["record"]["id"]: m["dead_letter"] for m in dead_letters(tmp_path) if m["type"] == "RECORD"
    }
    assert set(dead) == {*stale_ids, "bad-amount"}
    for sid in stale_ids:
        assert dead[sid]["stage"] == "api"
        assert "older than 7 days" in dead[sid]["server_message"]
    assert dead["bad-amount"]["stage"] == "mapping"
    summary = re.search(r"Run summary: received=(\d+) sent=(\d+) .*rejected=(\d+)", run.stderr)
    assert summary is not None, run.stderr
    received, sent, rejected = map(int, summary.groups())
    assert (received, sent, rejected) == (304, 300, 4)
    assert run.states == [{"done": True}]
    assert API_KEY not in run.output + (tmp_path / "dead.jsonl").read_text()


def test_one_poisoned_event_in_1000_costs_about_2_log2_requests(skewed_sandbox, tmp_path):
    sandbox = skewed_sandbox
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(999)]
    lines.insert(
        400,
        record(
            "conversions",
            {"id": "poison", "type": "lead_created", "timestamp_ms": now_ms() - 2 * 3600 * 1000},
        ),
    )
    run = run_target(config_for(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 999
    requests = sandbox.stats()["requests"]
    assert requests <= 1 + 2 * math.ceil(math.log2(1000))
    dead = [m for m in dead_letters(tmp_path) if m["type"] == "RECORD"]
    assert [m["record"]["id"] for m in dead] == ["poison"]
    assert API_KEY not in run.output + (tmp_path / "dead.jsonl").read_text()


def _run_until_killed(config_path, lines: list[str], kill_after_states: int):
    """Run the target, SIGKILL it once it printed `kill_after_states` STATE lines."""
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )

    def feed():
        try:
            for line in lines:
                proc.stdin.write((line + "\n").encode())
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    states = []
    for raw in proc.stdout:
        states.append(json.loads(raw))
        if len(states) >= kill_after_states:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    feeder.join(timeout=10)
    return states


def test_killed_at_random_points_a_rerun_from_the_last_state_delivers_everything(sandbox, tmp_path):
    sandbox.set_faults(FaultConfig(latency_ms=15, seed=3))
    total, every = 2000, 100
    config = config_for(sandbox.url, tmp_path, batch_size=100)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    ts = now_ms() - 60_000

    def tap_from(position: int) -> list[str]:
        """What a tap emits when resumed from a bookmark: records after it, STATE every 100."""
        out = [schema("conversions", {"id": {}}, ["id"])]
        for i in range(position, total):
            out.append(
                record("conversions", {"id": f"e{i}", "type": "lead_created", "timestamp_ms": ts})
            )
            if (i + 1) % every == 0:
                out.append(state({"position": i + 1}))
        return out

    rng = random.Random(11)
    position = 0
    for _ in range(3):
        states = _run_until_killed(config_path, tap_from(position), rng.randint(1, 5))
        if states:
            position = states[-1]["position"]
        # Every event before the last STATE printed is stored: the STATE never ran ahead.
        stored = {e["id"] for e in sandbox.events(PIXEL_ID)}
        assert {f"e{i}" for i in range(position)} <= stored
    final = run_target(config, tap_from(position), tmp_path)
    assert final.returncode == 0, final.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(
        f"e{i}" for i in range(total)
    )


class _OpenPipe:
    """The CLI reading a tap's output through a pipe that stays open (the tap is still
    running), its log collected as it comes; `noticed` is set once the log shows `watch_for`."""

    def __init__(self, config: dict, tmp_path, watch_for: str) -> None:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            [*TARGET_CMD, "--config", str(config_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.log_lines: list[str] = []
        self.noticed = threading.Event()
        self._reader = threading.Thread(target=self._read_log, args=(watch_for,), daemon=True)
        self._reader.start()

    def _read_log(self, watch_for: str) -> None:
        for raw in self.proc.stderr:
            self.log_lines.append(raw.decode(errors="replace"))
            if watch_for in self.log_lines[-1]:
                self.noticed.set()

    def send(self, lines: list[str]) -> None:
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_for_notice(self) -> None:
        assert self.noticed.wait(timeout=60), "".join(self.log_lines)

    def exit_after(self, signum: int, then=None) -> tuple[int, list[dict], str]:
        """Send the signal (then call `then`); exit code, STATE lines and log once it ends."""
        self.proc.send_signal(signum)
        if then is not None:
            then()
        try:
            self.proc.wait(timeout=60)  # stdin still open: the signal ends the run, not the input
        except subprocess.TimeoutExpired:  # (fail with what the run had logged, to say where)
            self.proc.kill()
            self.proc.wait()
            self._reader.join(timeout=10)
            log = "".join(self.log_lines)
            raise AssertionError(f"the run did not end within 60 s of the signal:\n{log}") from None
        self._reader.join(timeout=10)
        states = [json.loads(line) for line in self.proc.stdout.read().decode().splitlines()]
        self.proc.stdin.close()
        self.proc.stdout.close()
        return self.proc.returncode, states, "".join(self.log_lines)


def test_sigterm_delivers_what_is_batched_writes_state_and_logs_the_summary(sandbox, tmp_path):
    """An orchestrator cancelling the run: batched events go out, STATE follows them, exit 0."""
    # batch_size 1000; a record of an unmapped stream: its warning says every line before it
    # has been read.
    target = _OpenPipe(config_for(sandbox.url, tmp_path), tmp_path, "'other' has no entry")
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(30), state({"pos": 30})]
    target.send([*lines, schema("other", {"id": {}}, ["id"]), record("other", {"id": 1})])
    target.wait_for_notice()
    assert sandbox.events(PIXEL_ID) == []  # batched, not yet sent
    code, states, log = target.exit_after(signal.SIGTERM)
    assert code == 0, log
    assert f"Received signal {int(signal.SIGTERM)}" in log
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(f"e{i}" for i in range(30))
    assert states == [{"pos": 30}]
    assert "Run summary: received=31 sent=30" in log
    assert "Traceback" not in log


def test_a_run_stopped_by_a_signal_does_not_call_entries_whose_stream_had_not_come_misnamed(
    sandbox, tmp_path
):
    """Cancelled before `leads` came, the run warned 'streams.leads matched nothing; none of
    the input's 1 streams is like it', pointing at a misnamed entry: the input was only not
    read to its end."""
    config = config_for(sandbox.url, tmp_path)
    config["streams"] = {**config["streams"], "leads": {}}
    target = _OpenPipe(config, tmp_path, "'other' has no entry")
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(3), state({"pos": 3})]
    target.send([*lines, schema("other", {"id": {}}, ["id"]), record("other", {"id": 1})])
    target.wait_for_notice()
    code, states, log = target.exit_after(signal.SIGTERM)
    assert code == 0, log
    assert states == [{"pos": 3}]
    assert "matched nothing" not in log
    assert "The input was not read to its end (stopped by a signal)" in log

    # Records of a stream without an entry arrived, and none matched one: the entries' streams
    # may have been to come (a tap syncing `order` before `orders`), so the run does not fail,
    # but no STATE passes the skipped records, and it says so.
    target = _OpenPipe(config, tmp_path, "'web_events' has no entry")
    target.send([schema("web_events", {"id": {}}, ["id"]), record("web_events", {"id": 1})])
    target.send([state({"pos": 1})])
    target.wait_for_notice()
    code, states, log = target.exit_after(signal.SIGTERM)
    assert code == 0, log
    assert states == []
    assert (
        "Records of streams without an entry under `streams` were skipped (web_events), and no "
        "STATE was written past them"
    ) in log


# A sitecustomize that holds the import of singer_sdk for a while (after telling a file so):
# the target is then still starting, its modules half imported.
_SLOW_IMPORT = """
import importlib.abc, os, sys, time
class _Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "singer_sdk":
            open(os.environ["STARTING_MARK"], "w").close()
            time.sleep(20)
        return None
sys.meta_path.insert(0, _Slow())
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_target_starts_is_one_line_not_a_traceback(signum, sandbox, tmp_path):
    """Ctrl-C in the first half second (its imports) printed a KeyboardInterrupt traceback;
    SIGTERM ended it without a word."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_SLOW_IMPORT)
    mark = tmp_path / "starting"
    env = {**os.environ, "PYTHONPATH": str(hook), "STARTING_MARK": str(mark)}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config_for(sandbox.url, tmp_path)))
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    log = err.decode()
    assert proc.returncode == 0, log
    assert "Traceback" not in log
    assert f"received signal {int(signum)} while starting: stopped, nothing read" in log
    assert out == b""


def test_sigterm_to_the_process_group_and_from_meltano_is_one_stop(sandbox, tmp_path):
    """`meltano run` cancelled by a SIGTERM to its process group: the target gets the group's
    signal and, a fraction of a millisecond later, Meltano's own. That second one stopped the
    run at once, the batch in flight unsettled and STATE behind, on every such cancel."""
    sandbox.set_faults(FaultConfig(latency_ms=1000))
    target = _OpenPipe(config_for(sandbox.url, tmp_path), tmp_path, "'other' has no entry")
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(30), state({"pos": 30})]
    target.send([*lines, schema("other", {"id": {}}, ["id"]), record("other", {"id": 1})])
    target.wait_for_notice()

    def again_at_once() -> None:
        time.sleep(0.02)
        target.proc.send_signal(signal.SIGTERM)

    code, states, log = target.exit_after(signal.SIGTERM, then=again_at_once)
    assert code == 0, log
    assert "again within 0.1 s: taken as the same request to stop" in log
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(f"e{i}" for i in range(30))
    assert states == [{"pos": 30}]


def test_sigterm_while_a_batch_is_being_retried_waits_for_it(sandbox, tmp_path):
    """The signal comes while the batch a record completed is retried (503): that delivery
    finishes first, then the run stops as at the end of input. Nothing is dropped."""
    sandbox.set_faults(FaultConfig(rate_503=1.0, retry_after=1))
    config = config_for(sandbox.url, tmp_path, batch_size=5, max_concurrent_requests=1)
    target = _OpenPipe(config, tmp_path, "HTTP 503")
    lines = [schema("conversions", {"id": {}}, ["id"]), state({"pos": 0}), *conversions(5)]
    target.send([*lines, state({"pos": 5}), *conversions(2, start=5)])
    target.wait_for_notice()

    def recover() -> None:  # the API recovers; the retry goes through
        time.sleep(0.5)
        sandbox.set_faults(FaultConfig())

    code, states, log = target.exit_after(signal.SIGTERM, then=recover)
    assert code == 0, log
    assert "stopping after the message in hand" in log
    # The batch in hand was delivered; the lines after it were never read, and STATE did not
    # pass them: a rerun from {"pos": 0} sends e0-e4 again (the API keeps one) and e5, e6.
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(f"e{i}" for i in range(5))
    assert states == [{"pos": 0}]
    assert "Run summary: received=5 sent=5" in log


@pytest.mark.parametrize("at", ["in a message", "at the end of input"])
def test_a_signal_while_the_api_keeps_failing_stops_within_the_grace(at, sandbox, tmp_path):
    """An API that answers 503 to every request, the retries allowed 10 minutes: a SIGTERM
    went on retrying for all of them (an orchestrator kills the run long before). No request
    or retry starts past stop_grace_seconds after the signal; the run fails, its records left
    to the next run, STATE not past them."""
    sandbox.set_faults(FaultConfig(rate_503=1.0, retry_after=1))
    config = config_for(
        sandbox.url,
        tmp_path,
        batch_size=5,
        max_concurrent_requests=1,
        max_attempts=100,
        max_retry_seconds=600,
        stop_grace_seconds=2,
    )
    target = _OpenPipe(config, tmp_path, "HTTP 503")
    lines = [schema("conversions", {"id": {}}, ["id"]), state({"pos": 0}), *conversions(5)]
    target.send([*lines, state({"pos": 5}), *conversions(2, start=5)])
    if at == "at the end of input":
        target.proc.stdin.close()  # (the run delivers what is left: the signal comes then)
    target.wait_for_notice()
    started = time.monotonic()
    code, states, log = target.exit_after(signal.SIGTERM)
    assert time.monotonic() - started < 20, log  # (not 600 s of retries)
    assert code == 1, log
    assert "Signal 15 was 2 s ago (stop_grace_seconds) and delivery is not done" in log
    assert states == [{"pos": 0}]
    assert sandbox.events(PIXEL_ID) == []


def test_a_second_signal_stops_at_once_while_a_request_hangs(sandbox, tmp_path):
    """The API takes a minute to answer; the orchestrator sends SIGTERM, then SIGTERM again.
    The second stops the run at once (not when the request times out): exit 1, no STATE past
    the batch in flight, its records counted unsettled (the next run sends them again)."""
    sandbox.set_faults(FaultConfig(latency_ms=60_000))
    config = config_for(sandbox.url, tmp_path, batch_size=5, request_timeout_seconds=60)
    target = _OpenPipe(config, tmp_path, "never logged")
    lines = [schema("conversions", {"id": {}}, ["id"]), state({"pos": 0}), *conversions(5)]
    target.send([*lines, state({"pos": 5})])
    deadline = time.monotonic() + 30
    while sandbox.stats()["requests"] < 1:  # the batch of five is on its way, and hangs
        assert time.monotonic() < deadline, "".join(target.log_lines)
        time.sleep(0.05)
    target.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    code, states, log = target.exit_after(signal.SIGTERM)
    assert time.monotonic() - started < 20, log  # not the minute the request would take
    assert code == 1, log
    assert "again: stopping now" in log
    assert states == [{"pos": 0}]
    assert "unsettled=5 requests=1" in log  # (the request made counts, unanswered)
    assert "Traceback" not in log


def test_a_second_signal_while_a_record_s_request_hangs_counts_the_one_made(sandbox, tmp_path):
    """One request at a time is made by the main thread as it handles the record: a second
    signal then cannot settle anything, and the summary said requests=0 for the one made."""
    sandbox.set_faults(FaultConfig(latency_ms=60_000))
    config = config_for(
        sandbox.url,
        tmp_path,
        batch_size=1,
        max_concurrent_requests=1,
        request_timeout_seconds=60,
        worker_processes=0,
    )
    target = _OpenPipe(config, tmp_path, "never logged")
    target.send([schema("conversions", {"id": {}}, ["id"]), *conversions(2)])
    # (the second record waits in the pipe while the first one's request hangs)
    deadline = time.monotonic() + 30
    while sandbox.stats()["requests"] < 1:
        assert time.monotonic() < deadline, "".join(target.log_lines)
        time.sleep(0.05)
    time.sleep(0.5)
    target.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    code, _, log = target.exit_after(signal.SIGTERM)
    assert code == 1, log
    assert "unsettled=1 requests=1" in log


def _blocked_signals(task: str) -> set[int] | None:
    """The signals a thread (a /proc/<pid>/task/<tid> directory) blocks, from its SigBlk mask;
    None when the thread has ended (a request's deadline timer, once its answer came)."""
    try:
        status = (Path(task) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # (ended before, or while it was read)
        return None
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            mask = int(line.split()[1], 16)
            return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    raise AssertionError(f"no SigBlk in {task}/status")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads threads' masks in /proc")
def test_only_the_main_thread_takes_termination_signals(sandbox, tmp_path):
    """The kernel hands a signal sent to the process to any thread that does not block it, and
    Python runs the handler in the main thread only: one taken by another thread would not
    interrupt what the main thread waits on (a request in flight, for a second signal's "stop
    at once"). Every thread the target starts (worker writers, uploads, the quiet-input
    watcher) blocks SIGINT and SIGTERM; the main thread does not."""
    config = config_for(sandbox.url, tmp_path, batch_size=5, worker_processes=2)
    config["max_concurrent_requests"] = 4
    target = _OpenPipe(config, tmp_path, "'other' has no entry")
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(30), state({"pos": 30})]
    target.send([*lines, schema("other", {"id": {}}, ["id"]), record("other", {"id": 1})])
    target.wait_for_notice()
    tasks = sorted(glob.glob(f"/proc/{target.proc.pid}/task/*"))
    main = f"/proc/{target.proc.pid}/task/{target.proc.pid}"
    others = [task for task in tasks if task != main]
    # the quiet-input watcher, two worker writers, at least one upload thread (six batches)
    assert len(others) >= 4, tasks
    termination = {int(signal.SIGINT), int(signal.SIGTERM)}
    main_blocks = _blocked_signals(main)
    assert main_blocks is not None
    assert not main_blocks & termination
    for task in others:
        blocked = _blocked_signals(task)
        assert blocked is None or termination <= blocked, task
    code, states, log = target.exit_after(signal.SIGTERM)
    assert code == 0, log
    assert states == [{"pos": 30}]
    assert "Run summary: received=31 sent=30" in log


def test_a_signal_during_a_rejected_message_still_stops_the_run(monkeypatch):
    """The guard takes a signal that arrives while a message is handled once it is done, also
    when that message turns out to be bad (its rejection is handled like a message)."""
    import logging
    from typing import NoReturn

    import pytest

    from target_openai_capi.reading.reader import BadLine
    from target_openai_capi.termination import MessageGuard

    calls: list[str] = []
    monkeypatch.setattr(logging, "shutdown", lambda: None)  # the run's own exit closes the log

    def fail(message: str) -> NoReturn:
        raise AssertionError(message)

    guard = MessageGuard(
        deliver_when_quiet=lambda: None,
        end_of_input=lambda: calls.append("end of input"),
        fail=fail,
        fail_at_once=fail,
        stop_sending=lambda: None,
        logger=logging.getLogger("test-guard"),
    )

    def bad_schema(_: object) -> None:
        guard.signal(15)  # SIGTERM while the message is being handled
        raise BadLine("SCHEMA refused")

    with pytest.raises(BadLine):
        guard.handle(bad_schema, {})
    assert calls == []  # not in the middle of the message
    with pytest.raises(SystemExit) as stopped:
        guard.handle(lambda _: calls.append("rejection recorded"), None)
    assert stopped.value.code == 0
    assert calls == ["rejection recorded", "end of input"]


def test_a_second_signal_during_the_last_delivery_finds_it_under_the_lock(monkeypatch):
    """The stop at once settles and releases STATE only if it can take the lock. The last
    delivery (end of input, or after a first signal) ran without it, so a second signal could
    release STATE between a batch taken off its hold and the batch submitted: past records
    never sent."""
    import logging
    from typing import NoReturn

    import pytest

    from target_openai_capi import termination
    from target_openai_capi.termination import MessageGuard

    # (the two signals below come at once: not to be taken as one sent twice)
    monkeypatch.setattr(termination, "SAME_SIGNAL_SECONDS", 0.0)
    could_settle: list[bool] = []

    def fail_at_once(message: str) -> NoReturn:
        took = guard.lock.acquire(blocking=False)  # (as target.py `fail(at_once=True)` does)
        if took:
            guard.lock.release()
        could_settle.append(took)
        raise SystemExit(1)

    def fail(message: str) -> NoReturn:
        raise AssertionError(message)

    guard = MessageGuard(
        deliver_when_quiet=lambda: None,
        end_of_input=lambda: None,
        fail=fail,
        fail_at_once=fail_at_once,
        stop_sending=lambda: None,
        logger=logging.getLogger("test-guard"),
    )

    def last_delivery() -> None:
        guard.signal(15)  # the first: once this is done
        guard.signal(15)  # the second: at once

    with pytest.raises(SystemExit):
        guard.handle_end(last_delivery)
    assert could_settle == [False]


def test_a_run_stopped_by_an_error_still_accounts_for_every_record(sandbox, tmp_path):
    """The API answers 500 to everything and the target gives up: the run stops with three
    batches in flight, none of them settled. Their records are counted as unsettled, so the
    summary still accounts for every record received (it used to say received=0), and no
    STATE passes them."""
    sandbox.set_faults(FaultConfig(rate_500=1.0))
    lines = [schema("conversions", {"id": {}}, ["id"]), state({"pos": 0})]
    lines += conversions(30)
    lines.append(state({"pos": 30}))
    config = config_for(sandbox.url, tmp_path, batch_size=10, max_attempts=2, max_retry_seconds=5)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "Gave up after 2 attempts" in run.stderr
    assert "30 records had events in batches not yet sent, not yet answered" in run.stderr
    assert "Run summary: received=30 sent=0 " in run.stderr
    # The first batch to give up made two attempts and stops the others' retries (or their
    # first request): none settled, every request made counted (it said requests=0).
    made = re.search(r"Run summary: .* requests=(\d+)", run.stderr)
    assert made is not None
    assert 2 <= int(made.group(1)) <= 6
    assert "conversions: received=30 unsettled=30" in run.stderr
    assert sandbox.events(PIXEL_ID) == []
    assert run.states == [{"pos": 0}]
    assert "Traceback" not in run.stderr


def test_a_run_stopped_on_a_refused_event_counts_the_batch_it_stopped_in(skewed_sandbox, tmp_path):
    """on_rejected: fail, one request at a time: the API refuses one event of the second batch
    and the run stops there. The batch's other events were accepted (sent), the refused one
    is rejected; nothing is left unsettled, and STATE stays before the refused event."""
    stale = now_ms() - 2 * 3600 * 1000  # stale on the sandbox's clock, not on the target's
    lines = [schema("conversions", {"id": {}}, ["id"]), state({"pos": 0})]
    for i in range(30):
        if i == 15:
            lines.append(
                record("conversions", {"id": "e15", "type": "lead_created", "timestamp_ms": stale})
            )
        else:
            lines += conversions(1, start=i)
        if i % 10 == 9:
            lines.append(state({"pos": i + 1}))
    config = config_for(
        skewed_sandbox.url, tmp_path, batch_size=10, max_concurrent_requests=1, on_rejected="fail"
    )
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "rejected at stage api" in run.stderr
    assert "conversions: received=20 sent=19 rejected=1 (api=1)" in run.stderr
    assert "unsettled" not in run.stderr
    assert sorted(e["id"] for e in skewed_sandbox.events(PIXEL_ID)) == sorted(
        f"e{i}" for i in range(20) if i != 15
    )
    assert run.states == [{"pos": 0}, {"pos": 10}]
    assert "Traceback" not in run.stderr


def test_a_run_stopped_by_a_bad_record_counts_and_bookmarks_what_was_already_delivered(
    sandbox, tmp_path
):
    """on_rejected: fail and a record that cannot be mapped, while the batch before it is in
    flight: the run waits for that batch's answer, counts it as sent and writes the STATE
    past it; the record in the open batch is unsettled. (It used to say sent=0, requests=0,
    and write no STATE, though the API had stored the batch.)"""
    sandbox.set_faults(FaultConfig(latency_ms=300))  # the batch is still in flight at the stop
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(2), state({"s": 1})]
    lines += conversions(1, start=2)
    lines.append(
        record(
            "conversions",
            {"id": "bad", "type": "order_created", "timestamp_ms": now_ms(), "amount": "x"},
        )
    )
    lines.append(state({"s": 2}))
    config = config_for(sandbox.url, tmp_path, batch_size=2, on_rejected="fail")
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "rejected at stage mapping" in run.stderr
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["e0", "e1"]
    assert (
        "Run summary: received=4 sent=2 validated=0 duplicate=0 filtered=0 skipped_stream=0 "
        "skipped_unmatchable=0 rejected=1 unsettled=1 requests=1" in run.stderr
    )
    assert run.states == [{"s": 1}]
    assert "Traceback" not in run.stderr


def test_a_failed_run_ends_with_its_counts_as_metric_lines_too(skewed_sandbox, tmp_path):
    """README: "At the end of every run, match coverage says ..., also as METRIC lines". A run
    that failed wrote its summary line alone: a dashboard built on the METRIC lines never saw
    what such a run sent or rejected. (on_rejected: fail, and an event the API refuses.)"""
    stale = now_ms() - 2 * 3600 * 1000  # stale on the sandbox's clock, not on the target's
    bad = record("conversions", {"id": "bad", "type": "lead_created", "timestamp_ms": stale})
    lines = [schema("conversions", {"id": {}}, ["id"]), *conversions(3), bad, state({"p": 4})]
    config = config_for(
        skewed_sandbox.url, tmp_path, batch_size=1, max_concurrent_requests=1, on_rejected="fail"
    )
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "Stopped." in run.stderr
    metrics = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line
    ]
    records = {
        (m["tags"]["stream"], m["tags"]["outcome"]): m["value"]
        for m in metrics
        if m["metric"] == "capi_records"
    }
    assert records[("conversions", "rejected")] == 1
    assert records[("conversions", "sent")] == 3
    coverage = [m for m in metrics if m["metric"] == "capi_match_coverage"]
    assert {"stream": "conversions", "identifier": "events"} in [m["tags"] for m in coverage]
    assert "Match coverage: conversions: 3 events" in run.stderr
