"""Check that the floors send what the target sends: the same events, event for event.

    python benchmarks/agree.py [--records 3000]

For each record shape of benchmarks/generate.py, runs the target (tap-shopify/orders preset,
the benchmark's settings) against a sandbox with a request log, and compares every event it sent
with the events the plain loop (plain_loop.py) and the raw floor (raw_floor.py) build for the same
records. A floor that sends less, or something else, is not a floor: run.py's ratios would lie.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

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


def floor_events(source: Path) -> tuple[list[dict], list[dict]]:
    plain, raw = [], []
    for line in source.read_bytes().splitlines():
        message = plain_loop._DECODER.decode(line)
        if message.type != "RECORD" or message.record is None or message.record.test:
            continue
        plain.append(json.loads(json.dumps(plain_loop.to_event(message.record))))
        record = json.loads(line, parse_float=Decimal)["record"]
        raw.append(json.loads(json.dumps(raw_floor.to_event(record), default=str)))
    return plain, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="capi-agree-") as tmp:
        workdir = Path(tmp)
        for shape in ("full", "sparse"):
            source = workdir / f"{shape}.singer"
            subprocess.run(
                [sys.executable, str(HERE / "generate.py"), "--records", str(args.records),
                 "--shape", shape, "--output", str(source)],
                check=True, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            sent = target_events(source, workdir)
            plain, raw = floor_events(source)
            for name, events in (("plain loop", plain), ("raw floor", raw)):
                same = sum(a == b for a, b in zip(sent, events, strict=False))
                ok = same == len(sent) == len(events)
                failed |= not ok
                print(
                    f"{shape:>6}: {name:<10} {same:,} of {len(sent):,} target events equal "
                    f"({len(events):,} built){'' if ok else '  <-- DIFFERENT'}"
                )
                if not ok:
                    first = next(
                        i for i, (a, b) in enumerate(zip(sent, events, strict=False)) if a != b
                    )
                    print(f"  target: {sent[first]}\n  {name}: {events[first]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
