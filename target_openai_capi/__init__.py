"""Singer target that delivers records as conversion events to OpenAI's Conversions API."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed package's metadata when first asked for (a worker
    process, which never asks, does not pay for importlib.metadata)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("target-openai-capi")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"
