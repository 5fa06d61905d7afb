"""The private singer-sdk parts the target relies on, listed at the version pin, all exist."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOOKS = re.findall(r"# sdk-hook: (\S+)", (ROOT / "pyproject.toml").read_text())


def _resolve(dotted: str) -> Any:
    """The object a dotted name names: its longest importable module, then attributes; an
    instance attribute (set in __init__ as self.<name>) resolves to its class."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(value, name) and isinstance(value, type):
                assert f"self.{name} " in inspect.getsource(value), dotted
                return value
            value = getattr(value, name)
        return value
    raise AssertionError(dotted)


@pytest.mark.parametrize("hook", HOOKS)
def test_each_listed_hook_exists_in_the_installed_sdk(hook):
    assert _resolve(hook) is not None


def test_every_private_sdk_method_the_target_or_sink_defines_is_listed():
    from singer_sdk.sinks.core import Sink
    from singer_sdk.target_base import Target

    listed = {hook.rsplit(".", 1)[1] for hook in HOOKS}
    for path, base in (("target.py", Target), ("sink.py", Sink)):
        source = (ROOT / "target_openai_capi" / path).read_text()
        defined = set(re.findall(r"\n    def (_[a-z][a-z_]*)\(", source))
        overridden = {name for name in defined if hasattr(base, name)}
        assert overridden <= listed, path
    assert len(HOOKS) >= 10
