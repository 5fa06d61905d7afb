"""Docs and plugin definitions stay in step with the code.

docs/settings.md is regenerated from `--about` and compared; every setting in config.py is
declared, described and typed alike in meltano.yml and the MeltanoHub file; the cookbook's
recipes compile; the workflows parse, have what they promise and pass GitHub's workflow schema
(the GitHub CI lint job also runs actionlint, which cannot be installed from PyPI here).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from target_openai_capi.config import CONFIG_SCHEMA
from target_openai_capi.mapping.stream_mapping import EVENT_FIELDS, compile_stream_mapping
from target_openai_capi.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = CONFIG_SCHEMA["properties"]
SDK_SETTINGS = {"stream_maps", "stream_map_config"}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_settings_doc", ROOT / "scripts" / "gen_settings_doc.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def _loader_settings() -> dict[str, dict[str, Any]]:
    loader = _yaml("meltano.yml")["plugins"]["loaders"][0]
    return {s["name"]: s for s in loader["settings"]}


def _hub_settings() -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in _yaml("meltano-hub/target-openai-capi.yml")["settings"]}


# --- docs/settings.md ---------------------------------------------------------------------------


def test_settings_doc_is_generated_from_the_current_code():
    done = subprocess.run(
        [sys.executable, "scripts/gen_settings_doc.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_fails_on_a_new_setting(monkeypatch, capsys):
    generator = _load_generator()
    real_about = generator.about

    def about_with_a_new_setting(fmt: str) -> str:
        text = real_about(fmt)
        if fmt == "markdown":
            return text.replace("| api_url |", "| new_setting | False | None |  |\n| api_url |")
        return text

    monkeypatch.setattr(generator, "about", about_with_a_new_setting)
    assert generator.main(["--check"]) == 1
    captured = capsys.readouterr()
    assert "+| new_setting | False | None |  |" in captured.out
    assert "run scripts/gen_settings_doc.py" in captured.err


def test_every_setting_and_field_has_a_described_row():
    doc = (ROOT / "docs" / "settings.md").read_text()
    rows = {
        cells[1].strip(): cells[-2].strip()
        for cells in (line.split("|") for line in doc.splitlines() if line.startswith("| "))
    }
    for name in [*SETTINGS, *EVENT_FIELDS]:
        assert rows.get(name), f"docs/settings.md has no described row for {name}"
    for name in PRESETS:
        assert f"`{name}`" in doc


# --- meltano.yml and the MeltanoHub definition ------------------------------------------------

KINDS = {"string": {"string", "options"}, "boolean": {"boolean"}, "integer": {"integer"}}
# (a number is declared an integer to Meltano: its `decimal` kind, set from the environment or
# .env, becomes a Decimal that Meltano cannot write to the config file it passes, and it stops)
KINDS |= {"number": {"integer"}, "object": {"object"}}
# (dry_run is declared a string: as a boolean, Meltano read a typo such as `ture` in its
# variable as false, and the run sent for real; the target reads the words itself)
DECLARED_AS_TEXT = {"dry_run"}


@pytest.mark.parametrize(
    "declared", [_loader_settings, _hub_settings], ids=["meltano.yml", "meltano-hub"]
)
def test_plugin_definitions_declare_every_setting_alike(declared):
    settings = declared()
    for name, schema in SETTINGS.items():
        assert name in settings, f"{name} is not declared"
        setting = settings[name]
        assert setting.get("description", "").strip(), f"{name} has no description"
        json_type = next(t for t in schema["type"] if t != "null")
        kinds = {"string"} if name in DECLARED_AS_TEXT else KINDS[json_type]
        assert setting["kind"] in kinds, f"{name}: kind {setting['kind']}"
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), name
        if "default" in schema:
            assert setting.get("value") == schema["default"], f"{name}: default differs"
        if "enum" in schema:
            values = [option["value"] for option in setting["options"]]
            assert sorted(values) == sorted(v for v in schema["enum"] if v is not None), name
    unknown = set(settings) - set(SETTINGS) - SDK_SETTINGS - {"validate_records"}
    assert not unknown, f"declared but not a setting of the target: {unknown}"


def test_hub_definition_mirrors_meltano_yml():
    hub = _yaml("meltano-hub/target-openai-capi.yml")
    loader = _yaml("meltano.yml")["plugins"]["loaders"][0]
    assert hub["name"] == loader["name"] == "target-openai-capi"
    assert hub["namespace"] == loader["namespace"]
    assert hub["executable"] == loader["executable"]
    assert hub["capabilities"] == loader["capabilities"]
    assert _hub_settings() == _loader_settings()


def test_meltano_yml_declares_the_capabilities_the_target_reports():
    about = _load_generator().about("json")
    capabilities = yaml.safe_load(about)["capabilities"]  # JSON is YAML
    assert _yaml("meltano.yml")["plugins"]["loaders"][0]["capabilities"] == capabilities


def test_no_real_key_in_the_project_file():
    text = (ROOT / "meltano.yml").read_text()
    keys = re.findall(r"sk-svcacct-[A-Za-z0-9_-]+", text)
    assert keys == ["sk-svcacct-demo-sandbox-only"]


# --- the cookbook ------------------------------------------------------------------------------


def _cookbook_entries() -> list[tuple[str, dict[str, Any]]]:
    text = (ROOT / "docs" / "cookbook.md").read_text()
    entries = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        doc = yaml.safe_load(block)
        for stream, entry in (doc.get("streams") or {}).items():
            entries.append((stream, entry))
    return entries


def test_every_cookbook_recipe_compiles():
    entries = _cookbook_entries()
    assert len(entries) >= 10
    for stream, entry in entries:
        compile_stream_mapping(stream, entry)  # raises ValueError naming the problem


def _squeeze(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with whitespace runs in its expressions collapsed (YAML folds long lines)."""
    fields = {k: " ".join(v.split()) for k, v in entry.get("fields", {}).items()}
    return {**entry, "fields": fields}


