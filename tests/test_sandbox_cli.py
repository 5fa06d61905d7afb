"""openai-capi-sandbox on the command line: help, option errors, and a real server process."""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import API_KEY, PIXEL_ID, recent_ms

from target_openai_capi.sandbox.cli import main

COMMAND = [sys.executable, "-m", "target_openai_capi.sandbox.cli"]
OPTIONS = [
    "--host",
    "--port",
    "--db",
    "--api-key",
    "--pixel-id",
    "--latency-ms",
    "--rate-429",
    "--retry-after",
    "--rate-500",
    "--rate-503",
    "--rate-drop",
    "--rate-drop-after",
    "--seed",
    "--max-body-bytes",
    "--quiet",
]


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in OPTIONS:
        # Each option appears in its own help line, followed by a description.
        assert re.search(rf"^\s+{re.escape(option)}\b.*\S", text, re.MULTILINE), option
    assert "/sandbox/events" in text
    assert "sk-svcacct-" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--rate-429", "1.5"], "argument --rate-429: 1.5 is not between 0 and 1"),
        (["--rate-drop", "half"], "argument --rate-drop: 'half' is not a number between 0 and 1"),
        (["--rate-500", "0.6", "--rate-503", "0.6"], "the fault rates add up to more than 1"),
        (["--port", "-1"], "argument --port: -1 is negative"),
        (["--latency-ms", "fast"], "argument --latency-ms: 'fast' is not a whole number"),
        (["--max-body-bytes", "0"], "argument --max-body-bytes: must be at least 1"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_options_exit_2_with_a_clear_error(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The CLI serving on a free port (read from its 'listening on' line)."""
    process = subprocess.Popen(
        [*COMMAND, "--port", "0", "--api-key", API_KEY, "--pixel-id", PIXEL_ID],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    found = re.search(r"listening on (http://\S+)", first)
    assert found, first
    try:
        yield process, found.group(1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_a_subprocess_sandbox_answers_and_stops_cleanly_on_sigterm(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = server
    event = {
        "id": "e1",
        "type": "page_viewed",
        "timestamp_ms": recent_ms(),
        "data": {"type": "contents"},
    }
    response = requests.post(
        url,
        params={"pid": PIXEL_ID},
        json={"events": [event]},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["stored"] == 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    log = process.stderr.read()
    assert f"POST /v1/events?pid={PIXEL_ID} 200 events=1" in log
    assert API_KEY not in log
    assert "Traceback" not in log
    assert "stopped" in log


def test_ctrl_c_stops_cleanly(server: tuple[subprocess.Popen[str], str]) -> None:
    process, _ = server
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_a_port_in_use_is_one_clear_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [*COMMAND, "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"openai-capi-sandbox: cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another --port (0 picks a free one)"
    ]


def test_a_client_that_leaves_before_its_answer_is_no_traceback() -> None:
    """A target killed with a request in flight (or a client timing out): the sandbox printed
    socketserver's 'Exception occurred during processing of request' and a traceback of
    BrokenPipeError, its own handler of that case being misnamed."""
    process = subprocess.Popen(
        [*COMMAND, "--port", "0", "--api-key", API_KEY, "--pixel-id", PIXEL_ID,
         "--latency-ms", "400"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        found = re.search(r"listening on http://([\d.]+):(\d+)", process.stderr.readline())
        assert found
        body = b'{"events": []}'
        request = (
            f"POST /v1/events?pid={PIXEL_ID} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for _ in range(3):
            with socket.create_connection((found.group(1), int(found.group(2)))) as client:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.sendall(request)  # then gone (a reset) before the answer, 400 ms on
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        log = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert "Traceback" not in log, log
    assert "Exception occurred" not in log, log
