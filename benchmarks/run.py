"""Throughput, concurrency and memory of target-openai-capi next to its floors, in one run.

    .venv/bin/python benchmarks/run.py                  # about 3 minutes on a 2-core machine
    .venv/bin/python benchmarks/run.py --records 50000 --repeat 5
    .venv/bin/python benchmarks/run.py --memory         # adds 100k vs 1M records (~8 more minutes)
    .venv/bin/python benchmarks/run.py --profile        # adds a cProfile of the target
    .venv/bin/python benchmarks/run.py --variants nogc  # + the target without its collector

Every contender runs as its own process on the same generated input (benchmarks/generate.py)
read from stdin, against a fresh sandbox (the local Conversions API, `openai-capi-sandbox`) in
its own process on a free loopback port. Wall time runs from process start to exit, so it includes
start-up; each contender's start-up is also measured on an input with no records, and the
"steady" rate is records / (wall - start-up). Peak RSS is the child's ru_maxrss from
os.wait4() (the kernel's high-water mark of that one process: exact, no polling); "all MiB" is
the peak PSS of the process and its worker processes summed, sampled from /proc every 20 ms
(TreeMemory; PSS, since forked workers share pages with the main process). Contenders
run in interleaved rounds; the table shows the median run. `--variants` adds the target with
proposed hot-path changes applied in-process (benchmarks/variants.py) as another contender.
See benchmarks/README.md for what each contender is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
PIXEL_ID = "px_benchmark"
API_KEY = "sk-svcacct-benchmark-0000"
_CLI = Path(PY).with_name("target-openai-capi")
TARGET_CMD = [str(_CLI)] if _CLI.exists() else [PY, "-m", "target_openai_capi"]
_SANDBOX_CLI = Path(PY).with_name("openai-capi-sandbox")
SANDBOX_CMD = (
    [str(_SANDBOX_CLI)] if _SANDBOX_CLI.exists() else [PY, "-m", "target_openai_capi.sandbox.cli"]
)
SUMMARY = re.compile(r"Run summary: received=(\d+) sent=(\d+).*? rejected=(\d+)")
PROPOSED = ""  # every proposed change has landed; `--variants nogc` measures the collector


@dataclass
class Run:
    """One process run: how long, how much memory, and what arrived."""

    name: str
    records: int
    wall_s: float
    peak_rss_mib: float
    accepted: int
    requests: int
    max_in_flight: int
    sent: int | None = None  # from the target's summary line
    rejected: int | None = None
    # The whole process tree (the target and its worker processes), sampled: see TreeMemory.
    tree_mib: float = 0.0
    # CPU time (user + system) of the process and the children it waited for (its workers).
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.wall_s


@dataclass
class Contender:
    """A command to benchmark."""

    key: str
    name: str
    command: Callable[[Sandbox], list[str]]
    records_limit: int | None = None  # run on a prefix of the input (for very slow contenders)
    runs: list[Run] = field(default_factory=list)
    startup_s: float = 0.0

    def median(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.wall_s)
        return ordered[(len(ordered) - 1) // 2]

    def steady(self) -> float:
        run = self.median()
        return run.records / max(run.wall_s - self.startup_s, 1e-9)


# --- processes ---------------------------------------------------------------------------------


def run_process(
    name: str,
    command: list[str],
    stdin: Path | list[str],
    records: int,
    sandbox: Sandbox,
    workdir: Path,
) -> Run:
    """Run command with stdin from a file (or a producer command's stdout); measure it."""
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    producer = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        if isinstance(stdin, Path):
            with open(stdin, "rb") as source:
                proc = subprocess.Popen(command, stdin=source, stdout=out, stderr=err, env=env)
        else:
            producer = subprocess.Popen(stdin, stdout=subprocess.PIPE, env=env)
            assert producer.stdout is not None
            proc = subprocess.Popen(command, stdin=producer.stdout, stdout=out, stderr=err, env=env)
            producer.stdout.close()  # the target holds the only reading end now
        tree = TreeMemory(proc.pid)
        # wait4 gives this one child's rusage: ru_maxrss is its peak RSS in KiB (Linux), or a
        # waited-for child's if larger (its worker processes').
        _, status, usage = os.wait4(proc.pid, 0)
        tree.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if producer is not None:
        producer.wait()
    stderr = err_path.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-15:])
        raise SystemExit(f"{name} failed with exit code {proc.returncode}:\n{tail}")
    stats = sandbox.stats()
    run = Run(
        name=name,
        records=records,
        wall_s=wall,
        peak_rss_mib=usage.ru_maxrss / 1024,
        tree_mib=tree.peak_mib or usage.ru_maxrss / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        accepted=stats["accepted"],
        requests=stats["requests"],
        max_in_flight=stats["max_in_flight"],
    )
    match = SUMMARY.search(stderr)
    if match:
        run.sent, run.rejected = int(match.group(2)), int(match.group(3))
    return run


