"""Opening the files the target writes (dead letters, the request log): owner-only, append."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def open_owner_only(path: Path) -> int:
    """A descriptor appending to `path`, its folders made as needed.

    A new file is created owner-only (0600), and an existing regular file readable by others is
    narrowed to 0600: the lines hold records as they arrived. A device, pipe or socket
    (`/dev/null`, `/dev/stderr`, a FIFO another process reads) is written to as it is: its mode
    is the system's, not the run's, and narrowing `/dev/null` would break it for every other
    user of the machine. Raises OSError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd
