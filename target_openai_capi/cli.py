"""The console script `target-openai-capi`: the SDK CLI, with an unreadable config said plainly."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
from pathlib import Path
from types import FrameType

from target_openai_capi.output_files import protect


def main() -> None:
    """The console script: the SDK's CLI, with a config file that cannot be read said plainly
    (the SDK reads it before the target exists, and would end in a traceback)."""
    closed = _hold_closed_standard_streams()
    if 1 in closed:
        printing = [arg for arg in sys.argv[1:] if arg in _PRINTING_OPTIONS]
        print(
            f"target-openai-capi: standard output is closed: what {printing[0]} prints would "
            "be lost."
            if printing
            else "target-openai-capi: standard output is closed: the STATE messages that say "
            "what was delivered would be lost. Start it with its output read (tap | "
            "target-openai-capi ... > state.json, or as Meltano runs it).",
            file=sys.stderr,
        )
        sys.exit(1)
    _protect_config_files(sys.argv[1:])
    _stop_quietly_while_starting()
    _check_log_level()
    _check_config_files(sys.argv[1:])
    from target_openai_capi.target import TargetOpenAICapi  # (~0.5 s of imports)

    printing = [arg for arg in sys.argv[1:] if arg in _ONLY_PRINTING_OPTIONS]
    try:
        TargetOpenAICapi.cli()
        if printing:
            sys.stdout.flush()  # (here, where a full disk can still be said: not at exit)
    except (ValueError, OSError, TypeError) as exc:  # JSONDecodeError is a ValueError
        if _from_environment(exc):
            unreadable = _unreadable_json_variables()
            which = (
                ", ".join(unreadable)
                if unreadable
                else "a TARGET_OPENAI_CAPI_* environment variable"
            )
            print(
                f"target-openai-capi: {which} cannot be read as its setting's type "
                f"({type(exc).__name__}: {str(exc)[:200]}); numbers must be digits, objects and "
                "arrays JSON",
                file=sys.stderr,
            )
            sys.exit(1)
        if isinstance(exc, OSError) and printing and not _from_config_file(exc):
            _printed_nothing(printing[0], exc)
        if not _from_config_file(exc):
            raise
        if isinstance(exc, TypeError) or "dictionary update sequence" in str(exc):
            # JSON, but not an object: the SDK merged it into a dict
            print(
                "target-openai-capi: the config file must hold a JSON object of settings",
                file=sys.stderr,
            )
            sys.exit(1)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        name = getattr(exc, "filename", None)
        where = f" {name!r}" if name else ""
        print(
            f"target-openai-capi: the config file{where} cannot be read: {reason}", file=sys.stderr
        )
        sys.exit(1)


def _printed_nothing(option: str, exc: OSError) -> None:
    """What an option prints could not be written (stdout on a full disk, /dev/full): said on
    stderr, exit 1 (a traceback said it before)."""
    with contextlib.suppress(OSError):  # (so that the flush at exit fails no more)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    print(
        f"target-openai-capi: what {option} prints could not be written to standard output "
        f"({exc.strerror or exc})",
        file=sys.stderr,
    )
    sys.exit(1)


# Log levels the SDK takes from TARGET_OPENAI_CAPI_LOGLEVEL or LOGLEVEL (logging's names).
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET")


def _check_log_level() -> None:
    """A log level the SDK cannot set (LOGLEVEL=verbose) is said, not a traceback at start."""
    for name in ("TARGET_OPENAI_CAPI_LOGLEVEL", "LOGLEVEL"):
        value = os.environ.get(name)
        if value:  # (the SDK reads the first one set and not empty)
            if value.upper() not in _LOG_LEVELS:
                print(
                    f"target-openai-capi: {name}={value[:40]!r} is not a log level: one of "
                    "DEBUG, INFO, WARNING, ERROR, CRITICAL",
                    file=sys.stderr,
                )
                sys.exit(1)
            return


# Options whose answer is printed (no run, no STATE).
_PRINTING_OPTIONS = ("--test", "--about", "--version", "--help", "-h")
# Those that only print (--test also reads its config and the API's answer).
_ONLY_PRINTING_OPTIONS = ("--about", "--version", "--help", "-h")


def _stop_quietly_while_starting() -> None:
    """Until the target's own handlers take over (termination.py, set when it is made), SIGINT
    and SIGTERM stop the run with one line, as the target does while starting: nothing was
    read yet. Ctrl-C in the imports printed a KeyboardInterrupt traceback; SIGTERM, nothing."""

    def stop(signum: int, frame: FrameType | None) -> None:
        print(
            f"target-openai-capi: received signal {signum} while starting: stopped, nothing read.",
            file=sys.stderr,
        )
        sys.stderr.flush()
        os._exit(0)  # (no exit handler or import left half-run raises on the way out)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _hold_closed_standard_streams() -> list[int]:
    """Which of descriptors 0, 1 and 2 the target was started without (`>&-`, `2>&-`); each is
    given /dev/null, so that no file the run opens takes its number (a dead-letter file opened
    as descriptor 1 was refused as 'the target's standard output'). Without standard error the
    run goes on, its log unwritten."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 2 in closed and sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)
    return closed


def _config_paths(args: list[str]) -> list[str]:
    """The --config files named on the command line (not ENV), in order."""
    paths = []
    for index, arg in enumerate(args):
        if arg == "--config" and index + 1 < len(args):
            path = args[index + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            continue
        if path != "ENV":
            paths.append(path)
    return paths


def _protect_config_files(args: list[str]) -> None:
    """The --config files are read, never written: a dead_letter_path or request_log_path
    naming one would append lines to the settings and break the next run."""
    for path in _config_paths(args):
        protect(Path(path), f"the config file {path!r} (--config) the settings are read from")


def _check_config_files(args: list[str]) -> None:
    """Each --config file that is a regular file read as the SDK reads it (simplejson, floats
    as Decimals), so that what is wrong names the file (of several), and a JSON array, which
    the SDK would take as pairs of settings, is refused as every other value that is no object
    is. (A pipe or /dev/stdin is left to the SDK: reading it here would use it up.)"""
    import decimal

    import simplejson

    for path in _config_paths(args):
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            text = Path(path).read_text(encoding="utf-8")
            settings = simplejson.loads(text, parse_float=decimal.Decimal)  # (the SDK's reading)
        except (OSError, ValueError, RecursionError) as exc:
            if isinstance(exc, OSError):
                continue  # (the SDK says it, naming the file)
            print(
                f"target-openai-capi: the config file {path!r} cannot be read: {str(exc)[:200]}",
                file=sys.stderr,
            )
            sys.exit(1)
        if not isinstance(settings, dict):
            print(
                f"target-openai-capi: the config file {path!r} must hold a JSON object of settings",
                file=sys.stderr,
            )
            sys.exit(1)


def _from_config_file(exc: BaseException) -> bool:
    """True when the exception was raised while the SDK read a --config file."""
    return _raised_in(exc, ("from_cli_args", "read_json_file"))


def _unreadable_json_variables() -> list[str]:
    """The TARGET_OPENAI_CAPI_* variables written as a JSON object or array that is not JSON,
    and those of a setting that is an object or an array (`streams`) that are no JSON."""
    import copy
    import json

    from target_openai_capi.config import CONFIG_SCHEMA, ENV_PREFIX, _types_of
    from target_openai_capi.target import TargetOpenAICapi

    schema = copy.deepcopy(CONFIG_SCHEMA)
    TargetOpenAICapi.append_builtin_config(schema)  # (the SDK's own: stream_maps, ...)
    structured = {
        ENV_PREFIX + name.upper()
        for name in schema["properties"]
        if {"object", "array"} & set(_types_of(name, schema))
    }
    found = []
    for name, value in sorted(os.environ.items()):
        if not name.startswith("TARGET_OPENAI_CAPI_"):
            continue
        if value.strip()[:1] not in ("{", "[") and name not in structured:
            continue
        try:
            json.loads(value)
        except ValueError:
            found.append(name)
    return found


def _from_environment(exc: BaseException) -> bool:
    """True when the exception was raised while the SDK read the settings' environment
    variables (--config ENV)."""
    return _raised_in(exc, ("parse_environment_config",))


def _raised_in(exc: BaseException, functions: tuple[str, ...]) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name in functions:
            return True
        traceback = traceback.tb_next
    return False