class TreeMemory:
    """The peak of a process's memory plus its children's (the target's worker processes), read
    from /proc every 20 ms in a thread: a sum no rusage gives. Each process counts its PSS (its
    own pages, and its share of pages it shares): forked workers share the main process's pages,
    which a sum of RSS would count once a process. Sampled, so a peak between two reads can be
    missed; the process's own peak RSS (wait4) is exact."""

    def __init__(self, pid: int) -> None:
        self.peak_mib = 0.0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            total = sum(self._pss(pid) for pid in [self._pid, *self._children(self._pid)])
            self.peak_mib = max(self.peak_mib, total / 2**20)

    @staticmethod
    def _pss(pid: int) -> int:
        """The process's proportional set size in bytes (its RSS where the kernel has no PSS)."""
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                return [int(child) for child in children.read().split()]
        except OSError:
            return []

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class Sandbox:
    """The local Conversions API (`openai-capi-sandbox`) in its own process, on a free port.

    Not in this process: a child's ru_maxrss starts at its parent's peak RSS (the kernel copies
    the parent's high-water mark into the child at exec), so this process stays small (standard
    library only) to keep every contender's peak RSS its own.
    """

    def __init__(
        self, latency_ms: int = 0, db_path: str | None = None, *, counting: bool = False
    ) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log")  # noqa: SIM115
        command = [*SANDBOX_CMD, "--port", "0", "--quiet", "--api-key", API_KEY,
                   "--pixel-id", PIXEL_ID, "--latency-ms", str(latency_ms)]  # fmt: skip
        if db_path:
            command += ["--db", db_path]
        if counting:  # a server that only counts (counting_server.py says why)
            command = [
                PY,
                str(HERE / "counting_server.py"),
                "--port",
                "0",
                "--latency-ms",
                str(latency_ms),
            ]
        self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 30
        while (
            match := re.search(rb"listening on (\S+)", Path(self._log.name).read_bytes())
        ) is None:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the sandbox did not start: {Path(self._log.name).read_text()}")
            time.sleep(0.02)
        self.url = match.group(1).decode()
        self.base_url = self.url.rsplit("/v1/", 1)[0]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/sandbox/stats", timeout=30) as response:
            stats: dict[str, Any] = json.load(response)
        return stats

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)
        self._log.close()


def sandbox(latency_ms: int = 0, db_path: str | None = None, *, counting: bool = False) -> Sandbox:
    """A fresh sandbox for one run (so every run starts with an empty store); `counting`: the
    counting server instead, which only parses and counts."""
    return Sandbox(latency_ms, db_path, counting=counting)


