"""The settings a run needs, read once from the config with the config schema's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_openai_capi import __version__
from target_openai_capi.config import setting
from target_openai_capi.delivery import Client, ClientSettings, RetryPolicy, Uploader
from target_openai_capi.delivery.request_log import RequestLog
from target_openai_capi.parallel.pool import default_worker_processes


@dataclass(frozen=True)
class PipelineSettings:
    """The settings a run needs, read once from the config."""

    batch_size: int
    dry_run: bool
    user_field_style: str
    default_phone_region: str | None
    on_rejected: str
    dead_letter_path: str | None
    allow_unmatched_streams: bool = False
    worker_processes: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PipelineSettings:
        """Read the pipeline's settings from the target config."""
        return cls(
            batch_size=int(setting(config, "batch_size")),
            dry_run=bool(setting(config, "dry_run")),
            user_field_style=str(setting(config, "user_field_style")),
            default_phone_region=setting(config, "default_phone_region"),
            on_rejected=str(setting(config, "on_rejected")),
            dead_letter_path=setting(config, "dead_letter_path"),
            allow_unmatched_streams=bool(setting(config, "allow_unmatched_streams")),
            worker_processes=worker_processes(config),
        )


def worker_processes(config: Mapping[str, Any]) -> int:
    """Worker processes that prepare records: the setting, else one per core (parallel/pool.py)."""
    value = setting(config, "worker_processes")
    return default_worker_processes() if value is None else int(value)


def integration_source(config: Mapping[str, Any]) -> str | None:
    """The integration_source every request carries: the setting trimmed, or None to send none
    (null, or an empty text: Meltano passes its default for a null)."""
    source = setting(config, "integration_source")
    if source is None:
        return None
    return str(source).strip() or None


def uploader_from_config(config: Mapping[str, Any]) -> Uploader:
    """The HTTP side of a run, built from the target config."""
    client = Client(
        ClientSettings(
            api_url=str(setting(config, "api_url")),
            pixel_id=str(config["pixel_id"]),
            api_key=str(config["api_key"]),
            user_agent=f"target-openai-capi/{__version__}",
            read_timeout_s=float(setting(config, "request_timeout_seconds")),
        )
    )
    return Uploader(
        client,
        policy=RetryPolicy(
            max_attempts=int(setting(config, "max_attempts")),
            max_total_seconds=float(setting(config, "max_retry_seconds")),
        ),
        max_concurrent_requests=int(setting(config, "max_concurrent_requests")),
        validate_first=bool(setting(config, "validate_first")),
        integration_source=integration_source(config),
        request_log=RequestLog(path) if (path := config.get("request_log_path")) else None,
    )
