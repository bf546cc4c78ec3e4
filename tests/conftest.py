"""Shared personas, a connected Stripe account, and the fixtures that reach real services: a
Celery worker and a browser (with the login every browser test starts with)."""

from __future__ import annotations

import email
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import caches
from django.utils import timezone

from accounts.models import User
from billing.models import StripeAccount
from config.celery import app as celery_app
from devtools.processes import running
from tests import factories
from tests.stripe_sandbox.control import _stripe_sandbox_server, stripe_sandbox

__all__ = ["_stripe_sandbox_server", "stripe_sandbox"]  # fixtures for every test package

PASSWORD = "correct-horse-battery"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each test starts with empty caches (rate-limit counters, sessions, cached pages).

    The test settings keep every cache in this process's memory, so clearing never touches
    Redis, where the second CI pass keeps the Celery broker.
    """
    for alias in settings.CACHES:
        caches[alias].clear()


@pytest.fixture(autouse=True)
def _celery_may_wait_for_results() -> None:
    """Each test starts where Celery lets a test wait for an eager task's result.

    Celery keeps "a task is running here" in one process-wide flag that each eager task sets
    and puts back as it found it. The live server runs tasks in several threads, so two that
    overlap can put it back in the wrong order and leave it set, and every later ``.get()``
    would then refuse ("Never call result.get() within a task!").
    """
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> None:
    """Uploads and the images factories store go to the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


# --- Personas --------------------------------------------------------------------------------
@pytest.fixture
def owner(db: None) -> User:
    """The creator: a staff user who works in the dashboard."""
    return User.objects.create_user(
        "owner@example.com", PASSWORD, full_name="Olive Owner", is_staff=True, email_verified_at=timezone.now()
    )


@pytest.fixture
def member(db: None) -> User:
    """A buyer with an account, who has used it (so proved the address)."""
    return User.objects.create_user(
        "member@example.com", PASSWORD, full_name="Mia Member", email_verified_at=timezone.now()
    )


@pytest.fixture
def outsider(db: None) -> User:
    """A logged-in user with no purchases and no grants."""
    return User.objects.create_user(
        "outsider@example.com", PASSWORD, full_name="Otto Outsider", email_verified_at=timezone.now()
    )


@pytest.fixture
def stripe_account(db: None) -> StripeAccount:
    """The creator has connected a Stripe account that takes payments, so billing's own check
    (registered in ``memberships.hooks``) lets paid offers be published and sold."""
    return factories.stripe_account()


# --- Celery ----------------------------------------------------------------------------------
class SentEmails:
    """Emails sent by tasks, wherever the tasks ran."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def all(self) -> list[Message]:
        if self.directory is None:
            return [email.message_from_bytes(m.message().as_bytes()) for m in mail.outbox]
        messages: list[Message] = []
        for path in sorted(self.directory.glob("*.log")):
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    messages.append(email.message_from_bytes(chunk.lstrip()))
        return messages

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.all()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def body_text(message: Message) -> str:
    """The text/plain part of an email, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("the email has no text part")


@pytest.fixture(scope="session")
def _real_worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real Celery worker process on Redis, using the test database. Second CI pass only."""
    import dj_database_url

    email_dir = tmp_path_factory.mktemp("worker-emails")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    db = dict(dj_database_url.parse(os.environ["DATABASE_URL"]))
    db_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + settings.DATABASES["default"]["NAME"]
    assert str(db["ENGINE"]).endswith("postgresql"), "the real worker needs PostgreSQL beside Redis"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": db_url,
        "DB_CONN_MAX_AGE": "0",
        "EMAIL_FILE_PATH": str(email_dir),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        # Tasks queued by tasks (e.g. the confirmation email after a webhook) stay on this queue.
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SITE_URL": os.environ.get("SITE_URL", "http://localhost:8000"),
        # The offline Stripe sandbox the tests run (tests/stripe_sandbox/control.py picks its port).
        "STRIPE_API_BASE": os.environ.get("TEST_STRIPE_API_BASE", ""),
    }
    celery_app.conf.task_default_queue = queue
    # A node name of its own: with the suite split over processes (pytest-xdist), each one's
    # worker answers its own ping.
    node = f"{queue}@localhost"
    worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-n", node, "-c", "2"]
    worker.append("--loglevel=INFO")
    log = tmp_path_factory.mktemp("worker-log") / "worker.log"

    def ready() -> bool:
        return bool(celery_app.control.ping(destination=[node], timeout=1.0))

    with running(worker, log=log, env=env, ready=ready, timeout=60):
        yield email_dir


@pytest.fixture
def celery_worker(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[SentEmails]:
    """Tasks run by a real worker on Redis when REDIS_URL is set, in-process otherwise.

    Tests using it must not depend on which: they see the database and the sent emails.
    """
    if not os.environ.get("REDIS_URL"):
        yield SentEmails(None)
        return
    email_dir = request.getfixturevalue("_real_worker")
    for old in email_dir.glob("*.log"):
        old.unlink()
    celery_app.conf.task_always_eager = False
    try:
        yield SentEmails(email_dir)
    finally:
        celery_app.conf.task_always_eager = True


# --- Browser ---------------------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself stay synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any, settings: Any) -> Iterator[Any]:
    """A page in a fresh browser context (its own cookies), pointed at the live server."""
    settings.SITE_URL = live_server.url
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def log_in(live_server: Any) -> Callable[[Any, User], None]:
    """Log a persona in on a browser page through the login form, as a person does, and wait
    until the form lets them through (to wherever their role lands)."""

    def log_in(page: Any, user: User) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Email address").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: urlsplit(url).path != "/accounts/login/")

    return log_in


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A factory of pages in further fresh contexts: a second person, another browser."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
