"""``make chaos``: N purchases under faults, then proof that nothing was lost.

The production-like stack runs on this machine: a fresh PostgreSQL database, a private Redis
on a port of its own (append-only file, no eviction, as compose.yaml runs it), gunicorn, a
Celery worker and beat under a small supervisor that restarts them when they die (compose's
``restart: unless-stopped``), and the Stripe sandbox delivering webhooks to gunicorn.

N buyers, each from its own address, buy at once from a thread pool: a third a one-time
offer, a third a recurring one (both through the real path: the offer's checkout form, then
the sandbox's hosted page paid with 4242...), a third claim a free offer. Meanwhile the
sandbox duplicates, reorders, delays and drops webhooks, the worker is SIGKILLed at random
moments while it holds tasks, and Redis is killed and restarted. Then the run waits, through
the sweep and the reconciliation, until every buyer has exactly one active entitlement, one
payment row when they paid and one confirmation email, no event is pending or failed, no
outbox row is pending and the broker holds nothing (so no task is still to be delivered
again), and prints the report. Any difference, any 5xx, or the deadline makes it exit 1.

``python -m bench.chaos [--n N] [--deadline SECONDS] [--seed S]``; development only (``bench/``
stays out of the image).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devtools.processes import running

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_sandbox_platform_secret"
POSTGRES_BASE = os.environ.get("CHAOS_POSTGRES_BASE", "postgres://postgres@127.0.0.1:5432")
CARD = "4242424242424242"
KINDS = ("one_time", "recurring", "free")
# The shortest timeouts the settings accept: a task held by a killed worker comes back after
# the visibility timeout (time limit 60 s + the longer of the longest retry wait, 30 s, and the
# time limit + 1), the sweep re-queues stored events every 30 s, the reconciliation lists
# Stripe's events every 60 s.
TIMEOUTS = {
    "CELERY_TASK_TIME_LIMIT": "60",
    "CELERY_RETRY_WAIT_MAX": "30",
    "CELERY_VISIBILITY_TIMEOUT": "121",
    "WEBHOOK_SWEEP_INTERVAL": "30",
    "WEBHOOK_RECONCILE_INTERVAL": "60",
}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DeadlinePassed(Exception):
    pass


# --- Processes ------------------------------------------------------------------------------
class Supervised:
    """One process restarted by the supervisor whenever it exits, as compose restarts a
    container. It runs in a session of its own, so a kill reaches its children too (a Celery
    worker's pool), as killing a container does."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.args, self.env, self.log_path = name, args, env, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0  # the wall clock, as the broker's delivery times are
        self.lock = threading.Lock()

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        self.started_at = time.time()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children, without warning."""
        with self.lock:
            if self.alive():
                assert self.process is not None
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        _signal_group(self.process, signal.SIGKILL)  # whatever is left of its children
        self.process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the process leads its own session: pgid == pid


class Supervisor:
    """Restarts the worker and beat when they exit: a second after, as Docker does."""

    def __init__(self, children: list[Supervised]) -> None:
        self.children = children
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    def __enter__(self) -> Supervisor:
        for child in self.children:
            child.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()
        for child in self.children:
            child.stop()

    def _loop(self) -> None:
        while not self.stopping.wait(0.5):
            for child in self.children:
                with child.lock:
                    if not child.alive() and not self.stopping.is_set():
                        time.sleep(1.0)
                        child.start()


class PrivateRedis:
    """A Redis of the run's own on a free port, configured as compose.yaml's: the append-only
    file (written every second) keeps the queue across a restart, and no eviction."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        directory.mkdir()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
        args += ["--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private Redis did not start: see {self.directory / 'redis.log'}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()
        self.restarts += 1

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(port=self.port, db=db, socket_timeout=2)


@contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    name = f"membership_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_BASE + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_BASE}/{name}"
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(POSTGRES_BASE + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- The buyers -----------------------------------------------------------------------------
@dataclass
class Buyer:
    index: int
    kind: str
    email: str
    address: str
    paid_at: float | None = None  # when the hosted page (or the claim) answered
    tries: int = 0
    error: str = ""


@dataclass
class Traffic:
    """What the buyers' side saw."""

    server_errors: Counter[str] = field(default_factory=Counter)  # "<status> <path>"
    connection_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: requests.Response) -> None:
        if response.status_code >= 500:
            path = re.sub(r"/[0-9a-f-]{36}/|/cs_\w+", "/…/", requests.utils.urlparse(response.url).path)
            with self.lock:
                self.server_errors[f"{response.status_code} {path}"] += 1


# The pages that a claim or a checkout start answers when the buyer already has the offer.
ALREADY_DONE = re.compile(r"<h1>(Check your email|You already have access)</h1>")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{(index & 255) + 1}"


class Shop:
    def __init__(self, web: str, slugs: dict[str, str], traffic: Traffic) -> None:
        self.web, self.slugs, self.traffic = web, slugs, traffic

    def buy(self, buyer: Buyer) -> None:
        """One buyer, as a browser would: the checkout page, its form, then Stripe's page. A
        buyer who meets an error page or a dead connection tries again a moment later."""
        for attempt in range(12):
            buyer.tries = attempt + 1
            try:
                if self._once(buyer):
                    return
            except requests.RequestException as exc:
                with self.traffic.lock:
                    self.traffic.connection_errors += 1
                buyer.error = repr(exc)
            time.sleep(min(0.5 * 2**attempt, 5.0))
        log(f"buyer {buyer.email} gave up after {buyer.tries} tries: {buyer.error}")

    def _once(self, buyer: Buyer) -> bool:
        session = requests.Session()
        session.headers["X-Forwarded-For"] = buyer.address
        page_url = f"{self.web}/offers/{self.slugs[buyer.kind]}/checkout/"
        page = session.get(page_url, timeout=30)
        self.traffic.note(page)
        token = CSRF.search(page.text)
        if page.status_code != 200 or token is None:
            buyer.error = f"checkout page answered {page.status_code}"
            return False
        form = {"csrfmiddlewaretoken": token.group(1), "full_name": f"Buyer {buyer.index}", "email": buyer.email}
        target = page_url if buyer.kind == "free" else page_url + "pay/"
        answer = session.post(target, data=form, headers={"Referer": page_url}, allow_redirects=False, timeout=30)
        self.traffic.note(answer)
        if answer.status_code == 200 and ALREADY_DONE.search(answer.text):
            # An earlier try went through although its answer was an error: the page now says
            # so (a repeated free claim also emails a login link instead of a confirmation).
            buyer.paid_at = buyer.paid_at or time.time()
            buyer.error = "an earlier try went through"
            return True
        if answer.status_code != 302:
            buyer.error = f"{target} answered {answer.status_code}"
            return False
        if buyer.kind == "free":
            buyer.paid_at = time.time()
            return True
        hosted = answer.headers["Location"]
        if "/c/pay/" not in hosted:
            buyer.error = f"checkout did not lead to Stripe: {hosted}"
            return False
        card = {"email": buyer.email, "card_number": CARD, "expiry": "12 / 34", "cvc": "123", "name": "Buyer"}
        paid = requests.post(hosted, data=card, allow_redirects=False, timeout=30)
        self.traffic.note(paid)
        if paid.status_code != 303:
            buyer.error = f"the hosted page answered {paid.status_code}"
            return False
        buyer.paid_at = time.time()
        return True


# --- The sandbox ----------------------------------------------------------------------------
class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    def control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox{path}", json=payload or {}, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"sandbox control {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def configure(self, **switches: Any) -> None:
        self.control("POST", "/config", switches)


def connect_seller(sandbox: Sandbox, site: str) -> dict[str, str]:
    """The creator's account connected through Connect OAuth, and the three offers."""
    from urllib.parse import parse_qs, urlsplit

    from accounts.models import User
    from billing import stripe_gateway as gateway
    from billing.services import catalog, connect
    from memberships.models import Offer

    owner = User.objects.create_user("owner@chaos.example", "x" * 20, is_staff=True)
    url = gateway.oauth_authorize_url(state="chaos", redirect_uri=f"{site}/return/")
    form = {"decision": "connect", "account": "new", "business_name": "Chaos Club"}
    answer = requests.post(url, data=form, allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise RuntimeError(f"the sandbox's authorize page answered {answer.status_code}")
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    account_id = gateway.oauth_token(code=code)
    connect.stripe_account_connect(status=gateway.account_retrieve(account_id=account_id), by=owner)
    specs = {
        "one_time": {"pricing": "one_time", "price_amount": 2500},
        "recurring": {"pricing": "recurring", "price_amount": 1500, "interval": "month"},
        "free": {"pricing": "free", "price_amount": 0},
    }
    slugs = {}
    for kind, spec in specs.items():
        offer = Offer.objects.create(
            title=f"Chaos {kind}", slug=f"chaos-{kind.replace('_', '-')}", status=Offer.Status.PUBLISHED, **spec
        )
        if kind != "free":
            catalog.offer_stripe_sync(offer_id=offer.pk)
        slugs[kind] = offer.slug
    return slugs


# --- Faults ---------------------------------------------------------------------------------
@dataclass
class Faults:
    worker_kills: int = 0
    worker_kills_holding: list[int] = field(default_factory=list)  # tasks held at each kill
    beat_kills: int = 0
    redis_restarts: int = 0
    drops: int = 0


def broker_holds(redis_server: PrivateRedis) -> tuple[int, int]:
    """(messages waiting in queues, messages delivered and not acknowledged) in the broker."""
    client = redis_server.client()
    unacked = int(client.hlen("unacked"))
    queued = sum(int(client.llen(key)) for key in client.scan_iter(_type="list"))
    return queued, unacked


def held_since(redis_server: PrivateRedis, moment: float) -> int:
    """Messages delivered since ``moment`` and not yet acknowledged: those the running worker
    holds (kombu scores each unacknowledged delivery with its time; the messages of a worker
    that was killed stay there, older, until the visibility timeout hands them on)."""
    return int(redis_server.client().zcount("unacked_index", moment, "+inf"))


def chaos_loop(
    *,
    stop: threading.Event,
    rng: random.Random,
    worker: Supervised,
    beat: Supervised,
    redis_server: PrivateRedis,
    sandbox: Sandbox,
    faults: Faults,
    redis_restart_at: Callable[[], bool],
) -> None:
    """Until ``stop``: every few seconds SIGKILL the worker while it holds tasks, now and then
    drop the next events, and restart Redis once when ``redis_restart_at()`` says so."""
    next_kill = time.monotonic() + rng.uniform(2, 5)
    next_drop = time.monotonic() + rng.uniform(1, 3)
    restarted = False
    while not stop.wait(0.1):
        now = time.monotonic()
        if not restarted and redis_restart_at():
            restarted = True
            log("killing Redis (SIGKILL); back in 3 s")
            redis_server.restart(down_for=3.0)
            faults.redis_restarts += 1
            log("Redis is back")
        if now >= next_drop:
            count = rng.randint(1, 3)
            try:
                sandbox.configure(drop=count)
                faults.drops += count
            except (requests.RequestException, RuntimeError) as exc:
                log(f"could not set drop: {exc}")
            next_drop = now + rng.uniform(2, 6)
        if now >= next_kill and worker.alive():
            try:
                unacked = held_since(redis_server, worker.started_at)
            except Exception:  # Redis is down: try again in a moment
                continue
            if unacked:
                worker.kill()
                faults.worker_kills += 1
                faults.worker_kills_holding.append(unacked)
                if rng.random() < 0.25:
                    beat.kill()
                    faults.beat_kills += 1
                next_kill = now + rng.uniform(3, 8)


# --- Checking -------------------------------------------------------------------------------
# The outbox of side-effect emails, once the platform has it: one row per confirmation.
OUTBOX_MODEL = "accounts.OutboxMessage"


def outbox_unsent_count() -> int | None:
    """Confirmation outbox rows not yet sent (pending, sending or failed), or None while the
    platform has no outbox (``accounts.OutboxMessage``)."""
    from django.apps import apps

    try:
        model = apps.get_model(*OUTBOX_MODEL.split("."))
    except LookupError:
        return None
    return int(model.objects.exclude(status="sent").count())


CONFIRMATION_SUBJECT = "Subject: You're in: "  # memberships.emails.DEFAULT_SUBJECT


def emails_per_recipient(directory: Path) -> tuple[Counter[str], Counter[str]]:
    """Confirmation emails and other emails written by the file email backend, by recipient."""
    confirmations: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for path in directory.glob("*.log"):
        subject = ""
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Subject: "):
                subject = line
            elif line.startswith("To: "):
                counts = confirmations if subject.startswith(CONFIRMATION_SUBJECT) else others
                counts[line[4:].strip().lower()] += 1
    return confirmations, others


@dataclass
class Check:
    buyers_right: int
    differences: list[str]
    per_kind: dict[str, Counter[str]]
    events_pending: int
    events_failed: int
    events_flagged: int
    outbox_unsent: int | None
    other_emails: Counter[str]  # by recipient: login links sent to buyers who claimed again

    @property
    def converged(self) -> bool:
        return not self.differences


def check(buyers: list[Buyer], emails_dir: Path) -> Check:
    from django.db import close_old_connections

    from accounts.models import User
    from billing.models import Payment, WebhookEvent
    from memberships.models import Entitlement

    close_old_connections()
    users = dict(User.objects.filter(email__endswith="@buyers.chaos.example").values_list("email", "pk"))
    entitlements: dict[int, list[tuple[str, bool]]] = {}
    active = set(Entitlement.objects.active().values_list("pk", flat=True))
    for pk, owner_id, offer_slug in Entitlement.objects.values_list("pk", "user_id", "offer__slug"):
        entitlements.setdefault(owner_id, []).append((offer_slug, pk in active))
    payments: Counter[tuple[int, str]] = Counter(Payment.objects.values_list("user_id", "offer__slug"))
    mail, other_mail = emails_per_recipient(emails_dir)
    differences = []
    per_kind: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    right = 0
    for buyer in buyers:
        slug = f"chaos-{buyer.kind.replace('_', '-')}"
        user_id = users.get(buyer.email)
        owned = entitlements.get(user_id, []) if user_id else []
        active_here = sum(1 for s, is_active in owned if s == slug and is_active)
        paid_rows = payments.get((user_id, slug), 0) if user_id else 0
        wanted_payments = 0 if buyer.kind == "free" else 1
        sent = mail.get(buyer.email, 0)
        tally = per_kind[buyer.kind]
        tally["buyers"] += 1
        tally["1 active entitlement"] += active_here == 1 and len(owned) == 1
        tally["payment rows as paid"] += paid_rows == wanted_payments
        tally["1 confirmation email"] += sent == 1
        problems = []
        if buyer.paid_at is None:
            problems.append(f"never completed its purchase ({buyer.error})")
        if user_id is None:
            problems.append("no account")
        if active_here != 1 or len(owned) != 1:
            problems.append(f"entitlements {owned or 'none'}")
        if paid_rows != wanted_payments:
            problems.append(f"{paid_rows} payment rows (want {wanted_payments})")
        if sent != 1:
            problems.append(f"{sent} confirmation emails")
        if problems:
            differences.append(f"{buyer.email} [{buyer.kind}]: " + "; ".join(problems))
        else:
            right += 1
    statuses = Counter(WebhookEvent.objects.values_list("status", flat=True))
    pending, failed, flagged = statuses["pending"], statuses["failed"], statuses["flagged"]
    if pending or failed or flagged:
        differences.append(f"webhook events: {pending} pending, {failed} failed, {flagged} flagged")
    unsent = outbox_unsent_count()
    if unsent:
        differences.append(f"outbox: {unsent} rows not sent")
    strangers = (set(mail) | set(other_mail)) - {buyer.email for buyer in buyers}
    if strangers:
        differences.append(f"emails to addresses that bought nothing: {sorted(strangers)[:5]}")
    return Check(right, differences, per_kind, pending, failed, flagged, unsent, other_mail)


def count_access_log(path: Path) -> Counter[str]:
    """5xx answers in gunicorn's access log, by status and path."""
    counts: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            status, _, rest = line.partition(" ")
            if status.isdigit() and int(status) >= 500:
                counts[f"{status} {rest}"] += 1
    return counts


def delivery_errors(sandbox: Sandbox) -> tuple[int, Counter[str], int]:
    """(pending deliveries, non-2xx answers by status, deliveries made) from the sandbox's log."""
    log_ = sandbox.control("GET", "/deliveries")
    answers: Counter[str] = Counter()
    for entry in log_["deliveries"]:
        if entry.get("result") == "no_endpoint":
            continue  # while the seller was set up, before the webhook URL was given
        status = entry.get("status")
        if status is None or not (200 <= int(status) < 300):
            answers[str(status if status is not None else entry.get("error") or entry.get("result"))] += 1
    return int(log_["pending"]), answers, len(log_["deliveries"])


# --- The run --------------------------------------------------------------------------------
def default_deadline(n: int) -> float:
    """Twelve minutes for 1,000 purchases, seven and a half for 100: setup, the purchases, and
    the visibility timeout (121 s) that a task held by a killed worker waits out, after the
    last kill, before kombu hands it on."""
    return 420 + 0.3 * n


def run(n: int, deadline_s: float, seed: int, concurrency: int, faults_on: bool = True) -> int:
    started = time.monotonic()
    deadline = started + deadline_s
    rng = random.Random(seed)

    def on_alarm(signum: int, frame: object) -> None:
        raise DeadlinePassed(f"the run passed its deadline of {deadline_s:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(deadline_s) + 30)  # the last resort, if a step hangs past the checks below
    temp = Path(tempfile.mkdtemp(prefix="membership-chaos-"))
    ok = False
    try:
        with ExitStack() as stack:
            ok = _run(stack, temp, n, deadline, rng, concurrency, started, faults_on)
    except DeadlinePassed as exc:
        log(f"FAIL: {exc}")
    finally:
        signal.alarm(0)
        if ok:
            shutil.rmtree(temp, ignore_errors=True)
        else:
            log(f"logs kept in {temp}")
    return 0 if ok else 1


def _run(
    stack: ExitStack,
    temp: Path,
    n: int,
    deadline: float,
    rng: random.Random,
    concurrency: int,
    started: float,
    faults_on: bool,
) -> bool:
    emails_dir = temp / "emails"
    emails_dir.mkdir()
    redis_server = stack.enter_context(private_redis(temp / "redis"))
    database = stack.enter_context(fresh_database())
    web_port, sandbox_port = free_port(), free_port()
    sandbox_url, web = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{web_port}"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "WEBHOOK_"))},
        **TIMEOUTS,
        "DJANGO_SETTINGS_MODULE": "bench.chaos_settings",
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(temp / "data"),
        "DATABASE_URL": database,
        "REDIS_URL": f"{redis_server.url}/0",
        "CACHE_URL": f"{redis_server.url}/1",
        "STRIPE_API_BASE": sandbox_url,
        "STRIPE_SANDBOX_ALLOWED": "true",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "EMAIL_FILE_PATH": str(emails_dir),
        "SITE_URL": web,
        # Each buyer comes from an address of its own, given by X-Forwarded-For as a load
        # balancer would: the rate limits count per address, as in production.
        "FORWARDED_PROXY_COUNT": "1",
        "DB_CONN_MAX_AGE": "60",
    }
    env.pop("EMAIL_HOST", None)
    (temp / "data").mkdir()
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)

    sandbox_args = [sys.executable, "-m", "stripe_sandbox", "--port", str(sandbox_port), "--quiet"]
    sandbox_args += ["--state-dir", str(temp / "sandbox"), "--webhook-secret", WEBHOOK_SECRET]
    sandbox_args += ["--webhook-url", f"{web}/stripe/webhook/", "--delivery-concurrency", "16"]
    stack.enter_context(running(sandbox_args, env=env, log=temp / "sandbox.log", port=sandbox_port))
    sandbox = Sandbox(sandbox_url)
    sandbox.configure(webhook_url="")  # nothing to deliver while the seller is set up
    slugs = connect_seller(sandbox, web)

    access_log = temp / "access.log"
    web_args = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{web_port}"]
    web_args += ["--workers", "3", "--threads", "4", "--timeout", "60", "--log-level", "warning"]
    web_args += ["--access-logfile", str(access_log), "--access-logformat", "%(s)s %(m)s %(U)s"]
    stack.enter_context(running(web_args, env=env, log=temp / "gunicorn.log", port=web_port, timeout=60))

    worker = Supervised(
        "worker",
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "4", "--loglevel=INFO"],
        env,
        temp / "worker.log",
    )
    beat = Supervised(
        "beat",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(temp / "celerybeat-schedule"),
        ],
        env,
        temp / "beat.log",
    )
    stack.enter_context(Supervisor([worker, beat]))
    _wait(
        lambda: "Connected to" in (temp / "worker.log").read_text(errors="replace"),
        60,
        "the worker to connect",
        deadline,
    )
    sandbox.configure(webhook_url=f"{web}/stripe/webhook/")
    if faults_on:
        sandbox.configure(duplicate=True, reorder=True, delay_ms=100)
    log(f"stack up in {time.monotonic() - started:.0f} s: web {web}, sandbox {sandbox_url}, Redis {redis_server.url}")

    buyers = [
        Buyer(index=i, kind=KINDS[i % 3], email=f"buyer{i}@buyers.chaos.example", address=_address(i)) for i in range(n)
    ]
    rng.shuffle(buyers)
    traffic = Traffic()
    shop = Shop(web, slugs, traffic)
    faults = Faults()
    done = Counter[str]()
    stop_chaos = threading.Event()
    chaos = threading.Thread(
        target=chaos_loop,
        kwargs={
            "stop": stop_chaos,
            "rng": rng,
            "worker": worker,
            "beat": beat,
            "redis_server": redis_server,
            "sandbox": sandbox,
            "faults": faults,
            "redis_restart_at": lambda: done["n"] >= n // 2,
        },
        name="chaos",
        daemon=True,
    )

    def one(buyer: Buyer) -> None:
        shop.buy(buyer)
        done["n"] += 1

    log(f"{n} purchases from {concurrency} threads, webhooks duplicated, reordered, delayed 100 ms, dropped")
    buying = time.monotonic()
    if faults_on:
        chaos.start()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, buyers))
        log(f"purchases done in {time.monotonic() - buying:.0f} s")
        # Kills stop with the purchases (each one's held tasks wait out the visibility timeout),
        # unless the worker was not yet killed twice.
        while faults_on and faults.worker_kills < 2 and time.monotonic() < deadline - 240:
            time.sleep(0.5)
    finally:
        stop_chaos.set()
        if chaos.is_alive():
            chaos.join()
    sandbox.configure(duplicate=False, reorder=False, delay_ms=0, drop=0)
    paid_times = [buyer.paid_at for buyer in buyers if buyer.paid_at is not None]
    last_payment = max(paid_times) if paid_times else time.time()
    log(
        f"faults: worker SIGKILLed {faults.worker_kills} times (holding {faults.worker_kills_holding} tasks), "
        f"beat {faults.beat_kills}, Redis restarted {faults.redis_restarts}, {faults.drops} events dropped"
    )

    log("waiting for convergence through the sweep and the reconciliation")
    converged_after: float | None = None
    result = check(buyers, emails_dir)
    last_report = 0.0
    settled_since: float | None = None
    drained_once, drained_at = False, 0.0
    while True:
        queued, unacked = _broker_holds_or_busy(redis_server)
        if not drained_once and queued == 0 and unacked == 0:
            drained_once, drained_at = True, time.time()
        if result.converged and converged_after is None:
            converged_after = time.time() - last_payment
            log(f"converged {converged_after:.0f} s after the last payment; waiting for the broker to drain")
        if result.converged and drained_once:
            break
        if not result.converged:
            converged_after = None  # a late redelivery undid it: measure again
        if time.monotonic() > deadline:
            break
        # Nothing left anywhere that could still change a buyer: no event to process, no outbox
        # row, and the broker was empty once since the kills stopped (so no task of a killed
        # worker is still to come back; what it holds later is the beat's periodic tasks). Past
        # two reconciliations more, waiting cannot help.
        idle = drained_once and not (result.events_pending or result.events_failed or result.outbox_unsent)
        settled_since = (settled_since or time.monotonic()) if idle else None
        if settled_since is not None and time.monotonic() - settled_since > GIVE_UP_AFTER:
            log(f"nothing left in flight for {GIVE_UP_AFTER} s and still not right: what is missing is lost")
            break
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            log(
                f"{result.buyers_right}/{n} buyers right, events {result.events_pending} pending "
                f"{result.events_failed} failed, outbox {result.outbox_unsent}, broker {queued} queued "
                f"{unacked} unacknowledged"
            )
        time.sleep(2)
        result = check(buyers, emails_dir)
    drained_after = (drained_at or time.time()) - last_payment
    time.sleep(3)  # the last acknowledged tasks' commits
    result = check(buyers, emails_dir)
    pending_deliveries, refused, delivered = delivery_errors(sandbox)
    access = count_access_log(access_log)
    return report(
        n=n,
        result=result,
        faults=faults,
        traffic=traffic,
        access=access,
        refused=refused,
        delivered=delivered,
        pending_deliveries=pending_deliveries,
        converged_after=converged_after,
        drained_after=drained_after,
        drained=drained_once,
        worker_starts=worker.starts,
        beat_starts=beat.starts,
        total=time.monotonic() - started,
        buyers=buyers,
        faults_on=faults_on,
    )


