"""Instructions a worker process spends on one record, step by step, counted by valgrind.

    .venv/bin/python benchmarks/instructions.py                     # sparse orders, this tree
    .venv/bin/python benchmarks/instructions.py --shape full --against HEAD~3

Wall-clock rates on a shared 2-core machine move 15-40% from one run to the next (RESULTS.md),
more than most single changes to the hot path are worth. Instruction counts do not move: this
runs the worker's own code (parallel/prepared.py `RecordPreparer`, as worker.py does) on a
generated stream under `valgrind --tool=callgrind`, once over the first 1,000 records and once
over the first 3,000, and reports the difference per record, so start-up and imports are left
out. Each step adds to the one before it: decode, then the builder, then the contract check,
then the rest of a worker's work on a line, then the pickled answer. The plain loop
(plain_loop.py, the benchmarks' floor) is counted the same way on the same records: its
decoding, then its event. With `--against REV` the same runs are made on that git revision (a
temporary worktree) and the ratios printed beside.

Instructions are not time (a cache miss costs more than an add), so this says which of two
versions does less work on the same input, not how fast either runs: run.py measures that.
Counts repeat to a few instructions a record for one tree; between two trees, a step whose code
did not change can still move by ~1% (the heap is laid out otherwise), so read smaller
differences as none.
Needs valgrind (Debian: `apt-get install valgrind`); about 25 s a run, 14 runs a revision.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
STEPS = ["decode", "build", "check", "prepare", "answer"]
# The plain loop (plain_loop.py) of the same tree on the same records: decode, then the event.
PLAIN_STEPS = ["plain loop: decode", "plain loop: + the event"]
CHUNK_LINES = 500
FIRST, LAST = 2, 6  # chunks of 500: records 1,000-3,000 minus records 1-1,000

# The measured program: one worker's steps over the first `chunks` chunks of the stream.
_WORKER = """
import gc, os, pickle, sys
sys.path.insert(0, os.environ["CAPI_ROOT"])
import orjson
from target_openai_capi.contract import built_event_problem
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping
from target_openai_capi.parallel.prepared import PlanSpec, RecordPreparer
from target_openai_capi.reading.line_chunks import split_lines
from target_openai_capi.reading.schema_check import without_patterns
from target_openai_capi.reading.schema_paths import prune_schema

path, chunks, step = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, "rb").read().split(b"\\n")
schema = orjson.loads(lines[0])["schema"]
records = [line for line in lines if line.startswith(b'{"type":"RECORD"')]
entry = {"preset": "tap-shopify/orders"}
reads = {**(compile_stream_mapping("orders", entry).reads or {}), "id": True}
spec = PlanSpec("orders", entry, ("id",), reads, schema,
                prune_schema(without_patterns(schema), reads), False, "plural", "US")
preparer = RecordPreparer()
preparer.set_plan("orders", 1, spec)
plan = preparer.plans["orders"]
size = CHUNK_LINES
gc.freeze()
for start in range(0, chunks * size, size):
    chunk = split_lines(b"\\n".join(records[start:start + size]) + b"\\n")
    if step == "decode":
        for line in chunk:
            preparer.lines.decode(line)
    elif step == "build":
        for line in chunk:
            plan.assemble(preparer.lines.decode(line).record, None)
    elif step == "check":
        for line in chunk:
            event = plan.assemble(preparer.lines.decode(line).record, None)[0]
            built_event_problem(event, normalised_user=True)
    else:
        answers = preparer.prepare_all(chunk)
        if any(answer is None for answer in answers):
            sys.exit("a record was not prepared: the counts would not be of the usual path")
        if step == "answer":
            pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL)
""".replace("CHUNK_LINES", str(CHUNK_LINES))


# The measured floor: the plain loop's decoding and mapping of the first `chunks` chunks.
_PLAIN = """
import inspect, os, sys
sys.path.insert(0, os.path.join(os.environ["CAPI_ROOT"], "benchmarks"))
import plain_loop

path, chunks, step = sys.argv[1], int(sys.argv[2]), sys.argv[3]
records = [line for line in open(path, "rb").read().split(b"\\n")
           if line.startswith(b'{"type":"RECORD"')][:chunks * CHUNK_LINES]
# (to_event took the record itself before it took the message)
by_record = next(iter(inspect.signature(plain_loop.to_event).parameters)) == "order"
skip = getattr(plain_loop, "Skip", ())
for line in records:
    message = plain_loop._DECODER.decode(line)
    if step == PLAIN_STEPS[1]:
        try:
            plain_loop.to_event(message.record if by_record else message)
        except skip:
            pass
""".replace("CHUNK_LINES", str(CHUNK_LINES)).replace("PLAIN_STEPS", repr(PLAIN_STEPS))


def instructions(root: Path, stream: Path, chunks: int, step: str) -> int | None:
    """Instructions of one run of the measured program (callgrind's total); None when an
    older plain loop cannot map these records (it knew only the full and sparse shapes)."""
    program = _PLAIN if step in PLAIN_STEPS else _WORKER
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         PY, "-c", program, str(stream), str(chunks), step],
        capture_output=True, text=True, env={**os.environ, "CAPI_ROOT": str(root)}, check=False,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if (done.returncode != 0 or found is None) and step in PLAIN_STEPS:
        return None
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({step}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_record(root: Path, stream: Path) -> dict[str, int | None]:
    """Instructions a record for each step, cumulative (each includes the ones before)."""
    records = (LAST - FIRST) * CHUNK_LINES
    counts: dict[str, int | None] = {}
    for step in (*STEPS, *PLAIN_STEPS):
        last, first = (
            instructions(root, stream, LAST, step),
            instructions(root, stream, FIRST, step),
        )
        counts[step] = None if last is None or first is None else (last - first) // records
    return counts


def git(*args: str) -> None:
    subprocess.run(["git", "-C", str(HERE.parent), *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # (not varied orders: a worker leaves the ones it rejects to the main process, so its
    # count would leave part of their work out)
    parser.add_argument("--shape", choices=["sparse", "full"], default="sparse")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", metavar="REV", help="also count at this git revision")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="capi-instructions-") as tmp:
        stream = Path(tmp) / "stream.singer"
        sys.path.insert(0, str(HERE))
        import generate

        now = dt.datetime.now(dt.timezone.utc)  # (events older than 7 days would be rejected)
        stream.write_bytes(
            b"\n".join(generate.stream_lines(LAST * CHUNK_LINES, args.seed, now, args.shape))
        )
        roots = {"this tree": HERE.parent}
        if args.against:
            roots[args.against] = Path(tmp) / "against"
            git("worktree", "add", "--detach", str(roots[args.against]), args.against)
        try:
            counts = {name: per_record(root, stream) for name, root in roots.items()}
        finally:
            if args.against:
                git("worktree", "remove", "--force", str(roots[args.against]))
    print(f"instructions a record, {args.shape} orders (seed {args.seed})")
    names = list(counts)
    print(f"  {'step (each includes those above)':<36}" + "".join(f"{n:>16}" for n in names)
          + ("   ratio" if len(names) == 2 else ""))  # fmt: skip
    for step in (*STEPS, *PLAIN_STEPS):
        row = [counts[name][step] for name in names]
        ratio = f"   {row[0] / row[1]:.3f}" if len(row) == 2 and None not in row else ""
        shown = "".join(f"{value:>16,}" if value is not None else f"{'-':>16}" for value in row)
        print(f"  {step:<36}" + shown + ratio)


if __name__ == "__main__":
    main()
