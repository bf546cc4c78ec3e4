"""The helper that starts and stops the processes the tests and the benchmarks need."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devtools.processes import port_answers, running


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_waits_for_the_port_and_stops_the_process_afterwards(tmp_path: Path) -> None:
    port = _free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with running(server, log=tmp_path / "server.log", port=port) as process:
        assert port_answers(port)
    assert process.poll() is not None
    assert not port_answers(port)


def test_a_process_that_exits_before_it_is_ready_names_its_log(tmp_path: Path) -> None:
    log = tmp_path / "failing.log"
    with (
        pytest.raises(RuntimeError, match=r"exited with 3: see .*failing\.log"),
        running([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], log=log, ready=lambda: False),
    ):
        pass
    assert "boom" in log.read_text()


def test_a_process_that_ignores_terminate_is_killed(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    with running(
        [sys.executable, "-c", stubborn], log=log, ready=lambda: "up" in log.read_text(), stop_timeout=0.5
    ) as process:
        pass
    assert process.returncode == -9
