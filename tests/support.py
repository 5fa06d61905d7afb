"""Helpers for tests: Singer messages, and the real target CLI run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TARGET_CMD = [sys.executable, "-m", "target_openai_capi"]


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_minutes_ago(minutes: float, offset: str = "Z") -> str:
    """An ISO 8601 timestamp `minutes` ago, written with the given UTC offset."""
    import datetime as dt

    if offset == "Z":
        tz = dt.timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, mins = int(offset[1:3]), int(offset[4:6])
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=mins))
    moment = dt.datetime.now(tz) - dt.timedelta(minutes=minutes)
    text = moment.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z") if offset == "Z" else text


def schema(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None) -> str:
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {"type": "object", "properties": properties},
            "key_properties": key_properties or [],
        }
    )


def record(stream: str, rec: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": rec})


def state(value: dict[str, Any]) -> str:
    return json.dumps({"type": "STATE", "value": value})


@dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[dict[str, Any]]:
        """STATE lines the target wrote on stdout, in order."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_target(
    config: dict[str, Any],
    lines: list[str] | bytes,
    tmp_path: Path,
    *,
    timeout: float = 120,
    extra_args: list[str] | None = None,
    limits: list[str] | None = None,
) -> TargetRun:
    """Run the real CLI on the given input lines, as Meltano would; under `limits`, prlimit's
    options (`--nofile=20:20`: the test is skipped where util-linux's prlimit is missing)."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    prefix: list[str] = []
    if limits:
        if shutil.which("prlimit") is None:
            pytest.skip("no prlimit (util-linux) here")
        prefix = ["prlimit", *limits, "--"]
    proc = subprocess.run(
        [*prefix, *TARGET_CMD, "--config", str(config_path), *(extra_args or [])],
        input=data,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return TargetRun(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


def target_config(
    url: str, tmp_path: Path, streams: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The target's config for the test sandbox at `url`, dead letters in tmp_path."""
    from conftest import API_KEY, PIXEL_ID

    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": streams,
        **extra,
    }
