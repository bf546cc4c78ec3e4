"""What every benchmark needs: a prepared database, a gunicorn server, a load generator and a
uniform way to print figures.

A figure is printed as ``<name>: <value> <unit> (target <comparison>)``. Throughput figures
are ratios against the minimal view measured in the same run, so they mean the same on a
fast or a slow machine.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import running

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    comparison: str  # ">=" or "<="
    target: float
    note: str = ""

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.comparison == ">=" else self.value <= self.target

    def line(self) -> str:
        note = f" {self.note}" if self.note else ""
        return f"{self.name}: {self.value:.3g} {self.unit} (target {self.comparison} {self.target:g}){note}"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def environment(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def bench_data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="membership-bench-") as name:
        yield Path(name)


def django_setup(data_dir: Path) -> None:
    """Configure Django in this process on the benchmark's data and migrate it."""
    os.environ.update(environment(data_dir))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(data_dir: Path, *, workers: int = 2, threads: int = 1) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(workers), "--threads", str(threads), "--log-level", "warning"]
    with running(args, env=environment(data_dir), port=port):
        yield f"127.0.0.1:{port}"


def load(
    address: str,
    path: str,
    *,
    seconds: float = 5.0,
    concurrency: int = 4,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    request: Callable[[], tuple[bytes | None, dict[str, str]]] | None = None,
    expect: int = 200,
) -> LoadResult:
    """Send requests on keep-alive connections from ``concurrency`` threads for ``seconds``.

    ``request``, when given, makes each request's body and extra headers (a signed webhook).
    """
    host, port = address.split(":")
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop_at:
            payload, extra = request() if request else (None, {})
            start = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers={**(headers or {}), **extra})
                response = conn.getresponse()
                response.read()
                if response.status != expect:
                    failed += 1
                mine.append(time.perf_counter() - start)
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
        with lock:
            latencies.extend(mine)
            errors += failed

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(requests=len(latencies), seconds=time.monotonic() - started, latencies=latencies, errors=errors)


def warm(address: str, path: str, headers: dict[str, str] | None = None, expect: int = 200) -> None:
    result = load(address, path, seconds=1.0, concurrency=2, headers=headers, expect=expect)
    if result.errors:
        raise RuntimeError(f"{path} answered errors while warming up ({result.errors} of {result.requests})")


def ratio_of(
    address: str, path: str, *, headers: dict[str, str] | None = None, seconds: float = 6.0, rounds: int = 6
) -> float:
    """Requests per second of ``path`` divided by the minimal view's.

    The two are measured in alternating short rounds and the median of the rounds' ratios is
    returned, so a burst of other work on the machine skews one round, not the figure.
    """
    warm(address, "/bench/minimal/")
    warm(address, path, headers)
    ratios = []
    for _ in range(rounds):
        baseline = load(address, "/bench/minimal/", seconds=seconds / rounds / 2)
        measured = load(address, path, seconds=seconds / rounds / 2, headers=headers)
        if measured.errors:
            raise RuntimeError(f"{path} answered {measured.errors} errors under load")
        ratios.append(measured.rps / baseline.rps)
    return statistics.median(ratios)


def session_headers(user_id: int) -> dict[str, str]:
    """A logged-in session cookie for ``user_id`` (Django must be set up in this process)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.get(pk=user_id)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}", "Host": "127.0.0.1"}


def median(values: list[float]) -> float:
    return statistics.median(values)
