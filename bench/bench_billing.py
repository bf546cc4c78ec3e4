"""Billing benchmarks.

- Webhook ingestion under gunicorn (verify the signature, store the event, queue its task) as
  a ratio to the minimal view, with its p99 latency. Tasks go to Redis when it is reachable
  (as in production), so the figure is the endpoint's own cost.
- Fulfilment latency: from ``checkout.session.completed`` delivered by the Stripe sandbox to
  the entitlement granted and the confirmation email sent by a real Celery worker on Redis.

The platform they run on (``on_database``, ``live_platform``, ``celery_worker``) is shared with
``bench_affiliates.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import (
    Figure,
    LoadResult,
    bench_data_dir,
    django_setup,
    environment,
    free_port,
    gunicorn,
    load,
    warm,
)
from devtools.processes import running

if TYPE_CHECKING:
    from accounts.models import User

WEBHOOK_SECRET = "whsec_sandbox_platform_secret"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# Production runs on PostgreSQL; SQLite's write lock between gunicorn's processes would make
# the webhook's figures about SQLite. A fresh database is made (and dropped) per run.
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/membership_billing_bench")


def _reachable(url: str, default_port: int) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or default_port)), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_reachable(url: str) -> bool:
    return _reachable(url, 6379)


@contextmanager
def _fresh_postgres(url: str) -> Iterator[str]:
    """A new, empty database named by ``url`` for this run (dropped afterwards)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    name = f"{name}_{uuid.uuid4().hex[:8]}"  # two runs at once do not share a database
    url = f"{base}/{name}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def webhook_ingestion(address: str, seconds: float = 6.0, rounds: int = 6) -> list[Figure]:
    """Signed deliveries of events for an account that is not connected: the endpoint's own
    work (verify, store, queue) with no worker consuming the queue.

    Like ``harness.ratio_of``: the minimal view and the webhook alternate in short rounds and
    the median of the rounds' ratios is the figure; the p99 is over every delivery.
    """
    warm(address, "/bench/minimal/")
    _load_webhooks(address, seconds=1.0)
    ratios: list[float] = []
    latencies: list[float] = []
    errors = 0
    for _ in range(rounds):
        baseline = load(address, "/bench/minimal/", seconds=seconds / rounds / 2)
        measured = _load_webhooks(address, seconds=seconds / rounds / 2)
        ratios.append(measured.rps / baseline.rps if baseline.rps else 0.0)
        latencies.extend(measured.latencies)
        errors += measured.errors
    if errors:
        raise RuntimeError(f"the webhook answered {errors} errors under load")
    every = LoadResult(requests=len(latencies), seconds=seconds, latencies=latencies)
    note = f"(median of {rounds} rounds, {len(latencies)} deliveries)"
    return [
        Figure("webhook ingestion throughput vs minimal view", statistics.median(ratios), "x", ">=", 0.5, note),
        Figure("webhook ingestion p99 latency", every.percentile(99) * 1000, "ms", "<=", 100),
    ]


def _load_webhooks(address: str, *, seconds: float) -> LoadResult:
    """Each request is a new event with its own fresh signature."""
    return load(address, "/stripe/webhook/", seconds=seconds, method="POST", request=_signed_event_body)