# Longer than two reconciliation intervals: an event that was never delivered is found by then.
GIVE_UP_AFTER = 2 * int(TIMEOUTS["WEBHOOK_RECONCILE_INTERVAL"]) + 15


def _broker_holds_or_busy(redis_server: PrivateRedis) -> tuple[int, int]:
    try:
        return broker_holds(redis_server)
    except Exception:
        return -1, -1


def _wait(check_: Callable[[], bool], timeout: float, what: str, deadline: float) -> None:
    until = min(time.monotonic() + timeout, deadline)
    while not check_():
        if time.monotonic() > until:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def report(
    *,
    n: int,
    result: Check,
    faults: Faults,
    traffic: Traffic,
    access: Counter[str],
    refused: Counter[str],
    delivered: int,
    pending_deliveries: int,
    converged_after: float | None,
    drained_after: float,
    drained: bool,
    worker_starts: int,
    beat_starts: int,
    total: float,
    buyers: list[Buyer],
    faults_on: bool,
) -> bool:
    refused_5xx = sum(count for status, count in refused.items() if status.isdigit() and int(status) >= 500)
    web_5xx = sum(access.values())
    print()
    print(f"=== make chaos: {n} purchases ===")
    for kind in KINDS:
        tally = result.per_kind[kind]
        paid = "payment rows: 0 each (free)" if kind == "free" else f"1 payment row: {tally['payment rows as paid']}"
        print(
            f"  {kind:<10} {tally['buyers']:>5} buyers | 1 active entitlement: {tally['1 active entitlement']}"
            f" | {paid} | 1 confirmation email: {tally['1 confirmation email']}"
        )
    print(f"  buyers exactly right: {result.buyers_right} of {n}")
    print(
        f"  webhook events pending: {result.events_pending}, failed: {result.events_failed},"
        f" flagged: {result.events_flagged}"
    )
    outbox = "n/a (the platform has no outbox yet)" if result.outbox_unsent is None else result.outbox_unsent
    print(f"  outbox rows not sent: {outbox}")
    print(
        f"  other emails to buyers (login links for a repeated claim): {sum(result.other_emails.values())}"
        f" to {len(result.other_emails)} buyers"
    )
    print(f"  5xx answered by gunicorn (access log): {web_5xx}{_top(access)}")
    print(f"  5xx seen by buyers: {sum(traffic.server_errors.values())}{_top(traffic.server_errors)}")
    print(
        f"  webhook deliveries answered 5xx: {refused_5xx} of the latest {delivered} the sandbox keeps"
        f" (other non-2xx:{_top(refused) or ' none'}); every one is in gunicorn's access log above"
    )
    print(f"  webhook deliveries still pending in the sandbox: {pending_deliveries}")
    print(f"  buyers' dropped connections (retried): {traffic.connection_errors}")
    retried = sum(1 for buyer in buyers if buyer.tries > 1)
    print(f"  buyers who had to try again: {retried}")
    print(
        f"  faults: worker SIGKILLed {faults.worker_kills}x while holding tasks {faults.worker_kills_holding},"
        f" beat SIGKILLed {faults.beat_kills}x, Redis killed and restarted {faults.redis_restarts}x,"
        f" {faults.drops} webhook events dropped; supervisor started the worker {worker_starts}x, beat {beat_starts}x"
    )
    converged = f"{converged_after:.1f} s" if converged_after is not None else "never"
    print(f"  last payment -> convergence: {converged}")
    print(f"  last payment -> broker drained (nothing left to redeliver): {drained_after:.1f} s")
    print(f"  whole run: {total:.0f} s")
    failures = list(result.differences)
    if web_5xx:
        failures.append(f"{web_5xx} answers 5xx in gunicorn's access log")
    if refused_5xx:
        failures.append(f"{refused_5xx} webhook deliveries answered 5xx")
    if traffic.server_errors:
        failures.append(f"buyers saw {sum(traffic.server_errors.values())} 5xx pages")
    if not drained:
        failures.append("the broker was never empty: tasks of a killed worker may still come back")
    if converged_after is None:
        failures.append("no convergence")
    if faults_on and (faults.worker_kills < 1 or faults.redis_restarts < 1):
        failures.append("the faults were not all injected")
    if failures:
        print(f"  DIFFERENCES ({len(failures)}):")
        for line in failures[:50]:
            print(f"    - {line}")
        if len(failures) > 50:
            print(f"    ... and {len(failures) - 50} more")
        print("chaos: FAIL")
        return False
    print("chaos: PASS, nothing lost")
    return True


def _top(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{key}: {value}" for key, value in counts.most_common(5)) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="purchases (default 1000)")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the whole run (default: scaled)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the faults' moments")
    parser.add_argument("--concurrency", type=int, default=12, help="buyers at once (default 12)")
    parser.add_argument("--no-faults", action="store_true", help="the same run without any fault: a baseline")
    args = parser.parse_args(argv)
    if args.n < 3:
        parser.error("--n must be at least 3 (one buyer of each kind)")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    deadline = args.deadline or default_deadline(args.n)
    log(f"N={args.n}, deadline {deadline:.0f} s, seed {seed}")
    return run(args.n, deadline, seed, args.concurrency, faults_on=not args.no_faults)


if __name__ == "__main__":
    raise SystemExit(main())
