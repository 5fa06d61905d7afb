"""Seeing what is sent: match coverage, skipping unmatchable events, the credential check, the
request log, and the sandbox's event stream page (over HTTP and in a real headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD, iso_minutes_ago, record, run_target, schema, target_config

from target_openai_capi.sandbox import start_sandbox

AT = iso_minutes_ago(5)
SCHEMA = schema("orders", {"id": {"type": "string"}}, ["id"])


def order(n: int, **user: Any) -> str:
    return record(
        "orders",
        {"id": f"o{n}", "timestamp": AT, "type": "order_created", "source_url": None, **user},
    )


def config(url: str, tmp_path: Path, streams: dict[str, Any] | None = None, **extra: Any) -> dict:
    return target_config(url, tmp_path, streams or {"orders": {}}, **extra)


ORDERS = [
    order(1, oppref="opp_1", email="a@example.com"),
    order(2, email="b@example.com", phone="+1 415 555 2671"),
    order(3, external_id="c-3", ip_address="203.0.113.9", user_agent="Mozilla/5.0"),
    order(4, city="Paris", country="FR"),
    order(5),
]


def metric(run: Any, stream: str, kind: str) -> int:
    for line in run.stderr.splitlines():
        if '"capi_match_coverage"' in line:
            point = json.loads(line.split("METRIC: ", 1)[1])
            if point["tags"] == {"stream": stream, "identifier": kind}:
                return int(point["value"])
    raise AssertionError(f"no coverage metric for {stream} {kind}")


def test_coverage_lines_count_what_the_sandbox_stored(sandbox, tmp_path):
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, *ORDERS], tmp_path)
    assert run.returncode == 0, run.output
    stored = sandbox.events(PIXEL_ID)
    assert len(stored) == 5
    # Counted independently from what the sandbox stored.
    with_email = sum(1 for e in stored if e.get("user", {}).get("emails_sha256"))
    with_oppref = sum(1 for e in stored if e.get("oppref"))
    assert (with_email, with_oppref) == (2, 1)
    assert metric(run, "orders", "events") == 5
    assert metric(run, "orders", "email") == with_email
    assert metric(run, "orders", "oppref") == with_oppref
    assert metric(run, "orders", "phone") == 1
    assert metric(run, "orders", "external_id") == 1
    assert metric(run, "orders", "ip_address+user_agent") == 1
    assert metric(run, "orders", "geography") == 1
    assert metric(run, "orders", "none_strong") == 2  # o4 (geography only) and o5
    assert "Match coverage: orders: 5 events; oppref 1, obref 0, email 2, phone 1," in run.stderr


def test_a_stream_without_click_ids_gets_a_hint(sandbox, tmp_path):
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, order(1, email="a@b.co")], tmp_path)
    assert run.returncode == 0, run.output
    assert (
        "Match coverage: orders: 0 of 1 events carry an oppref or obref; "
        "see docs/cookbook.md#raising-match-rates" in run.stderr
    )


def test_unmatchable_events_are_skipped_with_their_reason(sandbox, tmp_path):
    streams = {"orders": {"skip_unmatchable": True}}
    run = run_target(config(sandbox.url, tmp_path, streams), [SCHEMA, *ORDERS], tmp_path)
    assert run.returncode == 0, run.output
    # Default identifiers: any strong one (oppref, obref, email, phone, external_id, GAID).
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["o1", "o2", "o3"]
    assert "skipped_unmatchable=2" in run.stderr
    sandbox.reset()
    streams = {"orders": {"skip_unmatchable": True, "match_identifiers": ["oppref"]}}
    run = run_target(config(sandbox.url, tmp_path, streams), [SCHEMA, *ORDERS], tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["o1"]
    assert "skipped_unmatchable=4" in run.stderr


def test_app_events_carrying_a_gaid_or_a_phone_are_not_skipped_by_default(sandbox, tmp_path):
    """skip_unmatchable's default identifiers left out the advertising id and the phone, which
    the coverage line counts as strong (they match on their own): an app-install stream of
    GAIDs was skipped whole, without a word."""
    props = {"id": {"type": "string"}, "gaid": {"type": ["string", "null"]}}
    props["phone"] = {"type": ["string", "null"]}
    at = iso_minutes_ago(5)
    rows = [("i1", "38400000-8cf0-11bd-b23e-10b96e40000d", None), ("i2", None, "+14155552671")]
    rows.append(("i3", None, None))
    lines = [schema("installs", props, ["id"])]
    lines += [
        record("installs", {"id": i, "at": at, "gaid": gaid, "phone": phone})
        for i, gaid, phone in rows
    ]
    fields = {"timestamp": "at", "android_advertising_id": "gaid", "phone": "phone"}
    entry = {"event_type": "app_installed", "skip_unmatchable": True, "fields": fields}
    run = run_target(config(sandbox.url, tmp_path, {"installs": entry}), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["i1", "i2"]
    assert "installs: received=3 sent=2 skipped_unmatchable=1" in run.stderr


def test_match_identifiers_are_checked_at_start_up(sandbox, tmp_path):
    streams = {"orders": {"skip_unmatchable": True, "match_identifiers": ["fingerprint"]}}
    run = run_target(config(sandbox.url, tmp_path, streams), [SCHEMA, *ORDERS], tmp_path)
    assert run.returncode != 0
    assert "fingerprint" in run.output
    assert sandbox.stats()["requests"] == 0


# --- the credential check ---------------------------------------------------------------------


def check(tmp_path: Path, **settings: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"max_attempts": 1, **settings}))
    return subprocess.run(
        [*TARGET_CMD, "--config", str(path), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_credential_check_says_in_one_line_whether_key_pixel_and_url_work(tmp_path):
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as sandbox:
        ok = check(tmp_path, api_key=API_KEY, pixel_id=PIXEL_ID, api_url=sandbox.url)
        advertiser = check(
            tmp_path, api_key="sk-proj-advertiser", pixel_id=PIXEL_ID, api_url=sandbox.url
        )
        pixel = check(tmp_path, api_key=API_KEY, pixel_id="px_unknown", api_url=sandbox.url)
        stats = sandbox.stats()
        stored = sandbox.events()
    # Port 9 (discard) on loopback: nothing listens there (a freed port could be reused).
    closed = "http://127.0.0.1:9/v1/events"
    unreachable = check(tmp_path, api_key=API_KEY, pixel_id=PIXEL_ID, api_url=closed)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: the key, pixel id 'px_test_123' at ")
    assert advertiser.returncode == 1
    assert advertiser.stdout.startswith("FAILED: the key is not a Conversions API key")
    assert pixel.returncode == 1
    assert pixel.stdout.startswith("FAILED: the key cannot write to pixel id 'px_unknown'")
    assert "(403: unknown pid)" in pixel.stdout  # (the answer's own "403: " not said twice)
    assert unreachable.returncode == 1
    assert "cannot be reached" in unreachable.stdout
    for answer in (ok, advertiser, pixel, unreachable):
        assert len(answer.stdout.strip().splitlines()) == 1
        assert API_KEY not in answer.stdout + answer.stderr
    assert stats["validate_only_requests"] >= 1  # the check validated, and stored nothing
    assert stored == []


# --- the request log ------------------------------------------------------------------------


def test_the_request_log_holds_exactly_the_bodies_the_sandbox_received(sandbox, tmp_path):
    log = tmp_path / "requests.jsonl"
    cfg = config(sandbox.url, tmp_path, request_log_path=str(log), dry_run=True, batch_size=2)
    run = run_target(cfg, [SCHEMA, *ORDERS], tmp_path)
    assert run.returncode == 0, run.output
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["status"] for line in lines] == [200, 200, 200]
    bodies = [line["body"] for line in lines]

    def first_id(body: dict[str, Any]) -> str:
        return str(body["events"][0]["id"])

    # As the server parsed each request (batches in flight together may finish in any order).
    assert sorted(bodies, key=first_id) == sorted(sandbox.received_bodies(), key=first_id)
    assert all(body["validate_only"] is True for body in bodies)
    assert sum(len(body["events"]) for body in bodies) == 5
    assert API_KEY not in log.read_text()
    assert "Authorization" not in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    # Byte for byte: each line's body is the request's JSON text as sent.
    raw = log.read_bytes().splitlines()
    assert all(re.search(rb',"body":\{"integration_source":"target-openai-capi",', r) for r in raw)


def _drain(fifo: Path, into: list[bytes]) -> threading.Thread:
    """A reader of the FIFO until its writer closes it (opening it blocks until the target does)."""

    def read() -> None:
        with fifo.open("rb") as pipe:
            into.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_a_pipe_no_program_reads_stops_at_start_up_saying_so(sandbox, tmp_path):
    """A FIFO for dead letters whose reader is not running: opening it waited for one for good,
    with nothing in the log (a scheduled run hung); the input was never read."""
    fifo = tmp_path / "letters.fifo"
    os.mkfifo(fifo, 0o600)
    cfg = config(sandbox.url, tmp_path, dead_letter_path=str(fifo))
    run = run_target(cfg, [SCHEMA, *ORDERS[:1]], tmp_path, timeout=30)
    assert run.returncode == 1
    assert "it is a named pipe (FIFO) that no program reads: start its reader" in run.stderr
    assert sandbox.stats()["requests"] == 0


def test_the_files_the_target_writes_keep_the_mode_of_a_pipe_and_narrow_a_file(sandbox, tmp_path):
    # Pointed at a device or a pipe (/dev/null, /dev/stderr, a FIFO a log shipper reads), the
    # target writes to it and leaves its mode alone: narrowing /dev/null to 0600 (as root in a
    # container) breaks it for every other user. An existing regular file is narrowed to 0600.
    letters, requests_fifo = tmp_path / "letters.fifo", tmp_path / "requests.fifo"
    for fifo in (letters, requests_fifo):
        os.mkfifo(fifo, 0o644)
        fifo.chmod(0o644)  # (whatever the umask)
    got_letters: list[bytes] = []
    got_requests: list[bytes] = []
    readers = [_drain(letters, got_letters), _drain(requests_fifo, got_requests)]
    stale = record("orders", {"id": "o9", "timestamp": iso_minutes_ago(8 * 24 * 60)})
    cfg = config(
        sandbox.url, tmp_path, dead_letter_path=str(letters), request_log_path=str(requests_fifo)
    )
    run = run_target(cfg, [SCHEMA, *ORDERS[:2], stale], tmp_path)
    assert run.returncode == 0, run.output
    for reader in readers:
        reader.join(timeout=30)
    assert stat.S_IMODE(letters.stat().st_mode) == 0o644
    assert stat.S_IMODE(requests_fifo.stat().st_mode) == 0o644
    dead = [json.loads(line) for line in got_letters[0].splitlines()]
    assert [m["record"]["id"] for m in dead if m["type"] == "RECORD"] == ["o9"]
    sent = [json.loads(line)["body"] for line in got_requests[0].splitlines()]
    assert sorted(e["id"] for body in sent for e in body["events"]) == ["o1", "o2"]

    # Regular files that exist, readable by others: narrowed to the owner.
    letters_file, requests_file = tmp_path / "letters.jsonl", tmp_path / "requests.jsonl"
    for path in (letters_file, requests_file):
        path.write_text("")
        path.chmod(0o644)
    cfg = config(
        sandbox.url,
        tmp_path,
        dead_letter_path=str(letters_file),
        request_log_path=str(requests_file),
    )
    run = run_target(cfg, [SCHEMA, stale], tmp_path)
    assert run.returncode == 0, run.output
    assert stat.S_IMODE(letters_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(requests_file.stat().st_mode) == 0o600
    assert '"o9"' in letters_file.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
@pytest.mark.parametrize("setting", ["dead_letter_path", "request_log_path"])
def test_a_file_or_link_another_user_put_in_a_shared_folder_is_refused(
    setting, sandbox, tmp_path, request
):
    """A file another user made where the dead letters go, in a folder every user may write in
    (/tmp), was narrowed to 0600, which leaves its owner reading every record with its emails;
    a symbolic link of theirs there had the lines appended to the file it names, one of this
    user's. Outside such a folder (a container's root writing to a volume of the host's user,
    a link an image holds) both are used, as before."""
    nobody = 65534
    stale = record("orders", {"id": "o9", "timestamp": iso_minutes_ago(8 * 24 * 60)})
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = shared / "out.jsonl"
    planted.write_text("")
    planted.chmod(0o666)
    os.chown(planted, nobody, nobody)
    cfg = config(sandbox.url, tmp_path, **{setting: str(planted)})
    run = run_target(cfg, [SCHEMA, stale], tmp_path)
    assert run.returncode == 1
    said = f"{setting} '{planted}' cannot be written (it belongs to another user (uid {nobody})"
    assert said in run.stderr
    assert planted.read_text() == ""
    assert sandbox.stats()["requests"] == 0

    mine = tmp_path / "mine.txt"
    mine.write_text("my notes\n")
    link = shared / "link.jsonl"
    link.symlink_to(mine)
    os.lchown(link, nobody, nobody)
    run = run_target(
        config(sandbox.url, tmp_path, **{setting: str(link)}), [SCHEMA, stale], tmp_path
    )
    assert run.returncode == 1
    assert f"it is a symbolic link of another user (uid {nobody})" in run.stderr
    assert mine.read_text() == "my notes\n"

    # Under a folder others may write in, a folder another user made is theirs too: what is
    # in it was refused only where the shared folder was its parent.
    theirs_folder = shared / "evil"
    theirs_folder.mkdir()
    os.chown(theirs_folder, nobody, nobody)
    deeper_link = theirs_folder / "link.jsonl"
    deeper_link.symlink_to(mine)
    os.lchown(deeper_link, nobody, nobody)
    cfg = config(sandbox.url, tmp_path, **{setting: str(deeper_link)})
    run = run_target(cfg, [SCHEMA, stale], tmp_path)
    assert run.returncode == 1
    assert f"it is a symbolic link of another user (uid {nobody})" in run.stderr
    assert mine.read_text() == "my notes\n"

    # A folder of one's own, under no folder others may write in (a volume): another user's
    # file and link there are used. (tmp_path is under /tmp, which every user may write in.)
    volume = Path(tempfile.mkdtemp(dir=Path.home()))
    request.addfinalizer(lambda: shutil.rmtree(volume, ignore_errors=True))
    # ... but not when a link to a folder leads under /tmp: the folder is looked at resolved.
    planted_deeper = theirs_folder / "dead.jsonl"
    planted_deeper.write_text("")
    os.chown(planted_deeper, nobody, nobody)
    (volume / "logs").symlink_to(theirs_folder)
    cfg = config(sandbox.url, tmp_path, **{setting: str(volume / "logs" / "dead.jsonl")})
    run = run_target(cfg, [SCHEMA, stale], tmp_path)
    assert run.returncode == 1
    assert f"it belongs to another user (uid {nobody})" in run.stderr
    assert planted_deeper.read_text() == ""
    theirs = volume / "dead.jsonl"
    theirs.write_text("")
    theirs.chmod(0o640)
    os.chown(theirs, nobody, nobody)
    image_link = volume / "link.jsonl"
    image_link.symlink_to(tmp_path / "kept.jsonl")
    os.lchown(image_link, nobody, nobody)
    cfg = config(
        sandbox.url, tmp_path, dead_letter_path=str(theirs), request_log_path=str(image_link)
    )
    run = run_target(cfg, [SCHEMA, *ORDERS[:1], stale], tmp_path)
    assert run.returncode == 0, run.output
    assert '"o9"' in theirs.read_text()
    assert '"o1"' in (tmp_path / "kept.jsonl").read_text()


# --- the sandbox's event stream page ------------------------------------------------------------


def _demo_run(sandbox: Any, tmp_path: Path) -> None:
    stale = record("orders", {"id": "too-old", "timestamp": iso_minutes_ago(30), "type": "x"})
    hostile = order(6, email="<script>alert(1)</script>@x.co")
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, *ORDERS, hostile, stale], tmp_path)
    assert run.returncode == 0, run.output


def test_the_event_stream_page_lists_the_events_the_target_sent(tmp_path):
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as sandbox:
        _demo_run(sandbox, tmp_path)
        # A batch the sandbox refuses (sent by hand), so the page has one to show.
        requests.post(
            sandbox.url,
            params={"pid": PIXEL_ID},
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={"events": [{"id": "", "type": "order_created"}]},
            timeout=10,
        )
        page = requests.get(sandbox.base_url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert '<meta http-equiv="refresh"' in html
    for n in range(1, 6):
        assert f"<td>o{n}</td>" in html
    assert "<td>email, oppref</td>" in html  # o1's identifiers
    assert "Invalid event at events[0]" in html or "events[0].id" in html
    assert "<script>" not in html  # event data is escaped


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: scripts/setup.sh installs Debian's chromium as root"
)
def test_the_event_stream_page_in_a_real_headless_browser(tmp_path):
    assert CHROMIUM is not None
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as sandbox:
        _demo_run(sandbox, tmp_path)
        flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        flags.append(f"--user-data-dir={tmp_path / 'chromium-profile'}")
        dom = subprocess.run(
            [*flags, "--dump-dom", sandbox.base_url + "/"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        shot = tmp_path / "page.png"
        picture = subprocess.run(
            [*flags, f"--screenshot={shot}", "--window-size=1200,1600", sandbox.base_url + "/"],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Conversions API sandbox: event stream" in dom.stdout
    for n in range(1, 6):
        assert f"<td>o{n}</td>" in dom.stdout
    assert f"Pixel {PIXEL_ID}" in dom.stdout
    assert picture.returncode == 0, picture.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a rendered page, not an empty canvas


def test_the_credential_check_through_meltano_invoke(tmp_path):
    import os

    meltano = Path(TARGET_CMD[0]).with_name("meltano")
    if not meltano.exists():
        pytest.skip("meltano is not installed in .venv (scripts/setup.sh installs it)")
    executable = Path(TARGET_CMD[0]).with_name("target-openai-capi")
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as sandbox:
        (tmp_path / "meltano.yml").write_text(
            "version: 1\ndefault_environment: dev\nenvironments:\n- name: dev\n"
            "project_id: capi-credential-check\nplugins:\n  loaders:\n"
            "  - name: target-openai-capi\n    namespace: target_openai_capi\n"
            f"    executable: {executable}\n"
            f"    config: {json.dumps({'api_url': sandbox.url})}\n"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TARGET_"))}
        env = {
            **clean,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
            "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
        }
        proc = subprocess.run(
            [str(meltano), "invoke", "target-openai-capi", "--test"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK: the key, pixel id 'px_test_123' at " in proc.stdout
    assert API_KEY not in proc.stdout + proc.stderr


@pytest.mark.parametrize("workers", [None, 0])
def test_notes_are_said_of_events_sent_and_their_limit_claims_nothing_more(
    workers, sandbox, tmp_path
):
    """'sent without it' was logged for a record then rejected (too old) and for a duplicate;
    past 20, the notes were said to be counted and in the dead-letter file, which they are not."""
    streams = {"leads": {"event_type": "lead_created", "fields": {"timestamp": "at"}}}
    config = target_config(sandbox.url, tmp_path, streams)
    if workers is not None:
        config["worker_processes"] = workers
    now = iso_minutes_ago(2)
    lines = [schema("leads", {"id": {"type": "string"}}, ["id"])]
    lines.append(record("leads", {"id": "old", "at": iso_minutes_ago(10 * 1440), "email": "a"}))
    lines += [record("leads", {"id": f"l{n}", "at": now, "email": "nope"}) for n in range(25)]
    lines.append(record("leads", {"id": "l0", "at": now, "email": "nope"}))  # (a duplicate)
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 25
    assert "received=27 sent=25 duplicate=1 rejected=1 (window=1)" in run.stderr
    notes = [line for line in run.stderr.splitlines() if "sent without it" in line]
    assert len(notes) == 20
    assert "More of the same for 'leads' (note): not logged from now on." in run.stderr
    assert "(note): only counted" not in run.stderr
    run = run_target(config, lines[:2], tmp_path)  # only the record too old to send
    assert run.returncode == 0, run.output
    assert "rejected=1 (window=1)" in run.stderr
    assert "sent without it" not in run.stderr
