"""Built-in stream mappings for common taps: `preset: <name>` on a stream entry starts from one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Preset name -> a `streams` entry (event_type / event_type_from, event_types, filter, fields).
PRESETS: dict[str, dict[str, Any]] = {}


def apply_preset(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry with its preset filled in; the user's keys win, and `fields` merge per field."""
    name = entry.get("preset")
    if name is None:
        return dict(entry)
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS)) or "none"
        raise ValueError(f"preset: unknown preset {name!r} (known: {known})")
    preset = PRESETS[name]
    merged = {**preset, **{k: v for k, v in entry.items() if k != "preset"}}
    merged["fields"] = {**preset.get("fields", {}), **(entry.get("fields") or {})}
    if "event_type" in entry:
        merged.pop("event_type_from", None)  # the user's literal type replaces the preset's
    if "event_type_from" in entry:
        merged.pop("event_type", None)
    merged["event_types"] = {**preset.get("event_types", {}), **(entry.get("event_types") or {})}
    return merged
