"""A worker survives a Redis restart while it holds an unacknowledged task. Second CI pass only.

The test runs its own redis-server on a free port, never the shared one, since it kills it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from subprocess import Popen

import pytest
from celery import Celery

from devtools.processes import running

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL") or shutil.which("redis-server") is None,
    reason="needs Redis (the second CI pass) and the redis-server program",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def _redis(port: int, directory: Path, persistence: str) -> Iterator[Popen[bytes]]:
    keep = ["--appendonly", "yes", "--appendfsync", "always"] if persistence == "aof" else ["--appendonly", "no"]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory), *keep]
    with running(args, log=directory / "redis.log", port=port, timeout=20) as process:
        yield process


@pytest.mark.parametrize("persistence", ["empty", "aof"])
def test_the_worker_processes_the_next_task_after_redis_restarts_under_an_unacknowledged_one(
    tmp_path: Path, persistence: str
) -> None:
    """Redis is killed while the worker runs a task it has not acknowledged, then restarted
    (empty, as a Redis that keeps nothing on disk; or from its append-only file). The worker
    must reconnect by itself and process the next task."""
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    client = Celery("restart-test", broker=url, set_as_current=False)
    client.conf.update(task_default_queue=queue, broker_connection_retry=True, broker_connection_timeout=2)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CACHE_URL"}},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    # Two processes, so that the consumer is back in BRPOP while the held task runs: Redis
    # going away during that read is what used to make the worker exit.
    worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-I", "tests.config.broker_tasks"]
    worker += ["-Q", queue, "-c", "2", "-n", f"{queue}@%h", "-l", "INFO"]
    held, after = tmp_path / "held", tmp_path / "after"
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()

    log = tmp_path / "worker.log"
    # The restarted Redis joins the outer stack, so that it outlives the worker's shutdown.
    with ExitStack() as stack:
        redis_process = stack.enter_context(_redis(port, redis_dir, persistence))
        with running(worker, log=log, env=env, ready=lambda: bool(client.control.ping(timeout=0.5)), timeout=60) as w:
            client.send_task("tests.broker.hold", args=[str(held), 8.0])
            assert _wait_for(held.exists, 20), f"the worker never started the task: see {log}"

            redis_process.send_signal(signal.SIGKILL)
            redis_process.wait()
            time.sleep(1.0)  # the worker sees the connection drop while the task still runs
            stack.enter_context(_redis(port, redis_dir, persistence))
            client.send_task("tests.broker.touch", args=[str(after)])
            processed = _wait_for(after.exists, 45)
            assert w.poll() is None, f"the worker exited ({w.returncode}) after Redis restarted: see {log}"
            assert processed, f"the worker did not process the next task after Redis restarted: see {log}"
