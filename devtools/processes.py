"""Helper processes for the tests and the benchmarks: the Stripe sandbox, a Celery worker, gunicorn.

``running`` starts one with its output in a log file, waits until it is ready (a port answers
or a check holds) and stops it afterwards: terminate, wait, and kill if it will not go.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running(
    args: Sequence[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    stop_timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` from the project's root until the block ends.

    Before yielding, waits up to ``timeout`` seconds for ``port`` to accept connections and
    ``ready()`` to be true (either may be left out); a process that exits or is not ready in
    time raises ``RuntimeError`` naming its log. Output goes to ``log`` (else it is inherited).
    """
    with ExitStack() as stack:
        out = stack.enter_context(open(log, "wb")) if log is not None else None
        command = list(args)
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env) if env is not None else None, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_ready(process, command[:3], port=port, ready=ready, timeout=timeout, log=log)
            yield process
        finally:
            _stop(process, stop_timeout)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    name: list[str],
    *,
    port: int | None,
    ready: Callable[[], bool] | None,
    timeout: float,
    log: Path | None,
) -> None:
    deadline = time.monotonic() + timeout
    while not ((port is None or port_answers(port)) and (ready is None or ready())):
        if process.poll() is not None or time.monotonic() > deadline:
            where = f": see {log}" if log is not None else ""
            state = f"exited with {process.returncode}" if process.returncode is not None else "is not ready"
            raise RuntimeError(f"{' '.join(name)} {state}{where}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
