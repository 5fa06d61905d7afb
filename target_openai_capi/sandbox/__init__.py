"""A local server that behaves like OpenAI's Conversions API, for tests, demos and benchmarks."""

from __future__ import annotations

from target_openai_capi.sandbox.faults import FaultConfig
from target_openai_capi.sandbox.server import DEFAULT_MAX_BODY_BYTES, Sandbox, start_sandbox

__all__ = ["DEFAULT_MAX_BODY_BYTES", "FaultConfig", "Sandbox", "start_sandbox"]