def _purge(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- Fulfilment latency --------------------------------------------------------------------
PURCHASES = 20


def sandbox_control(base: str, method: str, path: str, payload: dict[str, object] | None = None) -> dict[str, object]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(
            method, "/_sandbox" + path, body=json.dumps(payload or {}), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        answer: dict[str, object] = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"sandbox control {path}: {answer}")
        return answer
    finally:
        conn.close()


def form_post(base: str, target: str, form: dict[str, str]) -> tuple[int, str]:
    """POST a form to one of the sandbox's pages; returns the status and the Location header."""
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(target if "://" in target else base + target)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location") or ""
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


@contextmanager
def celery_worker(data_dir: Path) -> Iterator[None]:
    """A real Celery worker (two processes) on Redis, consuming this run's own queue."""
    env = environment(data_dir)
    worker_args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", env["CELERY_TASK_DEFAULT_QUEUE"]]
    worker_args += ["-c", "2", "--loglevel=WARNING", "--without-gossip", "--without-mingle"]
    with running(worker_args, env=env, log=data_dir / "worker.log"):
        yield


def fulfilment_latency(address: str, data_dir: Path, sandbox_url: str, emails: Path) -> list[Figure]:
    """checkout.session.completed delivered by the sandbox -> entitlement granted and email sent,
    with gunicorn taking the webhook and a real Celery worker on Redis doing the work."""
    with celery_worker(data_dir):
        sandbox_control(sandbox_url, "POST", "/config", {"webhook_url": f"http://{address}/stripe/webhook/"})
        offer, account_id = _seller(sandbox_url)
        _one_purchase(sandbox_url, offer, account_id, emails, -1)  # warm-up: the worker's first task imports
        samples = sorted(_one_purchase(sandbox_url, offer, account_id, emails, index) for index in range(PURCHASES))
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    note = f"(median {statistics.median(samples):.3f} s over {len(samples)} purchases)"
    return [Figure("fulfilment latency p95, webhook delivered to entitlement and email", p95, "s", "<=", 2.0, note)]


def _seller(sandbox_url: str) -> tuple[object, str]:
    """Connect a new sandbox account through Connect OAuth and give it a $25 offer."""
    from accounts.models import User
    from billing.services import catalog
    from memberships.models import Offer

    owner = User.objects.create_user("owner@bench.example", "x" * 20, is_staff=True)
    account_id = connected_account(sandbox_url, by=owner)
    offer = Offer.objects.create(
        title="Bench Club", slug="bench-club", status=Offer.Status.PUBLISHED, pricing="one_time", price_amount=2500
    )
    catalog.offer_stripe_sync(offer_id=offer.pk)
    return offer, account_id


def connected_account(sandbox_url: str, *, by: User, partner: bool = False, business_name: str = "Bench") -> str:
    """A new sandbox account connected through Connect OAuth: the creator's, or ``by``'s own
    partner account. Returns its id."""
    from urllib.parse import parse_qs, urlsplit

    from billing import stripe_gateway as gateway
    from billing.models import StripeAccount
    from billing.services import connect

    url = gateway.oauth_authorize_url(state="bench", redirect_uri="http://127.0.0.1/return/", email=by.email)
    form = {"decision": "connect", "account": "new", "business_name": business_name, "email": by.email}
    status, location = form_post(sandbox_url, url, form)
    if status != 303:
        raise RuntimeError(f"the sandbox's authorize page answered {status}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    purpose = StripeAccount.Purpose.PARTNER if partner else StripeAccount.Purpose.CREATOR
    return connect.stripe_account_connect_from_stripe(code=code, by=by, purpose=purpose).account_id


def _one_purchase(sandbox_url: str, offer: object, account_id: str, emails: Path, index: int) -> float:
    from billing import stripe_gateway as gateway
    from billing.models import StripeAccount
    from billing.services import checkout
    from memberships.models import Entitlement, Offer

    assert isinstance(offer, Offer)
    email = f"buyer{index}@bench.example"
    attempt = checkout.checkout_attempt_create(
        offer=offer,
        account=StripeAccount.objects.creator().get(),
        email=email,
        full_name=f"Buyer {index}",
        browser_key=uuid.uuid4().hex,
    )
    params = checkout.checkout_session_params(
        attempt=attempt,
        success_url="http://127.0.0.1/ok?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1/",
    )
    session = gateway.checkout_session_create(
        account_id=account_id, params=params, idempotency_key=f"bench-{attempt.pk}"
    )
    card = {"email": email, "card_number": "4242424242424242", "expiry": "12 / 34", "cvc": "123", "name": "Buyer"}
    status, _ = form_post(sandbox_url, f"/c/pay/{session.session_id}", card)
    if status != 303:
        raise RuntimeError(f"the hosted page answered {status}")

    def done() -> bool:
        granted = Entitlement.objects.filter(user__email=email, offer=offer).exists()
        return granted and any(f"To: {email}".encode() in path.read_bytes() for path in emails.glob("*.log"))

    wait_until(done, 30, f"purchase {index} to be fulfilled")
    finished = time.time()
    deliveries = sandbox_control(sandbox_url, "GET", "/deliveries")["deliveries"]
    assert isinstance(deliveries, list)
    # Purchases run one after another, so the newest completed-session delivery is this one's.
    delivered_at = max(float(entry["at"]) for entry in deliveries if entry["type"] == "checkout.session.completed")
    return finished - delivered_at


def run() -> list[Figure]:
    return on_database(_run)


def on_database(measure: Callable[[], list[Figure]]) -> list[Figure]:
    """Run ``measure`` on a fresh PostgreSQL database when one is reachable (as production),
    else on SQLite, and say which in each figure's note. Redis is needed either way."""
    if not _redis_reachable(REDIS_URL):
        raise RuntimeError(f"the billing and affiliates benchmarks need Redis at {REDIS_URL} (BENCH_REDIS_URL)")
    if _reachable(POSTGRES_URL, 5432):
        with _fresh_postgres(POSTGRES_URL) as url:
            os.environ["DATABASE_URL"] = url
            figures = measure()
        database = "PostgreSQL"
    else:
        figures = measure()
        database = "SQLite"
    for figure in figures:
        figure.note = f"{figure.note} [{database}]".strip()
    return figures


@dataclass
class Platform:
    address: str  # gunicorn's host:port
    data_dir: Path
    sandbox_url: str
    emails: Path  # where the file email backend writes


@contextmanager
def live_platform(**env: str) -> Iterator[Platform]:
    """Django set up on fresh data with the sandbox and gunicorn running, ``env`` added to the
    environment; the sandbox's webhooks go nowhere until ``sandbox_control`` sets their URL.
    The run's Redis database is emptied afterwards."""
    with bench_data_dir() as data_dir:
        sandbox_port = free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        emails = data_dir / "emails"
        emails.mkdir()
        os.environ.update(
            {
                "REDIS_URL": REDIS_URL,
                "STRIPE_API_BASE": sandbox_url,
                "STRIPE_SANDBOX_ALLOWED": "true",
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "CELERY_TASK_DEFAULT_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
                "EMAIL_FILE_PATH": str(emails),
                **env,
            }
        )
        django_setup(data_dir)
        sandbox_args = [sys.executable, "-m", "stripe_sandbox", "--port", str(sandbox_port), "--quiet"]
        sandbox_args += ["--state-dir", str(data_dir / "sandbox"), "--webhook-url", ""]
        sandbox_args += ["--webhook-secret", WEBHOOK_SECRET]
        try:
            sandbox = running(sandbox_args, env=environment(data_dir), log=data_dir / "sandbox.log", port=sandbox_port)
            with sandbox, gunicorn(data_dir) as address:
                yield Platform(address=address, data_dir=data_dir, sandbox_url=sandbox_url, emails=emails)
        finally:
            _purge(REDIS_URL)


def _run() -> list[Figure]:
    with live_platform() as stack:
        figures = webhook_ingestion(stack.address)
        _purge(REDIS_URL)  # nobody consumed the ingestion's tasks
        figures += fulfilment_latency(stack.address, stack.data_dir, stack.sandbox_url, stack.emails)
    return figures
