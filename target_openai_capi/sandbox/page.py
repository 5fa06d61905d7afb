"""GET / on the sandbox: its event stream as a page a person reads (pure: data in, HTML out).

Server-rendered, no JavaScript: it refreshes itself. Like Ads Manager's event stream, it shows
the latest events per pixel with the identifiers each carries, the rejected batches with the
API's messages, and the counters. Every value is escaped: events are input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from target_openai_capi.pipeline.coverage import identifiers

REFRESH_SECONDS = 5
COUNTERS = ("requests", "accepted", "duplicates", "rejected_batches", "validate_only_requests")


def _time(timestamp_ms: object) -> str:
    if not isinstance(timestamp_ms, int):
        return "?"
    try:
        moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "?"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(data: object) -> str:
    if not isinstance(data, Mapping) or "amount" not in data:
        return ""
    return f"{data.get('amount')} {data.get('currency', '')} (minor units)"


def _event_row(event: Mapping[str, Any]) -> str:
    name = event.get("type", "?")
    if name == "custom":
        name = f"custom: {event.get('custom_event_name', '?')}"
    kinds = ", ".join(sorted(identifiers(event))) or "none"
    cells = (
        _time(event.get("timestamp_ms")),
        name,
        event.get("id", "?"),
        _money(event.get("data")),
        kinds,
    )
    return "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in cells) + "</tr>"


def render_page(
    stats: Mapping[str, Any],
    events_by_pixel: Mapping[str, Sequence[Mapping[str, Any]]],
    rejections: Sequence[Mapping[str, Any]],
) -> str:
    """The whole page."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        "<title>Conversions API sandbox: event stream</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
        "h2{margin-top:1.5em}.none{color:#888}</style></head><body>",
        "<h1>Conversions API sandbox: event stream</h1>",
        f"<p>Refreshes every {REFRESH_SECONDS} s. Newest first.</p>",
        '<h2>Counters</h2><table id="counters">',
    ]
    for name in (
        "requests",
        "accepted",
        "duplicates",
        "rejected_batches",
        "validate_only_requests",
    ):
        parts.append(f"<tr><th>{escape(name)}</th><td>{escape(str(stats.get(name, 0)))}</td></tr>")
    parts.append("</table>")
    parts.append('<h2>Events</h2><div id="events">')
    if not events_by_pixel:
        parts.append('<p class="none">No events stored yet.</p>')
    for pixel, events in sorted(events_by_pixel.items()):
        parts.append(f"<h3>Pixel {escape(pixel)} ({len(events)} latest)</h3>")
        parts.append(
            "<table><tr><th>time</th><th>type</th><th>id</th><th>amount</th>"
            "<th>identifiers</th></tr>"
        )
        parts.extend(_event_row(event) for event in events)
        parts.append("</table>")
    parts.append('</div><h2>Rejected batches</h2><div id="rejections">')
    if not rejections:
        parts.append('<p class="none">No batch was rejected.</p>')
    else:
        parts.append(
            "<table><tr><th>time</th><th>pixel</th><th>status</th><th>events</th>"
            "<th>message</th></tr>"
        )
        for r in rejections:
            cells = (
                r.get("at", ""),
                r.get("pixel", ""),
                r.get("status"),
                r.get("events"),
                r.get("message"),
            )
            parts.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</div></body></html>")
    return "\n".join(parts)
