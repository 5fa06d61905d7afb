"""Meltano: real `meltano install` and `meltano run tap-demo-orders target-openai-capi` runs.

The repository's meltano.yml is copied to a temporary project (so the repo's file and .meltano/
are never touched) with the loader's `pip_url: -e .` pointed back at this checkout. Plugins are
installed once for the module. Deselect with `-m "not meltano"` (it needs PyPI for the install).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from target_openai_capi.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.meltano  # registered in pyproject.toml

REPO = Path(__file__).resolve().parents[1]
MELTANO = Path(sys.executable).with_name("meltano")
DEMO_KEY = "sk-svcacct-demo-sandbox-only"  # meltano.yml's dev environment
DEMO_PIXEL = "px_demo"
JOB_STATE_ID = "dev:tap-demo-orders-to-target-openai-capi"


def _load_demo_tap() -> ModuleType:
    """The demo tap's module, to compute the orders it emits for a seed."""
    path = REPO / "demo" / "tap-demo-orders" / "tap_demo_orders" / "__init__.py"
    spec = importlib.util.spec_from_file_location("tap_demo_orders_for_tests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meltano(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the meltano CLI in the project; returns the completed process."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("TARGET_OPENAI_CAPI_", "MELTANO_"))
    }
    return subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env={**clean, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's Meltano project with both plugins installed."""
    root = tmp_path_factory.mktemp("meltano-project")
    text = (REPO / "meltano.yml").read_text()
    assert "    pip_url: -e .\n" in text
    (root / "meltano.yml").write_text(
        text.replace("    pip_url: -e .\n", f"    pip_url: -e {REPO}\n")
    )
    shutil.copytree(
        REPO / "demo", root / "demo", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    done = meltano(root, "install", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def demo_sandbox() -> Iterator[Sandbox]:
    """A sandbox that accepts only the dev environment's dummy key and pixel."""
    with start_sandbox(api_keys={DEMO_KEY}, pixel_ids={DEMO_PIXEL}) as running:
        yield running


def _minor(amount: float, currency: str) -> int:
    exponent = 0 if currency == "JPY" else 2
    return int(Decimal(str(amount)).scaleb(exponent))


def test_meltano_run_delivers_the_demo_orders(project: Path, demo_sandbox: Sandbox):
    set_url = meltano(
        project,
        "--environment=dev",
        "config",
        "set",
        "target-openai-capi",
        "api_url",
        demo_sandbox.url,
    )
    assert set_url.returncode == 0, set_url.stderr
    started_ms = int(time.time() * 1000)

    run = meltano(project, "run", "tap-demo-orders", "target-openai-capi")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log

    tap = _load_demo_tap()
    orders = tap.generate_orders(
        tap.DEFAULT_SEED, tap.DEFAULT_ORDER_COUNT, dt.datetime.now(dt.timezone.utc)
    )
    sendable = {o["id"]: o for o in orders[1:] if not o["test"]}  # orders[0] is 10 days old
    events = {e["id"]: e for e in demo_sandbox.events(DEMO_PIXEL)}
    assert set(events) == set(sendable)
    for event_id, event in events.items():
        order = sendable[event_id]
        money = order["totalPriceSet"]["shopMoney"]
        assert event["type"] == "order_created"
        assert event["data"]["currency"] == money["currencyCode"]
        assert event["data"]["amount"] == _minor(money["amount"], money["currencyCode"])
        assert len(event["data"]["contents"]) == len(order["lineItems"])
        landing = order["customerJourneySummary"]["lastVisit"]["landingPage"]
        attributes = {a["key"]: a["value"] for a in order["customAttributes"]}
        expected_oppref = landing.partition("oppref=")[2] or attributes.get("oppref")
        assert event.get("oppref") == expected_oppref
        assert started_ms - 4 * 24 * 3600 * 1000 < event["timestamp_ms"] <= started_ms + 60_000
        user, billing = event["user"], order["billingAddress"]
        email = order["email"].strip().lower().encode()
        assert user["emails_sha256"] == [hashlib.sha256(email).hexdigest()]
        assert user["countries"] == [billing["countryCodeV2"]]
        assert user["cities"] == [billing["city"]]
        assert user["ip_address"] == order["clientIp"]

    assert f"received={len(orders)} sent={len(sendable)}" in log
    assert "filtered=1" in log
    assert "rejected=1 (window=1)" in log
    assert DEMO_KEY not in log

    # The target's STATE reached Meltano's state store for the job.
    state = meltano(project, "state", "get", JOB_STATE_ID)
    assert state.returncode == 0, state.stderr
    bookmark = json.loads(state.stdout.strip().splitlines()[-1])
    updated_at = bookmark["singer_state"]["bookmarks"]["orders"]["updatedAt"]
    updated_ms = dt.datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp() * 1000
    assert started_ms - 3 * 24 * 3600 * 1000 < updated_ms <= time.time() * 1000
    dead = (project / "output" / "capi-dead-letter.jsonl").read_text().splitlines()
    rejected = [json.loads(line) for line in dead if '"dead_letter"' in line]
    assert [(r["record"]["id"], r["dead_letter"]["stage"]) for r in rejected] == [
        (orders[0]["id"], "window")
    ]


def test_environment_variables_override_meltano_yml(project: Path, demo_sandbox: Sandbox):
    run = meltano(
        project,
        "run",
        "tap-demo-orders",
        "target-openai-capi",
        env={
            "TARGET_OPENAI_CAPI_API_URL": demo_sandbox.url,
            "TARGET_OPENAI_CAPI_DRY_RUN": "true",
            # (numbers from the environment: declared `decimal`, Meltano stopped on them)
            "TARGET_OPENAI_CAPI_REQUEST_TIMEOUT_SECONDS": "30",
            "TARGET_OPENAI_CAPI_MAX_RETRY_SECONDS": "30",
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert demo_sandbox.events(DEMO_PIXEL) == []  # validate_only: nothing recorded
    stats = demo_sandbox.stats()
    assert stats["validate_only_requests"] == stats["requests"] == 1


def test_a_mistyped_dry_run_variable_stops_the_run_under_meltano(
    project: Path, demo_sandbox: Sandbox
):
    """dry_run was declared a boolean: Meltano read any word but true/1/yes/on as false and
    passed false, so `ture` (or `true ` from a .env) sent every event for real and moved STATE
    on. Declared a string, the target reads the word: a typo stops the run, `true ` is a dry
    run."""

    def run_with_dry_run(word: str) -> subprocess.CompletedProcess[str]:
        env = {"TARGET_OPENAI_CAPI_API_URL": demo_sandbox.url, "TARGET_OPENAI_CAPI_DRY_RUN": word}
        return meltano(project, "run", "tap-demo-orders", "target-openai-capi", env=env)

    typo = run_with_dry_run("ture")
    assert typo.returncode != 0
    assert "dry_run is 'ture': use true or false" in typo.stdout + typo.stderr
    assert demo_sandbox.stats()["requests"] == 0
    spaced = run_with_dry_run("true ")
    assert spaced.returncode == 0, spaced.stdout + spaced.stderr
    assert demo_sandbox.events(DEMO_PIXEL) == []
    stats = demo_sandbox.stats()
    assert stats["validate_only_requests"] == stats["requests"] == 1


def test_meltano_invoke_about(project: Path):
    about = meltano(project, "invoke", "target-openai-capi", "--about", "--format", "json")
    assert about.returncode == 0, about.stderr
    info: dict[str, Any] = json.loads(about.stdout[about.stdout.index("{") :])
    assert info["name"] == "target-openai-capi"
    assert {"pixel_id", "api_key", "streams"} <= set(info["settings"]["properties"])
    assert "stream-maps" in info["capabilities"]


def test_meltano_config_list_redacts_the_key(project: Path):
    listed = meltano(project, "--environment=dev", "config", "list", "target-openai-capi")
    assert listed.returncode == 0, listed.stderr
    assert "api_key [env: TARGET_OPENAI_CAPI_API_KEY] current value: (redacted)" in listed.stdout
    assert "pixel_id [env: TARGET_OPENAI_CAPI_PIXEL_ID] current value: 'px_demo'" in listed.stdout
    assert DEMO_KEY not in listed.stdout + listed.stderr
