"""Shared by the membership lifecycle's end-to-end tests: a purchase through the sandbox's
hosted checkout, waiting until every webhook and outbox row has been dealt with, what the
buyer sees of the private group, and the emails sent.

The platform's clock is moved only while reading (``reading_at``), after the deliveries have
settled: webhooks are signed with real time, and CI's real Celery worker cannot be moved.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import time_machine
from django.test import Client

from accounts.models import OutboxMessage, User
from billing.models import CheckoutAttempt, StripeAccount, WebhookEvent
from memberships.models import Entitlement, Offer
from tests.billing.test_stripe_flows import _offer, _paid, _start_checkout, _wait

PAYS = "4242424242424242"
# Pays at checkout, then declines every off-session charge (the renewals).
FAILS_LATER = "4000000000000341"
BUYER = "bea@example.com"
GROUP_PAGE = "/community/members/"
TITLE = "Inner Circle"


def offer(*, recurring: bool = False, amount: int = 2500, **fields: Any) -> Offer:
    """The offer on sale (its private group "Members"), with any lifecycle settings changed."""
    made = _offer(recurring=recurring, amount=amount)
    if fields:
        Offer.objects.filter(pk=made.pk).update(**fields)
        made.refresh_from_db()
    return made


@dataclass
class Purchase:
    buyer: User
    entitlement: Entitlement
    attempt: CheckoutAttempt

    @property
    def subscription_id(self) -> str:
        return self.attempt.stripe_subscription_id or ""

    def refresh(self) -> Entitlement:
        self.entitlement.refresh_from_db()
        return self.entitlement


def buy(client: Client, sandbox: Any, *, card: str = PAYS, email: str = BUYER) -> Purchase:
    """A buyer pays on the hosted checkout page; returns once the purchase has settled."""
    client.logout()
    # Starting the checkout writes here while Stripe's answer makes events: they wait.
    with deliveries_held(sandbox, ms=2000):
        attempt = _start_checkout(client, email=email)
    result = sandbox.pay_checkout(attempt.stripe_session_id, card=card, email=email, name="Bea Buyer")
    assert result.paid, result.error
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")
    settle(sandbox)
    attempt.refresh_from_db()
    buyer = User.objects.get(email=email)
    return Purchase(buyer=buyer, entitlement=Entitlement.objects.get(user=buyer, offer=attempt.offer), attempt=attempt)


def _idle(sandbox: Any) -> tuple[int, int, int]:
    deliveries = len(sandbox.wait_for_deliveries(timeout=20.0))
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists(), list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).values_list("type", "error")
    )
    events = WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING)
    rows = OutboxMessage.objects.filter(status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING])
    try:
        _wait(lambda: not events.exists() and not rows.exists(), what="every event and outbox row to be dealt with")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: {list(events.values_list('type', 'attempts'))} {list(rows.values('key', 'status'))}"
        ) from None
    return deliveries, WebhookEvent.objects.count(), OutboxMessage.objects.count()


def settle(sandbox: Any) -> None:
    """Wait until the sandbox has nothing left to deliver, every event is processed and every
    outbox row sent: twice in a row with nothing new in between, since an outbox row's Stripe
    write makes new events."""
    seen = _idle(sandbox)
    while (again := _idle(sandbox)) != seen:
        seen = again
    failed = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED)
    assert not failed.exists(), list(failed.values_list("key", "last_error"))


def subscription(sandbox: Any, subscription_id: str) -> dict[str, Any]:
    """The subscription as Stripe has it (its period is on its item)."""
    account_id = StripeAccount.objects.creator().get().account_id
    found: dict[str, Any] = (
        sandbox.client().v1.subscriptions.retrieve(subscription_id, None, {"stripe_account": account_id}).to_dict()
    )
    return found


def period(sandbox: Any, subscription_id: str) -> tuple[datetime, datetime]:
    item = subscription(sandbox, subscription_id)["items"]["data"][0]
    return moment(item["current_period_start"]), moment(item["current_period_end"])


def moment(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def advance_past_period_end(sandbox: Any, subscription_id: str, *, by: int = 60) -> None:
    """Move the sandbox's clock just past the subscription's period end, and let what it ran
    (a renewal, a failed charge, a cancellation) reach the platform."""
    _, end = period(sandbox, subscription_id)
    sandbox.advance_clock(int(end.timestamp()) - sandbox.now() + by)
    settle(sandbox)


@contextmanager
def deliveries_held(sandbox: Any, ms: int = 1000) -> Iterator[None]:
    """Around the test's own writes whose Stripe writes run after commit (in this process on
    the first CI pass): the webhooks these cause wait until the writes are done, since with
    SQLite the live server shares the test's database connection."""
    sandbox.set_delivery(delay_ms=ms)
    try:
        yield
    finally:
        sandbox.set_delivery()


@contextmanager
def reading_at(when: datetime) -> Iterator[None]:
    """The platform's now moved to ``when`` for reads only (nothing is delivered meanwhile)."""
    with time_machine.travel(when, tick=False):
        yield


def group_page(client: Client, buyer: User) -> Any:
    """The private group's page as the buyer, logged in afresh: a jump in time outlives a
    session, and access given to an unproven account ends its sessions."""
    buyer.refresh_from_db()
    client.force_login(buyer)
    response = client.get(GROUP_PAGE)
    page = response.content.decode()
    assert buyer.email in page, "the buyer is not shown as logged in"
    assert "Log out" in page
    return response


def assert_entered(client: Client, buyer: User) -> None:
    response = group_page(client, buyer)
    assert response.status_code == 200
    assert "for members only" not in response.content.decode()


def assert_paywalled(client: Client, buyer: User) -> None:
    response = group_page(client, buyer)
    assert response.status_code == 403
    assert "This hub group is for members only" in response.content.decode()


def subjects(celery_worker: Any) -> list[str]:
    """The subjects of the emails sent so far, in no particular order (sorted)."""
    return sorted(str(message["Subject"]) for message in celery_worker.all())


def email_keys(prefix: str) -> list[str]:
    return sorted(OutboxMessage.objects.filter(key__startswith=prefix).values_list("key", flat=True))


def reasons(entitlement: Entitlement) -> list[str]:
    """The entitlement's history, oldest first; each line agrees with the status it records."""
    changes = list(reversed(entitlement.changes.all()))
    for change in changes:
        gives_access = change.status_after in Entitlement.ACCESS_STATUSES
        if "access kept" in change.reason or "access restored" in change.reason:
            assert gives_access, f"{change.reason!r} recorded with the status {change.status_after}"
        if "access ended" in change.reason or "access revoked" in change.reason:
            assert not gives_access, f"{change.reason!r} recorded with the status {change.status_after}"
    return [change.reason for change in changes]


def stripe_writes() -> list[tuple[str, str]]:
    rows = OutboxMessage.objects.filter(kind=OutboxMessage.Kind.STRIPE).order_by("key")
    return list(rows.values_list("key", "status"))


def pause(seconds: float = 0.3) -> None:
    """Long enough for a wrongly queued second email to have gone out."""
    time.sleep(seconds)


CONFIRMATION = f"You're in: {TITLE}"
RECEIPT = f"Your receipt for {TITLE}: $25.00"
PAYMENT_FAILED = f"Your payment for {TITLE} didn't go through"
GRACE_ENDING = f"Update your card to keep {TITLE}"
RESTORED = f"Your access to {TITLE} is back"
ENDED = f"Your access to {TITLE} has ended"
SUSPENDED = f"Your access to {TITLE} is suspended"
