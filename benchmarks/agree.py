"""Check that the floors send what the target sends: the same events, event for event.

    python benchmarks/agree.py [--records 3000]

For each record shape of benchmarks/generate.py, runs the target (tap-shopify/orders preset,
the benchmark's settings) against a sandbox with a request log, and compares every event it sent
with the events the plain loop (plain_loop.py) and the raw floor (raw_floor.py) build for the same
records. A floor that sends less, or something else, is not a floor: run.py's ratios would lie.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import floor_rules  # noqa: E402
import plain_loop  # noqa: E402
import raw_floor  # noqa: E402
import run  # noqa: E402


def target_events(source: Path, workdir: Path) -> list[dict]:
    log = workdir / "requests.jsonl"
    log.unlink(missing_ok=True)
    commands = run.Commands(workdir)
    with run.sandbox() as sb:
        command = commands.target(sb, request_log_path=str(log))
        with source.open("rb") as stdin:
            done = subprocess.run(command, stdin=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode()[-2000:])
    events = []
    for line in log.read_text().splitlines():
        events += json.loads(line)["body"]["events"]
    return events


def compare(sent: list[dict], built: list[dict]) -> tuple[int, tuple[Any, Any] | None]:
    """How many built events equal the target's event of the same id, and the first pair that
    differs (None for an event on one side only), or None when the two sets are the same.
    Matched by id: the target's batches are in flight together and reach the server in any order."""
    by_id = {event["id"]: event for event in sent}
    same, difference = 0, None
    for event in built:
        theirs = by_id.pop(event["id"], None)
        if theirs == event:
            same += 1
        elif difference is None:
            difference = (theirs, event)
    if difference is None and by_id:
        difference = (next(iter(by_id.values())), None)
    return same, difference


def floor_events(source: Path) -> tuple[list[dict], list[dict]]:
    """The events the plain loop and the raw floor build from `source` (none for a record they
    drop)."""
    plain, raw = [], []
    for line in source.read_bytes().splitlines():
        with contextlib.suppress(floor_rules.Skip):
            event = plain_loop.record_event(line)
            if event is not None:
                plain.append(json.loads(json.dumps(event)))
        with contextlib.suppress(floor_rules.Skip):
            event = raw_floor.event_from_line(line)
            if event is not None:
                raw.append(json.loads(json.dumps(event, default=str)))
    return plain, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="capi-agree-") as tmp:
        workdir = Path(tmp)
        for shape in ("full", "sparse", "varied"):
            source = workdir / f"{shape}.singer"
            subprocess.run(
                [sys.executable, str(HERE / "generate.py"), "--records", str(args.records),
                 "--shape", shape, "--output", str(source)],
                check=True, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            sent = target_events(source, workdir)
            plain, raw = floor_events(source)
            for name, events in (("plain loop", plain), ("raw floor", raw)):
                same, difference = compare(sent, events)
                ok = difference is None
                failed |= not ok
                print(
                    f"{shape:>6}: {name:<10} {same:,} of {len(sent):,} target events equal "
                    f"({len(events):,} built){'' if ok else '  <-- DIFFERENT'}"
                )
                if difference is not None:
                    print(f"  target: {difference[0]}\n  {name}: {difference[1]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
