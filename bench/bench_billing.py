"""Billing benchmarks.

- Webhook ingestion under gunicorn (verify the signature, store the event, queue its task) as
  a ratio to the minimal view, with its p99 latency. Tasks go to Redis when it is reachable
  (as in production), so the figure is the endpoint's own cost.
- Fulfilment latency: from ``checkout.session.completed`` delivered by the Stripe sandbox to
  the entitlement granted and the confirmation email sent by a real Celery worker on Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import socket
import threading
import time
import uuid

from bench.harness import Figure, LoadResult, bench_data_dir, django_setup, gunicorn, load, warm

WEBHOOK_SECRET = "whsec_sandbox_platform_secret"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def _redis_reachable(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=0.5):
            return True
    except OSError:
        return False


def _signed_event_body() -> tuple[bytes, dict[str, str]]:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "checkout.session.completed",
        "account": "acct_bench_unknown",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": f"cs_test_{uuid.uuid4().hex}", "object": "checkout.session"}},
    }
    body = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signature}"}


def webhook_ingestion(seconds: float = 5.0) -> list[Figure]:
    with bench_data_dir() as data_dir:
        if _redis_reachable(REDIS_URL):
            os.environ["REDIS_URL"] = REDIS_URL
        os.environ["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        django_setup(data_dir)
        with gunicorn(data_dir) as address:
            warm(address, "/bench/minimal/")
            baseline = load(address, "/bench/minimal/", seconds=seconds)
            measured = _load_webhooks(address, seconds=seconds)
        if "REDIS_URL" in os.environ:
            _purge(REDIS_URL)
    ratio = measured.rps / baseline.rps if baseline.rps else 0.0
    note = f"({measured.rps:.0f} vs {baseline.rps:.0f} req/s, {measured.errors} errors)"
    return [
        Figure("webhook ingestion throughput vs minimal view", ratio, "x", ">=", 0.5, note),
        Figure("webhook ingestion p99 latency", measured.percentile(99) * 1000, "ms", "<=", 100),
    ]


def _load_webhooks(address: str, *, seconds: float) -> LoadResult:
    """Like harness.load, but each request is a new event with its own fresh signature."""
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
            body, headers = _signed_event_body()
            start = time.perf_counter()
            try:
                conn.request("POST", "/stripe/webhook/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
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
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(requests=len(latencies), seconds=time.monotonic() - started, latencies=latencies, errors=errors)


def _purge(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def run() -> list[Figure]:
    return webhook_ingestion()
