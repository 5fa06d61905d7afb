"""The console script `target-openai-capi`: the SDK CLI, with an unreadable config said plainly."""

from __future__ import annotations

import sys

from target_openai_capi.target import TargetOpenAICapi


def main() -> None:
    """The console script: the SDK's CLI, with a config file that cannot be read said plainly
    (the SDK reads it before the target exists, and would end in a traceback)."""
    try:
        TargetOpenAICapi.cli()
    except (ValueError, OSError) as exc:  # JSONDecodeError is a ValueError
        if not _from_config_file(exc):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        name = getattr(exc, "filename", None)
        where = f" {name!r}" if name else ""
        print(
            f"target-openai-capi: the config file{where} cannot be read: {reason}", file=sys.stderr
        )
        sys.exit(1)


def _from_config_file(exc: BaseException) -> bool:
    """True when the exception was raised while the SDK read a --config file."""
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name in ("from_cli_args", "read_json_file"):
            return True
        traceback = traceback.tb_next
    return False