@pytest.mark.parametrize("name", ["tap-shopify/orders", "tap-stripe/subscriptions"])
def test_cookbook_spells_out_the_preset_as_it_is(name):
    assert _squeeze(PRESETS[name]) in [_squeeze(entry) for _, entry in _cookbook_entries()]


def test_cookbook_names_every_preset():
    text = (ROOT / "docs" / "cookbook.md").read_text()
    for name in PRESETS:
        assert f"`{name}`" in text


# --- workflows --------------------------------------------------------------------------------


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow.get("on", workflow.get(True))


def test_ci_workflow_lints_types_and_tests_every_supported_python():
    ci = _yaml(".github/workflows/ci.yml")
    assert {"push", "pull_request"} <= set(_on(ci))
    jobs = ci["jobs"]
    steps = {
        name: " ".join(str(s.get("run", "")) for s in job["steps"]) for name, job in jobs.items()
    }
    assert "ruff check" in steps["lint"]
    assert "ruff format --check" in steps["lint"]
    assert "actionlint" in steps["lint"]
    assert "mypy" in steps["types"]
    assert "pytest" in steps["tests"]
    assert jobs["tests"]["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12", "3.13"]
    assert "scripts/demo.sh" in steps["demo"]


def test_example_sync_workflow_has_what_it_promises():
    text = (ROOT / "examples" / "github-actions" / "capi-sync.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = _on(workflow)
    assert triggers["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = workflow["jobs"]["sync"]
    env = job["env"]
    assert env["MELTANO_STATE_BACKEND_URI"] == "${{ secrets.MELTANO_STATE_BACKEND_URI }}"
    # The key only where the sync runs: not in the installs, which run third-party code.
    [sync] = [step for step in job["steps"] if "meltano run" in step.get("run", "")]
    assert sync["env"]["TARGET_OPENAI_CAPI_API_KEY"] == "${{ secrets.TARGET_OPENAI_CAPI_API_KEY }}"
    assert not any("API_KEY" in name for name in env)
    for step in job["steps"]:
        if step is not sync:
            assert not any("API_KEY" in name for name in step.get("env", {}))
    # A scheduled run sets no DRY_RUN: it would override the project's own dry_run setting.
    assert not any("DRY_RUN" in name and name.startswith("TARGET") for name in env)
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "meltano install" in runs
    assert "meltano run" in runs
    assert "Run summary" in runs
    assert "GITHUB_STEP_SUMMARY" in runs
    assert "sk-svcacct-" not in text.replace("(sk-svcacct-...)", "")


WORKFLOWS = [".github/workflows/ci.yml", "examples/github-actions/capi-sync.yml"]


def test_workflows_pass_the_github_workflow_schema():
    # check-jsonschema ships GitHub's workflow schema, so this lint runs offline, every time.
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.github-workflows",
            *WORKFLOWS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_schema_lint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / WORKFLOWS[0]).read_text().replace("runs-on:", "runs-onn:"))
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.github-workflows",
            str(broken),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "runs-on" in done.stdout + done.stderr


def test_about_says_what_the_target_is_also_under_python_oo():
    """`python -OO` (PYTHONOPTIMIZE=2) drops docstrings, where the SDK reads the description:
    --about said "description": null."""
    import json
    import os

    done = subprocess.run(
        [sys.executable, "-m", "target_openai_capi", "--about", "--format=json"],
        capture_output=True,
        env={**os.environ, "PYTHONOPTIMIZE": "2"},
        check=True,
        timeout=60,
    )
    about = json.loads(done.stdout)
    assert about["description"] == (
        "Delivers Singer records as conversion events to OpenAI's Conversions API."
    )