class Commands:
    """Command lines of the contenders; configs are written to the work directory."""

    def __init__(self, workdir: Path, streams: tuple[str, ...] = ("orders",)) -> None:
        self.workdir = workdir
        self.streams = streams  # the input's streams, each configured with the preset
        self._count = 0

    def config(self, config: dict[str, Any]) -> str:
        self._count += 1
        path = self.workdir / f"config-{self._count}.json"
        path.write_text(json.dumps(config))
        return str(path)

    def target(self, sb: Sandbox, variants: str = "", **settings: Any) -> list[str]:
        """The target with the tap-shopify/orders preset (hashing, money, contents)."""
        config = self.config(
            {
                "pixel_id": PIXEL_ID,
                "api_key": API_KEY,
                "api_url": sb.url,
                "default_phone_region": "US",
                "streams": {name: {"preset": "tap-shopify/orders"} for name in self.streams},
                **settings,
            }
        )
        if variants:
            return [PY, str(HERE / "variants.py"), "--variants", variants, "--config", config]
        return [*TARGET_CMD, "--config", config]

    def plain(self, sb: Sandbox) -> list[str]:
        return [
            PY, str(HERE / "plain_loop.py"),
            "--api-url", sb.url, "--pixel-id", PIXEL_ID, "--api-key", API_KEY,
        ]  # fmt: skip

    def raw(self, sb: Sandbox) -> list[str]:
        return [
            PY, str(HERE / "raw_floor.py"),
            "--api-url", sb.url, "--pixel-id", PIXEL_ID, "--api-key", API_KEY,
        ]  # fmt: skip

    def framework(self, config: dict[str, Any]) -> list[str]:
        return [PY, str(HERE / "framework_floor.py"), "--config", self.config(config)]


# --- inputs ------------------------------------------------------------------------------------


