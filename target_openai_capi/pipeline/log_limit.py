"""Warnings about records, logged one by one up to a limit per stream and kind, then counted."""

from __future__ import annotations

import logging

# Rejections (and notes) logged one by one per stream and kind; past that they are only counted
# (every rejection is still in the dead-letter file and the summary).
LOGGED_PER_KIND = 20
# The kind of a note about an event sent: an identifier left out. Notes are not counted or
# dead-lettered, only logged.
NOTE = "note"


class LimitedLog:
    """Logs the first LOGGED_PER_KIND warnings of each (stream, kind), then says it stops."""

    def __init__(self, logger: logging.Logger, *, dead_letters: bool) -> None:
        self.logger = logger
        self._dead_letters = dead_letters
        self._counts: dict[tuple[str, str], int] = {}

    def warning(self, stream: str, kind: str, msg: str, *args: object) -> None:
        """Log msg % args, unless (stream, kind) already logged LOGGED_PER_KIND of them."""
        n = self._counts.get((stream, kind), 0)
        self._counts[(stream, kind)] = n + 1
        if n < LOGGED_PER_KIND:
            self.logger.warning(msg, *args)
        elif n == LOGGED_PER_KIND and kind == NOTE:
            self.logger.warning(
                "More of the same for '%s' (%s): not logged from now on.", stream, kind
            )
        elif n == LOGGED_PER_KIND:
            self.logger.warning(
                "More of the same for '%s' (%s): only counted from now on%s.",
                stream,
                kind,
                "; every one is in the dead-letter file" if self._dead_letters else "",
            )
