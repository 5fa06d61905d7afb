"""Throughput, concurrency and memory of target-openai-capi next to its floors, in one run.

    .venv/bin/python benchmarks/run.py                  # about 3 minutes on a 2-core machine
    .venv/bin/python benchmarks/run.py --records 50000 --repeat 5
    .venv/bin/python benchmarks/run.py --memory         # adds 100k vs 1M records (~10 minutes)
    .venv/bin/python benchmarks/run.py --profile        # adds a cProfile of the target

Every contender runs as its own process on the same generated input (benchmarks/generate.py)
read from stdin, against a fresh sandbox (the local Conversions API) on a free loopback port in
this process. Wall time runs from process start to exit, so it includes start-up; the start-up
of each contender is measured on an input with no records and subtracted for the "steady"
rate. Peak RSS is the child's ru_maxrss from os.wait4() (the kernel's high-water mark of that
one process, exact, no polling). Repeated contenders are run in interleaved rounds and the
median is shown. See benchmarks/README.md for what each contender is.
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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from target_openai_capi.sandbox import FaultConfig, Sandbox, start_sandbox  # noqa: E402

PY = sys.executable
PIXEL_ID = "px_benchmark"
API_KEY = "sk-svcacct-benchmark-0000"
_CLI = Path(PY).with_name("target-openai-capi")
TARGET_CMD = [str(_CLI)] if _CLI.exists() else [PY, "-m", "target_openai_capi"]
SUMMARY = re.compile(r"Run summary: received=(\d+) sent=(\d+).*? rejected=(\d+)")


@dataclass
class Run:
    """One process run: how long, how much memory, and what arrived."""

    name: str
    records: int
    wall_s: float
    peak_rss_mib: float
    returncode: int
    accepted: int
    requests: int
    max_in_flight: int
    sent: int | None = None  # from the target's summary line
    rejected: int | None = None
    stderr_tail: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.wall_s


@dataclass
class Contender:
    """A command to benchmark and how to give it its settings."""

    name: str
    command: Callable[[Sandbox, Path], list[str]]
    note: str = ""
    records_limit: int | None = None  # run on a prefix of the input (for very slow contenders)
    runs: list[Run] = field(default_factory=list)
    startup_s: float = 0.0


# --- processes ---------------------------------------------------------------------------------


def run_process(
    name: str,
    command: list[str],
    stdin: Path | list[str],
    records: int,
    sandbox: Sandbox | None,
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
        # wait4 gives this one child's rusage: ru_maxrss is its peak RSS in KiB (Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if producer is not None:
        producer.wait()
    stderr = err_path.read_text(errors="replace")
    stats = sandbox.stats() if sandbox is not None else {}
    run = Run(
        name=name,
        records=records,
        wall_s=wall,
        peak_rss_mib=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        accepted=stats.get("accepted", 0),
        requests=stats.get("requests", 0),
        max_in_flight=stats.get("max_in_flight", 0),
        stderr_tail="\n".join(stderr.splitlines()[-15:]),
    )
    match = SUMMARY.search(stderr)
    if match:
        run.sent, run.rejected = int(match.group(2)), int(match.group(3))
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}:\n{run.stderr_tail}")
    return run


def with_sandbox(workdir: Path, latency_ms: int = 0, db_path: str = ":memory:") -> Sandbox:
    """A fresh sandbox for one run (so every contender starts with an empty store)."""
    return start_sandbox(
        api_keys={API_KEY},
        pixel_ids={PIXEL_ID},
        db_path=db_path,
        faults=FaultConfig(latency_ms=latency_ms),
    )


def write_config(workdir: Path, name: str, config: dict[str, Any]) -> Path:
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def target_config(sandbox: Sandbox, **settings: Any) -> dict[str, Any]:
    """The target's config: the tap-shopify/orders preset (hashing, money, contents)."""
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "default_phone_region": "US",
        "streams": {"orders": {"preset": "tap-shopify/orders"}},
        **settings,
    }


# --- inputs ------------------------------------------------------------------------------------


def generate(records: int, path: Path, seed: int) -> Path:
    if not path.exists():
        started = time.perf_counter()
        subprocess.run(
            [
                PY,
                str(HERE / "generate.py"),
                "--records",
                str(records),
                "--seed",
                str(seed),
                "--output",
                str(path),
            ],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        print(
            f"  generated {records:,} records in {time.perf_counter() - started:.1f} s "
            f"({path.stat().st_size / records / 1024:.1f} KiB a record)"
        )
    return path


def prefix(source: Path, records: int, path: Path) -> Path:
    """The first `records` RECORD lines of source, with the SCHEMA and STATE lines among them."""
    with open(source, "rb") as src, open(path, "wb") as out:
        seen = 0
        for line in src:
            if line.startswith(b'{"type":"RECORD"'):
                if seen == records:
                    break
                seen += 1
            out.write(line)
    return path


# --- the comparison ----------------------------------------------------------------------------


def contenders(workdir: Path, default_floor_records: int) -> list[Contender]:
    raw = Contender(
        "raw floor (json + requests)",
        lambda sb, _: [
            PY,
            str(HERE / "raw_floor.py"),
            "--api-url",
            sb.url,
            "--pixel-id",
            PIXEL_ID,
            "--api-key",
            API_KEY,
        ],
        "plain loop: json.loads, hand mapping, hashlib, requests",
    )
    floor = str(HERE / "framework_floor.py")
    fw_default = Contender(
        "framework floor, defaults",
        lambda sb, _: [PY, floor, "--config", str(write_config(workdir, "fw-default", {}))],
        "do-nothing singer-sdk BatchSink; validate_records: true (jsonschema)",
        records_limit=default_floor_records,
    )
    fw_novalidate = Contender(
        "framework floor, validate_records: false",
        lambda sb, _: [
            PY,
            floor,
            "--config",
            str(write_config(workdir, "fw-noval", {"validate_records": False})),
        ],
        "the same with record validation off",
    )
    target = Contender(
        "target-openai-capi, defaults",
        lambda sb, _: [
            *TARGET_CMD,
            "--config",
            str(write_config(workdir, "target", target_config(sb))),
        ],
        "tap-shopify/orders preset, default settings",
    )
    return [raw, fw_default, fw_novalidate, target]


def measure_startup(contender: Contender, schema_only: Path, workdir: Path) -> None:
    with with_sandbox(workdir) as sb:
        run = run_process(
            contender.name, contender.command(sb, workdir), schema_only, 0, sb, workdir
        )
    contender.startup_s = run.wall_s


def compare(args: argparse.Namespace, workdir: Path, main_input: Path) -> list[Contender]:
    print(f"\n== Throughput: {args.records:,} Shopify orders, median of {args.repeat} runs ==")
    schema_only = prefix(main_input, 0, workdir / "schema-only.singer")
    slow_input = prefix(
        main_input,
        args.default_floor_records,
        workdir / f"prefix-{args.default_floor_records}.singer",
    )
    field_list = contenders(workdir, args.default_floor_records)
    for contender in field_list:
        measure_startup(contender, schema_only, workdir)
    for round_number in range(args.repeat):
        for contender in field_list:
            if contender.records_limit is not None and round_number >= args.slow_repeat:
                continue
            source = slow_input if contender.records_limit else main_input
            records = contender.records_limit or args.records
            with with_sandbox(workdir) as sb:
                run = run_process(
                    contender.name, contender.command(sb, workdir), source, records, sb, workdir
                )
            contender.runs.append(run)
            print(
                f"  {contender.name:<44} {run.rate:>8,.0f} rec/s  "
                f"{run.peak_rss_mib:>6.0f} MiB  ({run.wall_s:.1f} s)"
            )
    return field_list


def median_run(contender: Contender) -> Run:
    ordered = sorted(contender.runs, key=lambda r: r.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def steady_rate(contender: Contender) -> float:
    run = median_run(contender)
    return run.records / max(run.wall_s - contender.startup_s, 1e-9)


def print_table(field_list: list[Contender]) -> dict[str, Any]:
    print()
    header = (
        f"{'contender':<44} {'runs':>4} {'records':>8} {'rec/s':>8} {'steady':>8} "
        f"{'start s':>7} {'peak MiB':>8} {'accepted':>8}"
    )
    print(header)
    print("-" * len(header))
    table = {}
    for contender in field_list:
        run = median_run(contender)
        steady = steady_rate(contender)
        accepted = str(run.accepted) if run.requests else "-"
        print(
            f"{contender.name:<44} {len(contender.runs):>4} {run.records:>8,} {run.rate:>8,.0f} "
            f"{steady:>8,.0f} {contender.startup_s:>7.2f} {run.peak_rss_mib:>8.0f} "
            f"{accepted:>8}"
        )
        table[contender.name] = {
            "runs": len(contender.runs),
            "records": run.records,
            "records_per_s": round(run.rate),
            "steady_records_per_s": round(steady),
            "startup_s": round(contender.startup_s, 2),
            "peak_rss_mib": round(run.peak_rss_mib, 1),
            "accepted": run.accepted,
            "all_runs_wall_s": [round(r.wall_s, 2) for r in contender.runs],
        }
    raw, fw_default, fw_noval, target = field_list
    target_run = median_run(target)
    if target_run.sent is not None:
        print(
            f"\ntarget summary: sent={target_run.sent} rejected={target_run.rejected}; "
            f"sandbox accepted {target_run.accepted} in {target_run.requests} requests"
        )
    ratios = {
        "target / raw floor": steady_rate(target) / steady_rate(raw),
        "target / framework floor, defaults": steady_rate(target) / steady_rate(fw_default),
        "target / framework floor, validation off": steady_rate(target) / steady_rate(fw_noval),
    }
    wall_ratios = {
        "target / raw floor": target_run.rate / median_run(raw).rate,
        "target / framework floor, defaults": target_run.rate / median_run(fw_default).rate,
        "target / framework floor, validation off": target_run.rate / median_run(fw_noval).rate,
    }
    print("\nratios (steady rates; with start-up included in parentheses):")
    for name, value in ratios.items():
        print(f"  {name:<44} {value:>6.2f}x  ({wall_ratios[name]:.2f}x)")
    return {"contenders": table, "ratios_steady": ratios, "ratios_wall": wall_ratios}


# --- concurrency -------------------------------------------------------------------------------


def concurrency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    records = args.concurrency_records
    print(f"\n== Concurrency: {records:,} records, sandbox latency {args.latency_ms} ms ==")
    source = generate(records, workdir / f"orders-{records}.singer", args.seed)
    results: dict[str, Any] = {}
    for batch_size in (50, 1000):
        rates = {}
        for limit in (1, 4, 8):
            with with_sandbox(workdir, latency_ms=args.latency_ms) as sb:
                config = target_config(sb, batch_size=batch_size, max_concurrent_requests=limit)
                path = write_config(workdir, f"conc-{batch_size}-{limit}", config)
                run = run_process(
                    f"batch {batch_size}, {limit} in flight",
                    [*TARGET_CMD, "--config", str(path)],
                    source,
                    records,
                    sb,
                    workdir,
                )
            rates[limit] = run.rate
            results[f"batch_size={batch_size} max_concurrent_requests={limit}"] = {
                "records_per_s": round(run.rate),
                "wall_s": round(run.wall_s, 2),
                "requests": run.requests,
                "max_in_flight": run.max_in_flight,
                "accepted": run.accepted,
            }
            default = " (default)" if limit == 4 else ""
            print(
                f"  batch_size {batch_size:>4}, max_concurrent_requests {limit}{default:<10} "
                f"{run.rate:>7,.0f} rec/s  {run.wall_s:>5.1f} s  {run.requests:>4} requests  "
                f"max_in_flight {run.max_in_flight}  accepted {run.accepted}"
            )
        for limit in (4, 8):
            ratio = rates[limit] / rates[1]
            results[f"batch_size={batch_size} ratio {limit}/1"] = round(ratio, 2)
            print(f"    {limit} in flight / 1 in flight: {ratio:.2f}x")
    return results


# --- memory ------------------------------------------------------------------------------------


def memory(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print("\n== Memory: peak RSS of the target, generator piped into its stdin ==")
    results: dict[str, Any] = {}
    for records in args.memory_records:
        producer = [
            PY,
            str(HERE / "generate.py"),
            "--records",
            str(records),
            "--seed",
            str(args.seed),
        ]
        db = workdir / f"sandbox-{records}.db"
        with with_sandbox(workdir, db_path=str(db)) as sb:
            path = write_config(workdir, f"mem-{records}", target_config(sb))
            run = run_process(
                f"{records} records",
                [*TARGET_CMD, "--config", str(path)],
                producer,
                records,
                sb,
                workdir,
            )
        db.unlink(missing_ok=True)
        results[str(records)] = {
            "peak_rss_mib": round(run.peak_rss_mib, 1),
            "wall_s": round(run.wall_s, 1),
            "records_per_s": round(run.rate),
            "accepted": run.accepted,
        }
        print(
            f"  {records:>9,} records: peak RSS {run.peak_rss_mib:6.1f} MiB, "
            f"{run.wall_s:6.1f} s ({run.rate:,.0f} rec/s with the generator sharing the CPU), "
            f"accepted {run.accepted:,}"
        )
    sizes = [str(r) for r in args.memory_records]
    if len(sizes) >= 2:
        growth = results[sizes[-1]]["peak_rss_mib"] / results[sizes[0]]["peak_rss_mib"] - 1
        results["growth"] = round(growth, 3)
        print(f"  peak RSS at {int(sizes[-1]):,} vs {int(sizes[0]):,}: {growth:+.1%}")
    return results


# --- profile -----------------------------------------------------------------------------------


def profile(args: argparse.Namespace, workdir: Path, main_input: Path) -> None:
    import pstats

    print(f"\n== cProfile of the target on {args.records:,} records ==")
    out = workdir / "target.prof"
    with with_sandbox(workdir) as sb:
        path = write_config(workdir, "profile", target_config(sb))
        command = [
            PY,
            "-m",
            "cProfile",
            "-o",
            str(out),
            "-m",
            "target_openai_capi",
            "--config",
            str(path),
        ]
        run = run_process("profiled target", command, main_input, args.records, sb, workdir)
    print(f"  {run.wall_s:.1f} s under the profiler; profile saved to {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"target_openai_capi|singer_sdk", 30)


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument(
        "--default-floor-records",
        type=int,
        default=2_000,
        help="records for the default-settings framework floor, which costs "
        "milliseconds a record (%(default)s; its rate is per record)",
    )
    parser.add_argument(
        "--slow-repeat",
        type=int,
        default=1,
        help="runs of the default-settings framework floor (%(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency-records", type=int, default=5_000)
    parser.add_argument("--skip-concurrency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also 100k vs 1M records")
    parser.add_argument("--memory-records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--profile", action="store_true", help="also cProfile the target")
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temp dir)")
    parser.add_argument("--json", help="write every figure to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="capi-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {dt.datetime.now().isoformat(timespec='seconds')}"
        )
        results: dict[str, Any] = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count()}
        started = time.perf_counter()
        main_input = generate(args.records, workdir / f"orders-{args.records}.singer", args.seed)
        if not args.skip_throughput:
            field_list = compare(args, workdir, main_input)
            results["throughput"] = print_table(field_list)
            results["throughput"]["runs"] = [
                asdict(run) | {"stderr_tail": ""} for c in field_list for run in c.runs
            ]
        if not args.skip_concurrency:
            results["concurrency"] = concurrency(args, workdir)
        if args.memory:
            results["memory"] = memory(args, workdir)
        if args.profile:
            profile(args, workdir, main_input)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