def package_version() -> str:
    """The commit of the package under test, '+changes' when its files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True,
                              text=True, check=False)  # fmt: skip
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "target_openai_capi") else "")


def generate(records: int, path: Path, seed: int, shape: str = "full") -> Path:
    if not path.exists():
        started = time.perf_counter()
        command = [PY, str(HERE / "generate.py"), "--records", str(records), "--seed", str(seed),
                   "--shape", shape]  # fmt: skip
        subprocess.run([*command, "--output", str(path)], check=True, stderr=subprocess.DEVNULL)
        print(
            f"  generated {records:,} {shape} records in {time.perf_counter() - started:.1f} s "
            f"({path.stat().st_size / records / 1024:.1f} KiB a record)"
        )
    return path


_TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"(\w+)"')


def _kind(line: bytes) -> str | None:
    """A Singer line's type: read from its head where it comes first, as taps write it (this
    process stays small: no full parse of every record), else from the whole line."""
    match = _TYPE_FIRST.match(line)
    if match:
        return match.group(1).decode()
    try:
        message = json.loads(line)
    except ValueError:
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def input_streams(source: Path) -> tuple[tuple[str, ...], int]:
    """The streams of an input's SCHEMA lines (each configured with the preset, as the floors
    map every record as an order) and how many RECORD lines it holds (what its rates count)."""
    streams: dict[str, None] = {}
    records = 0
    with open(source, "rb") as lines:
        for line in lines:
            kind = _kind(line)
            if kind == "RECORD":
                records += 1
            elif kind == "SCHEMA":
                try:
                    name = json.loads(line).get("stream")
                except (ValueError, AttributeError):  # (the target rejects such a line)
                    continue
                if isinstance(name, str):
                    streams[name] = None
    return tuple(streams) or ("orders",), records


def prefix(source: Path, records: int, path: Path) -> Path:
    """The first `records` RECORD lines of source, with the SCHEMA and STATE lines among them."""
    with open(source, "rb") as src, open(path, "wb") as out:
        seen = 0
        for line in src:
            if _kind(line) == "RECORD":
                if seen == records:
                    break
                seen += 1
            out.write(line)
    return path


# --- throughput --------------------------------------------------------------------------------


def contenders(args: argparse.Namespace, commands: Commands) -> list[Contender]:
    field_list = [
        Contender("plain", "plain loop (msgspec structs + requests)", commands.plain),
        Contender("raw", "raw floor (json + requests)", commands.raw),
        Contender(
            "fw-default",
            "framework floor, defaults",
            lambda _: commands.framework({}),
            records_limit=args.default_floor_records,
        ),
        Contender(
            "fw-novalidate",
            "framework floor, validate_records: false",
            lambda _: commands.framework({"validate_records": False}),
        ),
        Contender("target", "target-openai-capi, defaults", commands.target),
    ]
    if args.variants:
        field_list.append(
            Contender(
                "proposed",
                f"target + proposed ({args.variants})",
                lambda sb: commands.target(sb, args.variants),
            )
        )
    return field_list


def throughput(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every contender on every record shape, in interleaved rounds (round 1: every contender
    on every shape, then round 2, ...), so a slow spell of the machine hits them all alike."""
    sources = {
        shape: generate(
            args.records, workdir / f"orders-{shape}-{args.records}.singer", args.seed, shape
        )
        for shape in args.shapes
    }
    for name in args.input:
        label = Path(name).name
        while label in sources:  # (two inputs of the same file name)
            label += "'"
        sources[label] = Path(name).resolve()
    shapes = list(sources)
    print(
        f"\n== Throughput: {args.records:,} Shopify orders per shape ({', '.join(args.shapes)})"
        f"{''.join(f', {p} as given' for p in args.input)}, {args.repeat} interleaved rounds =="
    )
    inputs: dict[str, dict[str, Path]] = {}
    counts: dict[str, int] = {}
    fields: dict[str, list[Contender]] = {}
    for shape, main_input in sources.items():
        streams, counts[shape] = input_streams(main_input)
        inputs[shape] = {
            "main": main_input,
            "schema": prefix(main_input, 0, workdir / f"schema-only-{shape}.singer"),
            "slow": prefix(
                main_input,
                args.default_floor_records,
                workdir / f"prefix-{shape}-{args.default_floor_records}.singer",
            ),
        }
        (workdir / shape).mkdir(exist_ok=True)
        fields[shape] = contenders(args, Commands(workdir / shape, streams))
        for contender in fields[shape]:
            with sandbox(counting=True) as sb:
                command = contender.command(sb)
                run = run_process(contender.name, command, inputs[shape]["schema"], 0, sb, workdir)
            contender.startup_s = run.wall_s
    for round_number in range(args.repeat):
        for shape in shapes:
            for contender in fields[shape]:
                if contender.records_limit is not None and round_number >= args.slow_repeat:
                    continue
                source = inputs[shape]["slow" if contender.records_limit else "main"]
                records = min(contender.records_limit or counts[shape], counts[shape])
                with sandbox(counting=True) as sb:
                    run = run_process(
                        contender.name, contender.command(sb), source, records, sb, workdir
                    )
                contender.runs.append(run)
                print(
                    f"  round {round_number + 1} {shape:>6} {contender.name:<50} "
                    f"{run.rate:>7,.0f} rec/s {run.peak_rss_mib:>5.0f} MiB ({run.wall_s:.1f} s)"
                )
    results = {}
    for shape in shapes:
        size = _record_kib(inputs[shape]["main"])
        print(f"\n-- {shape} records ({size:.1f} KiB each) --")
        results[shape] = {"record_kib": round(size, 2), **report_throughput(fields[shape])}
    return results


def _record_kib(path: Path) -> float:
    sizes = [len(line) for line in path.open("rb") if _kind(line) == "RECORD"]
    return sum(sizes) / max(len(sizes), 1) / 1024


def _round_ratios(ours: Contender, floor: Contender) -> list[float]:
    """Steady-rate ratio of each round where both ran (runs are in round order)."""
    return [
        (a.records / max(a.wall_s - ours.startup_s, 1e-9))
        / (b.records / max(b.wall_s - floor.startup_s, 1e-9))
        for a, b in zip(ours.runs, floor.runs, strict=False)
    ]


def report_throughput(field_list: list[Contender]) -> dict[str, Any]:
    print()
    header = (
        f"{'contender':<50} {'runs':>4} {'records':>7} {'rec/s':>7} {'steady':>7} "
        f"{'start s':>7} {'CPU µs/rec':>10} {'peak MiB':>8} {'all MiB':>8} {'accepted':>8}"
    )
    print(header)
    print("-" * len(header))
    table: dict[str, Any] = {}
    for c in field_list:
        run = c.median()
        accepted = f"{run.accepted:,}" if run.requests else "-"
        print(
            f"{c.name:<50} {len(c.runs):>4} {run.records:>7,} {run.rate:>7,.0f} "
            f"{c.steady():>7,.0f} {c.startup_s:>7.2f} {run.cpu_s / run.records * 1e6:>10,.0f} "
            f"{run.peak_rss_mib:>8.0f} {run.tree_mib:>8.0f} {accepted:>8}"
        )
        table[c.key] = {
            "name": c.name,
            "runs": len(c.runs),
            "records": run.records,
            "records_per_s": round(run.rate),
            "steady_records_per_s": round(c.steady()),
            "startup_s": round(c.startup_s, 2),
            "peak_rss_mib": round(run.peak_rss_mib, 1),
            "cpu_us_per_record": round(run.cpu_s / run.records * 1e6, 1),
            "tree_pss_mib": round(run.tree_mib, 1),
            "accepted": run.accepted,
            "requests": run.requests,
            "sent": run.sent,
            "rejected": run.rejected,
            "wall_s_of_each_run": [round(r.wall_s, 2) for r in c.runs],
        }
    by_key = {c.key: c for c in field_list}
    ratios: dict[str, Any] = {}
    print("\nratios of steady rates (with start-up included in parentheses):")
    for key in ("target", "proposed"):
        if key not in by_key:
            continue
        ours = by_key[key]
        for floor_key in ("plain", "raw", "fw-default", "fw-novalidate"):
            floor = by_key[floor_key]
            steady, wall = ours.steady() / floor.steady(), ours.median().rate / floor.median().rate
            rounds = sorted(_round_ratios(ours, floor))
            ratios[f"{key} / {floor_key}"] = {
                "steady": round(steady, 2),
                "wall": round(wall, 2),
                "each_round": [round(r, 2) for r in rounds],
            }
            label = f"{ours.name} / {floor.name}"
            spread = f"rounds {rounds[0]:.2f}-{rounds[-1]:.2f}x" if len(rounds) > 1 else ""
            print(f"  {label:<92} {steady:>6.2f}x  ({wall:.2f}x)  {spread}")
        run = ours.median()
        print(
            f"  ({ours.name}: sent={run.sent} rejected={run.rejected}; the sandbox accepted "
            f"{run.accepted:,} events in {run.requests} requests)"
        )
    return {"contenders": table, "ratios": ratios}


# --- concurrency -------------------------------------------------------------------------------


