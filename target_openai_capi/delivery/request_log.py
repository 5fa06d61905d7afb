"""The request log (`request_log_path`): every request body exactly as it was sent, with its
answer's status, one JSON line each. Never the key or any header.

A dry run with it on shows precisely what a real run would send: the events already hashed and
normalised, in the batches they travel in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from target_openai_capi.log_safety import without_secrets_in_bytes
from target_openai_capi.output_files import append_line, open_owner_only


class RequestLogError(Exception):
    """The request log cannot be opened or written; str() names it and why."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(
            f"request_log_path {str(path)!r} cannot be written ({exc.strerror or exc})"
        )


class RequestLog:
    """Appends `{"at", "status", "error", "body"}` lines; `body` is the request body verbatim."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._lock = threading.Lock()  # batches in flight write from several threads

    def open(self) -> None:
        """Open (create, 0600) the file now, so a path that cannot be written stops the start."""
        if self._fd is not None:
            return
        try:
            self._fd = open_owner_only(self.path)
        except OSError as exc:
            raise RequestLogError(self.path, exc) from None

    def write(self, body: bytes, status: int | None, error: str | None = None) -> None:
        """One request: its body as sent, and the answer's status (or the network error)."""
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        head = f'{{"at":"{at}","status":{"null" if status is None else status},"error":'
        # The error text is ours (TransportError messages hold no key).
        line = head.encode() + json.dumps(error).encode() + b',"body":' + body + b"}\n"
        line = without_secrets_in_bytes(line)  # (a record may hold the key, see log_safety)
        with self._lock:
            self.open()
            assert self._fd is not None
            try:
                append_line(self._fd, line)  # (the whole line or none of it)
            except OSError as exc:
                raise RequestLogError(self.path, exc) from None

    def close(self) -> None:
        """Close the file if it was opened."""
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
