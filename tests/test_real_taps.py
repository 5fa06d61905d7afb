"""The target behind real, independently written taps from PyPI (installed by scripts/setup.sh
into .venv-taps/): tap-jsonl on files, MeltanoLabs tap-postgres on a real PostgreSQL server
that these tests start and stop, and the schemas tap-shopify ships.

Expected events are written out from the rows inserted here, never from the target's code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD

from target_openai_capi.mapping.reads import read_paths
from target_openai_capi.presets import OPTIONAL_PATHS, apply_preset

ROOT = Path(__file__).resolve().parents[1]
TAPS = ROOT / ".venv-taps"

pytestmark = pytest.mark.realtaps


def tap(package: str, executable: str) -> Path:
    path = TAPS / package / "bin" / executable
    if not path.exists():
        pytest.skip(f"{package} is not installed in {TAPS} (scripts/setup.sh installs it)")
    return path


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_config(tmp_path: Path, name: str, config: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def target_config(sandbox: Any, tmp_path: Path, streams: dict[str, Any]) -> Path:
    return write_config(
        tmp_path,
        "target.json",
        {
            "pixel_id": PIXEL_ID,
            "api_key": API_KEY,
            "api_url": sandbox.url,
            "dead_letter_path": str(tmp_path / "dead.jsonl"),
            "streams": streams,
        },
    )


def pipe(tap_cmd: list[str], target_cfg: Path) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """tap | target, as Meltano runs them; returns the target's run and the tap's stderr."""
    tapped = subprocess.run(tap_cmd, capture_output=True, timeout=300, check=False)
    assert tapped.returncode == 0, tapped.stderr.decode()[-3000:]
    run = subprocess.run(
        [*TARGET_CMD, "--config", str(target_cfg)],
        input=tapped.stdout,
        capture_output=True,
        timeout=300,
        check=False,
    )
    return run, tapped.stdout.decode()


def last_state(run: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    lines = [line for line in run.stdout.decode().splitlines() if line.strip()]
    assert lines, run.stderr.decode()[-3000:]
    state: dict[str, Any] = json.loads(lines[-1])
    return state


# --- tap-jsonl ----------------------------------------------------------------------------------


def test_tap_jsonl_rows_read_again_after_a_touch_are_not_new_events(sandbox, tmp_path):
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"order_ref": f"o{n}", "timestamp": at, "type": "lead_created"} for n in range(3)]
    (data / "conversions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tap_cfg = write_config(
        tmp_path, "tap.json", {"path": str(data / "*.jsonl"), "stream_name": "conversions"}
    )
    cmd = [str(tap("tap-jsonl", "tap-jsonl")), "--config", str(tap_cfg)]
    cfg = target_config(sandbox, tmp_path, {"conversions": {}})
    run, output = pipe(cmd, cfg)
    assert run.returncode == 0, run.stderr.decode()
    assert '"_sdc_last_modified"' in output  # the tap adds read metadata to every record
    first = sorted(e["id"] for e in sandbox.events(PIXEL_ID))
    assert len(first) == 3
    assert "its event ids are hashes of each record's own data" in run.stderr.decode()

    later = time.time() + 120
    os.utime(data / "conversions.jsonl", (later, later))  # a new mtime: read again
    run, output = pipe(cmd, cfg)
    assert run.returncode == 0, run.stderr.decode()
    assert "received=3" in run.stderr.decode()
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == first  # no new events
    assert sandbox.stats()["duplicates"] == 3


# --- tap-postgres on a real PostgreSQL ------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """A PostgreSQL server in a temporary directory, on a loopback port."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.psql = _pg_bin("psql")
        if not (initdb and self._pg_ctl and self.psql):
            pytest.skip(
                "PostgreSQL binaries not found (scripts/setup.sh installs Debian's postgresql)"
            )
        # initdb refuses to run as root: as root, run the server as the postgres user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            if (
                shutil.which("runuser") is None
                or subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode
            ):
                pytest.skip("running as root without a postgres user to run the server as")
            self._as = ["runuser", "-u", "postgres", "--"]
        # Directly under /tmp: the postgres user cannot enter pytest's per-user directory.
        self.dir = Path(tempfile.mkdtemp(prefix="capi-postgres-"))
        if self._as:
            shutil.chown(self.dir, "postgres")
        self.port = _free_port()
        self._run(
            initdb, "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c TimeZone=UTC"
        self._run(
            self._pg_ctl,
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()

    def sql(self, statements: str) -> None:
        assert self.psql is not None
        proc = subprocess.run(
            [
                self.psql,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
            ],
            input=statements.encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()

    def stop(self) -> None:
        assert self._pg_ctl is not None
        try:
            self._run(self._pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        yield server
    finally:
        server.stop()


TABLE = """
create table conversions (
    id text primary key,
    created_at timestamptz not null,
    amount numeric(12, 2),
    currency text,
    email text,
    line_items jsonb,
    updated_at timestamptz not null
);
"""
ROWS = """
insert into conversions values
  ('c1', now() - interval '2 hours', 25.99, 'USD', ' Ana@Example.COM ',
   '[{"sku": "TEE", "qty": 2, "price": 12.99}]', now() - interval '100 minutes'),
  ('c2', now() - interval '90 minutes', 1000, 'JPY', null, '[]', now() - interval '80 minutes'),
  ('c3', now() - interval '1 hour', 0.10, 'KWD', 'bo@example.com',
   '[{"sku": "PEN", "qty": 1, "price": 0.1}]', now() - interval '50 minutes');
"""
NEW_ROW = """
insert into conversions values
  ('c4', now() - interval '10 minutes', 7.5, 'EUR', 'cy@example.com', '[]', now());
"""
STREAMS = {
    "public-conversions": {
        "event_type": "order_created",
        "fields": {
            "timestamp": "created_at",
            "source_url": "'https://shop.example.com/thanks'",
            "action_source": "'web'",
            "contents": "line_items[].{id: sku, quantity: qty, amount: price}",
        },
    }
}


def _catalog(tap_cmd: list[str], select: dict[str, str | None]) -> dict[str, Any]:
    """The tap's discovered catalog with `select` streams chosen (stream -> replication key)."""
    found = subprocess.run([*tap_cmd, "--discover"], capture_output=True, timeout=300, check=False)
    assert found.returncode == 0, found.stderr.decode()[-3000:]
    catalog: dict[str, Any] = json.loads(found.stdout)
    for stream in catalog["streams"]:
        chosen = stream["tap_stream_id"] in select
        key = select.get(stream["tap_stream_id"])
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = chosen
                if chosen and key:
                    entry["metadata"]["replication-method"] = "INCREMENTAL"
                    entry["metadata"]["replication-key"] = key
        if chosen and key:
            stream["replication_method"] = "INCREMENTAL"
            stream["replication_key"] = key
    return catalog


def _tap_postgres(postgres: Postgres, tmp_path: Path, **extra: Any) -> list[str]:
    config = {
        "host": "127.0.0.1",
        "port": postgres.port,
        "user": "postgres",
        "password": "",
        "database": "postgres",
        "filter_schemas": ["public", "analytics"],
        **extra,
    }
    cfg = write_config(tmp_path, "tap-postgres.json", config)
    return [str(tap("meltanolabs-tap-postgres", "tap-postgres")), "--config", str(cfg)]


def _expected_events() -> dict[str, dict[str, Any]]:
    """What the official contract says the three rows become (minor units by ISO 4217)."""
    return {
        "c1": {
            "data": {
                "type": "contents",
                "amount": 2599,
                "currency": "USD",
                "contents": [{"id": "TEE", "quantity": 2, "amount": 1299}],
            },
            "user": {"emails_sha256": [h("ana@example.com")]},
        },
        "c2": {"data": {"type": "contents", "amount": 1000, "currency": "JPY", "contents": []}},
        "c3": {
            "data": {
                "type": "contents",
                "amount": 100,
                "currency": "KWD",
                "contents": [{"id": "PEN", "quantity": 1, "amount": 100}],
            },
            "user": {"emails_sha256": [h("bo@example.com")]},
        },
    }


@pytest.fixture
def table(postgres: Postgres) -> None:
    postgres.sql("drop schema if exists analytics cascade; drop table if exists conversions;")
    postgres.sql(TABLE + ROWS)


def test_a_postgres_table_arrives_field_exact_and_a_second_run_sends_only_new_rows(
    postgres, table, sandbox, tmp_path
):
    tap_cmd = _tap_postgres(postgres, tmp_path)
    catalog = write_config(
        tmp_path, "catalog.json", _catalog(tap_cmd, {"public-conversions": "updated_at"})
    )
    cfg = target_config(sandbox, tmp_path, STREAMS)
    run, _ = pipe([*tap_cmd, "--catalog", str(catalog)], cfg)
    assert run.returncode == 0, run.stderr.decode()
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    expected = _expected_events()
    assert set(events) == set(expected)
    for event_id, want in expected.items():
        event = events[event_id]
        assert event["type"] == "order_created"
        assert event["data"] == want["data"]  # numeric money to exact minor units
        assert event.get("user") == want.get("user")
        assert event["source_url"] == "https://shop.example.com/thanks"
    state = last_state(run)
    assert state["bookmarks"]["public-conversions"]["replication_key"] == "updated_at"

    postgres.sql(NEW_ROW)
    (tmp_path / "state.json").write_text(json.dumps(state))
    before = sandbox.stats()["accepted"]
    run, _ = pipe(
        [*tap_cmd, "--catalog", str(catalog), "--state", str(tmp_path / "state.json")], cfg
    )
    assert run.returncode == 0, run.stderr.decode()
    new = {e["id"] for e in sandbox.events(PIXEL_ID)} - set(events)
    assert new == {"c4"}
    assert sandbox.stats()["accepted"] == before + 1
    # The SDK re-reads the bookmark row (>=); the API deduplicates it, so it is not new there.
    assert "received=2" in run.stderr.decode()


def test_a_view_in_another_schema_with_naive_timestamps(postgres, table, sandbox, tmp_path):
    postgres.sql(
        "create schema analytics;"
        " create view analytics.paid_orders as"
        " select id, (created_at at time zone 'UTC') as created_naive, amount, currency"
        " from conversions where currency = 'JPY';"
    )
    tap_cmd = _tap_postgres(postgres, tmp_path)
    catalog = write_config(
        tmp_path, "catalog.json", _catalog(tap_cmd, {"analytics-paid_orders": None})
    )
    streams = {
        "analytics-paid_orders": {
            "event_type": "order_created",
            "fields": {"id": "id", "timestamp": "created_naive", "action_source": "'offline'"},
        }
    }
    run, output = pipe(
        [*tap_cmd, "--catalog", str(catalog)], target_config(sandbox, tmp_path, streams)
    )
    assert run.returncode == 0, run.stderr.decode()
    [event] = sandbox.events(PIXEL_ID)
    assert event["id"] == "c2"
    assert event["data"] == {"type": "contents", "amount": 1000, "currency": "JPY"}
    # tap-postgres writes a `timestamp without time zone` with +00:00: it arrives as UTC.
    [record] = [json.loads(x)["record"] for x in output.splitlines() if '"RECORD"' in x]
    naive = record["created_naive"]
    assert naive.endswith("+00:00")
    from datetime import datetime

    assert event["timestamp_ms"] == int(datetime.fromisoformat(naive).timestamp() * 1000)


def test_batch_mode_arrives_as_record_mode_does(postgres, table, sandbox, tmp_path):
    tap_cmd = _tap_postgres(postgres, tmp_path)
    catalog = write_config(
        tmp_path, "catalog.json", _catalog(tap_cmd, {"public-conversions": None})
    )
    cfg = target_config(sandbox, tmp_path, STREAMS)
    run, _ = pipe([*tap_cmd, "--catalog", str(catalog)], cfg)
    assert run.returncode == 0, run.stderr.decode()
    as_records = sandbox.events(PIXEL_ID)
    assert len(as_records) == 3
    sandbox.reset()

    batches = tmp_path / "batches"
    batches.mkdir()
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": batches.as_uri(), "prefix": "batch-"},
    }
    batch_cmd = _tap_postgres(postgres, tmp_path, batch_config=batch_config)
    run, output = pipe([*batch_cmd, "--catalog", str(catalog)], cfg)
    assert run.returncode == 0, run.stderr.decode()
    assert '"type":"BATCH"' in output.replace(" ", "")  # the tap really sent BATCH messages
    files = sorted(batches.glob("batch-*"))
    assert files
    assert any(gzip.decompress(f.read_bytes()).strip() for f in files)
    assert sandbox.events(PIXEL_ID) == as_records
    assert "received=3" in run.stderr.decode()


# --- the schemas tap-shopify ships ------------------------------------------------------------


def _schema_has(schema: dict[str, Any], path: tuple[str, ...]) -> bool:
    node = schema
    for part in path:
        if part == "[]":
            if "items" in node:
                node = node["items"]
            continue  # a flatten of something that is not an array reads it as it is
        properties = node.get("properties")
        if not isinstance(properties, dict) or part not in properties:
            return False
        node = properties[part]
    return True


def _paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, sub in tree.items():
        if sub is True:
            yield (*prefix, name)
        else:
            yield from _paths(sub, (*prefix, name))


@pytest.mark.parametrize(
    ("preset", "stream"),
    [("tap-shopify/orders", "orders"), ("tap-shopify/abandoned_checkouts", "abandoned_checkouts")],
)
def test_every_path_a_shopify_preset_reads_is_in_the_schema_the_tap_ships(preset, stream):
    tap("tap-shopify", "tap-shopify")
    [schemas] = list(TAPS.glob("tap-shopify/lib/python*/site-packages/tap_shopify/schemas"))
    schema = json.loads((schemas / f"{stream}.json").read_text())
    entry = apply_preset({"preset": preset})
    texts = [*entry["fields"].values(), entry.get("filter") or "id"]
    read = {".".join(p) for p in _paths(read_paths(texts, [])) if "[].[]" not in ".".join(p)}
    missing = {p for p in read if not _schema_has(schema, tuple(p.split(".")))}
    assert missing == OPTIONAL_PATHS.get(preset, frozenset())  # documented, and still absent
    if preset == "tap-shopify/orders":  # the oppref sources the cookbook promises
        assert "customerJourneySummary.lastVisit.landingPage" in read - missing
        assert "customAttributes.[].value" in read - missing


# --- through Meltano, with its own state ------------------------------------------------------

MELTANO = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "meltano"


def _meltano_project(root: Path, sandbox: Any) -> Path:
    """A Meltano project with the real tap and this target, both run from their environments
    (no pip_url: Meltano runs the executables). The target declares no settings, as a custom
    loader with only an executable: api_key and pixel_id come from the environment."""
    tap_exe = tap("meltanolabs-tap-postgres", "tap-postgres")
    target_exe = Path(TARGET_CMD[0]).with_name("target-openai-capi")
    loader_config = {
        "api_url": sandbox.url,
        "dead_letter_path": str(root / "dead.jsonl"),
        "streams": STREAMS,
    }
    (root / "meltano.yml").write_text(
        f"""version: 1
default_environment: dev
environments:
- name: dev
project_id: target-openai-capi-real-taps
plugins:
  extractors:
  - name: tap-postgres
    namespace: tap_postgres
    executable: {tap_exe}
    capabilities: [catalog, discover, state, about]
    settings:
    - {{name: host}}
    - {{name: port, kind: integer}}
    - {{name: user}}
    - {{name: password, kind: password}}
    - {{name: database}}
    - {{name: filter_schemas, kind: array}}
    select:
    - public-conversions.*
    metadata:
      public-conversions:
        replication-method: INCREMENTAL
        replication-key: updated_at
  loaders:
  - name: target-openai-capi
    namespace: target_openai_capi
    executable: {target_exe}
    config: {json.dumps(loader_config)}
"""
    )
    return root


def _meltano(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))
    }
    return subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env={**clean, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_incremental_runs_through_meltano_and_its_state(postgres, table, sandbox, tmp_path):
    if not MELTANO.exists():
        pytest.skip("meltano is not installed in .venv (scripts/setup.sh installs it)")
    project = _meltano_project(tmp_path, sandbox)
    env = {
        "TAP_POSTGRES_HOST": "127.0.0.1",
        "TAP_POSTGRES_PORT": str(postgres.port),
        "TAP_POSTGRES_USER": "postgres",
        "TAP_POSTGRES_PASSWORD": "",
        "TAP_POSTGRES_DATABASE": "postgres",
        "TAP_POSTGRES_FILTER_SCHEMAS": '["public"]',
        "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
        "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
    }
    first = _meltano(project, env, "run", "tap-postgres", "target-openai-capi")
    assert first.returncode == 0, first.stderr[-4000:]
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["c1", "c2", "c3"]
    saved = _meltano(project, env, "state", "get", "dev:tap-postgres-to-target-openai-capi")
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert '"replication_key": "updated_at"' in saved.stdout.replace('":"', '": "')

    postgres.sql(NEW_ROW)
    second = _meltano(project, env, "run", "tap-postgres", "target-openai-capi")
    assert second.returncode == 0, second.stderr[-4000:]
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["c1", "c2", "c3", "c4"]
    assert sandbox.stats()["accepted"] == 4
    # Meltano's state started the second run at the bookmark: not the whole table again.
    assert "received=2" in second.stderr  # the bookmark row (re-read with >=) and the new one
    assert API_KEY not in first.stderr + second.stderr