def concurrency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Requests in flight against one at a time, with `--latency-ms` added to every request.

    The figures come from the counting server (counting_server.py, with the same latency): the
    real API's work is done on its own machines, not on the cores the target runs on, and the
    validating sandbox spends 3.4-3.7 s of CPU on 20,000 events on them (half of a 7 s run at
    16 in flight, on 2 cores). The sandbox's figures at 1 and 16 in flight follow, for comparison.
    """
    records = args.concurrency_records
    print(f"\n== Concurrency: {records:,} records, {args.latency_ms} ms a request ==")
    source = generate(records, workdir / f"orders-{records}.singer", args.seed)
    schema_only = prefix(source, 0, workdir / "concurrency-schema-only.singer")
    commands = Commands(workdir)
    results: dict[str, Any] = {}
    for key, variants in [("target", ""), ("proposed", args.variants)]:
        if key == "proposed" and not variants:
            continue
        with sandbox() as sb:
            startup = run_process("start-up", commands.target(sb, variants), schema_only, 0, sb,
                                  workdir).wall_s  # fmt: skip
        name = "target-openai-capi" if not variants else f"target + proposed ({variants})"
        print(f"  {name} (start-up {startup:.2f} s; steady = records / (wall - start-up))")
        # 16 only where it can matter: 50-event requests, 100 ms each.
        plans = [
            ("counting server", True, 50, (1, 4, 8, 16)),
            ("counting server", True, 1000, (1, 4, 8)),
            ("validating sandbox", False, 50, (1, 16)),
        ]
        for server, counting, batch_size, limits in plans:
            print(f"   against the {server}:")
            label = "" if counting else " sandbox"
            rates: dict[int, tuple[float, float]] = {}
            for limit in limits:
                with sandbox(latency_ms=args.latency_ms, counting=counting) as sb:
                    command = commands.target(
                        sb, variants, batch_size=batch_size, max_concurrent_requests=limit
                    )
                    run = run_process(f"{key} {batch_size}/{limit}", command, source, records, sb,
                                      workdir)  # fmt: skip
                steady = records / max(run.wall_s - startup, 1e-9)
                rates[limit] = (run.rate, steady)
                results[f"{key}{label} batch_size={batch_size} max_concurrent_requests={limit}"] = {
                    "records_per_s": round(run.rate),
                    "steady_records_per_s": round(steady),
                    "wall_s": round(run.wall_s, 2),
                    "cpu_s": round(run.cpu_s, 2),
                    "requests": run.requests,
                    "max_in_flight": run.max_in_flight,
                    "accepted": run.accepted,
                }
                default = " (default)" if limit == 4 else ""
                print(
                    f"    batch_size {batch_size:>4}, max_concurrent_requests {limit:>2}"
                    f"{default:<10} {run.rate:>6,.0f} rec/s (steady {steady:>6,.0f}) "
                    f"{run.wall_s:>5.1f} s, CPU {run.cpu_s:>4.1f} s, {run.requests:>4} requests, "
                    f"max_in_flight {run.max_in_flight:>2}, accepted {run.accepted:,}"
                )
            for limit in sorted(rates)[1:]:
                wall = rates[limit][0] / rates[1][0]
                steady = rates[limit][1] / rates[1][1]
                results[f"{key}{label} batch_size={batch_size} ratio {limit}/1"] = {
                    "steady": round(steady, 2),
                    "wall": round(wall, 2),
                }
                print(f"      {limit:>2} in flight / 1 in flight: {steady:.2f}x steady, "
                      f"{wall:.2f}x with start-up")  # fmt: skip
    return results


# --- memory ------------------------------------------------------------------------------------


def memory(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print("\n== Memory: peak RSS of the target, the generator piped into its stdin ==")
    commands = Commands(workdir)
    results: dict[str, Any] = {}
    for key, variants in [("target", ""), ("proposed", args.variants)]:
        if key == "proposed" and not variants:
            continue
        print(f"  {'target-openai-capi' if not variants else f'target + proposed ({variants})'}")
        peaks, own_peaks = [], []
        for records in args.memory_records:
            producer = [PY, str(HERE / "generate.py"), "--records", str(records),
                        "--seed", str(args.seed)]  # fmt: skip
            db = workdir / f"sandbox-{key}-{records}.db"  # 1M events would not fit in memory
            with sandbox(db_path=str(db)) as sb:
                run = run_process(f"{key} {records}", commands.target(sb, variants), producer,
                                  records, sb, workdir)  # fmt: skip
            db.unlink(missing_ok=True)
            peaks.append(run.tree_mib)
            own_peaks.append(run.peak_rss_mib)
            results[f"{key} {records}"] = {
                "peak_rss_mib": round(run.peak_rss_mib, 1),
                "tree_pss_mib": round(run.tree_mib, 1),
                "wall_s": round(run.wall_s, 1),
                "records_per_s": round(run.rate),
                "accepted": run.accepted,
            }
            print(
                f"    {records:>9,} records: peak RSS {run.peak_rss_mib:6.1f} MiB "
                f"(PSS with its workers {run.tree_mib:6.1f} MiB), "
                f"{run.wall_s:6.1f} s ({run.rate:,.0f} rec/s, generator sharing the CPU), "
                f"accepted {run.accepted:,}"
            )
        if len(peaks) >= 2:
            growth = peaks[-1] / peaks[0] - 1
            own_growth = own_peaks[-1] / own_peaks[0] - 1
            results[f"{key} growth"] = round(growth, 3)
            results[f"{key} own growth"] = round(own_growth, 3)
            print(
                f"    at {args.memory_records[-1]:,} vs {args.memory_records[0]:,} records: "
                f"peak RSS {own_growth:+.1%}, PSS with workers {growth:+.1%}"
            )
    return results


# --- profile -----------------------------------------------------------------------------------


def profile(args: argparse.Namespace, workdir: Path, main_input: Path) -> None:
    import pstats

    print(f"\n== cProfile of the target on {args.records:,} records ==")
    out = workdir / "target.prof"
    commands = Commands(workdir)
    with sandbox() as sb:
        config = commands.target(sb)[-1]
        command = [PY, "-m", "cProfile", "-o", str(out), "-m", "target_openai_capi",
                   "--config", config]  # fmt: skip
        run = run_process("profiled target", command, main_input, args.records, sb, workdir)
    print(f"  {run.wall_s:.1f} s under the profiler (it inflates small Python calls); {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"target_openai_capi|singer_sdk", 30)


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="(%(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (%(default)s)")
    parser.add_argument(
        "--default-floor-records",
        type=int,
        default=2_000,
        help="records for the default-settings framework floor, which spends milliseconds on "
        "each; its rate is per record, so a prefix of the input measures it (%(default)s)",
    )
    parser.add_argument("--slow-repeat", type=int, default=1, help="its runs (%(default)s)")
    parser.add_argument(
        "--variants",
        default=PROPOSED,
        help="proposed changes to measure as one more contender (benchmarks/variants.py); "
        "'' for none (%(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=["full", "sparse", "varied"],
        default=["sparse", "full", "varied"],
        help="record shapes to measure throughput on (generate.py --shape; %(default)s)",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="also measure throughput on this Singer stream of Shopify orders (e.g. another "
        "generator's), named by its file name; the target maps each of its streams with the "
        "preset, as the floors map every record",
    )
    parser.add_argument("--latency-ms", type=int, default=100, help="(%(default)s)")
    parser.add_argument("--concurrency-records", type=int, default=20_000, help="(%(default)s)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-concurrency", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also peak RSS at 100k vs 1M")
    parser.add_argument("--memory-records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--profile", action="store_true", help="also cProfile the target")
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temp dir)")
    parser.add_argument("--json", help="write every figure to this JSON file")
    args = parser.parse_args()
    for name in args.input:
        if not Path(name).is_file():
            parser.error(f"--input {name}: no such file")

    with tempfile.TemporaryDirectory(prefix="capi-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now().isoformat(timespec="seconds")
        version = package_version()
        print(f"target-openai-capi at {version}; {platform.python_implementation()} "
              f"{platform.python_version()}, {os.cpu_count()} CPUs, {now}")  # fmt: skip
        results: dict[str, Any] = {
            "date": now, "cpus": os.cpu_count(), "package": version, "args": vars(args)
        }  # fmt: skip
        started = time.perf_counter()
        if not args.skip_throughput:
            results["throughput"] = throughput(args, workdir)
        if not args.skip_concurrency:
            results["concurrency"] = concurrency(args, workdir)
        if args.memory:
            results["memory"] = memory(args, workdir)
        if args.profile:
            profile_input = generate(
                args.records, workdir / f"orders-full-{args.records}.singer", args.seed
            )
            profile(args, workdir, profile_input)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
