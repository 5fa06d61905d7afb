"""Accepted events in SQLite, deduplicated on (pixel id, event name, id) as the real API does.

The event name is the type, or a custom event's custom_event_name (lowercased, as the API does).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import orjson

from target_openai_capi.contract import dedup_name

if TYPE_CHECKING:
    from collections.abc import Sequence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pixel_id TEXT NOT NULL,
    type TEXT NOT NULL,  -- the event name of the dedup key (contract.dedup_name)
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (pixel_id, type, event_id)
)
"""


class StoreClosed(RuntimeError):
    """The sandbox was stopped while a request was still being handled."""


class EventStore:
    """One SQLite connection shared by the handler threads, guarded by a lock."""

    def __init__(self, path: str = ":memory:") -> None:
        """Open (or create) the database at path; ':memory:' keeps nothing after stop."""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        with self._db:
            self._db.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """The open connection (call with the lock held)."""
        if self._db is None:
            raise StoreClosed("the sandbox's event store is closed")
        return self._db

    def add(self, pixel_id: str, events: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Store events that are new for this pixel; (stored, duplicates)."""
        rows = [(pixel_id, dedup_name(event), event["id"], orjson.dumps(event)) for event in events]
        with self._lock:
            db = self._connection()
            with db:  # one transaction per batch: all of it or none of it
                cursor = db.executemany(
                    "INSERT OR IGNORE INTO events (pixel_id, type, event_id, body)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
            stored = cursor.rowcount
        return stored, len(rows) - stored

    def events(self, pixel_id: str | None = None) -> list[dict[str, Any]]:
        """Stored event bodies in arrival order, for one pixel or all."""
        with self._lock:
            db = self._connection()
            if pixel_id is None:
                rows = db.execute("SELECT body FROM events ORDER BY seq").fetchall()
            else:
                rows = db.execute(
                    "SELECT body FROM events WHERE pixel_id = ? ORDER BY seq", (pixel_id,)
                ).fetchall()
        return [orjson.loads(body) for (body,) in rows]

    def latest(self, per_pixel: int) -> dict[str, list[dict[str, Any]]]:
        """The newest stored events of each pixel, newest first (per_pixel of each at most)."""
        with self._lock:
            db = self._connection()
            rows = db.execute(
                "SELECT pixel_id, body FROM ("
                " SELECT pixel_id, body, seq,"
                " ROW_NUMBER() OVER (PARTITION BY pixel_id ORDER BY seq DESC) AS rank"
                " FROM events) WHERE rank <= ? ORDER BY seq DESC",
                (per_pixel,),
            ).fetchall()
        latest: dict[str, list[dict[str, Any]]] = {}
        for pixel_id, body in rows:
            latest.setdefault(pixel_id, []).append(orjson.loads(body))
        return latest

    def clear(self) -> None:
        """Forget every stored event."""
        with self._lock:
            db = self._connection()
            with db:
                db.execute("DELETE FROM events")

    def close(self) -> None:
        """Close the database; later calls raise StoreClosed."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
