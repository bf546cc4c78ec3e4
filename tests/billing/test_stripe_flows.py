"""End to end through the real SDK against the offline Stripe sandbox: connecting an account,
one-time and recurring purchases, declines, and the webhook pipeline under duplicates,
concurrency and out-of-order delivery. Tasks run on the ``celery_worker`` (a real worker on
Redis in CI's second pass).

The sandbox's webhooks are pointed at the live server only once the test's own writes are
done: with SQLite the live server thread shares the test's database connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from billing.models import CheckoutAttempt, Payment, StripeAccount, WebhookEvent
from billing.selectors import stripe_connected
from billing.services.sales_days import sales_days_differences
from billing.tasks import sync_offer_to_stripe
from hubs.models import HubGroup
from memberships.models import Entitlement, Offer

pytestmark = pytest.mark.django_db(transaction=True)

INTEGRATIONS = "/dashboard/settings/integrations/"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _wait(condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _connect(client: Client, owner: User, sandbox: Any, **authorize: Any) -> Any:
    client.force_login(owner)
    start = client.post("/dashboard/settings/integrations/stripe/connect/")
    assert start.status_code == 302
    assert start["Location"].startswith(sandbox.url + "/oauth/authorize?")
    back = sandbox.authorize_oauth(start["Location"], **authorize)
    return client.get(_path(back), follow=True)


def _offer(*, recurring: bool = False, amount: int = 2500) -> Offer:
    group = HubGroup.objects.create(name="Members", slug="members", permission=HubGroup.Permission.PRIVATE)
    offer = Offer.objects.create(
        title="Inner Circle",
        slug="inner-circle",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.RECURRING if recurring else Offer.Pricing.ONE_TIME,
        interval=Offer.Interval.MONTH if recurring else "",
        price_amount=amount,
        currency="usd",
    )
    offer.hub_groups.add(group)
    sync_offer_to_stripe.apply(args=[offer.pk])  # in this process: the test waits on the price
    offer.refresh_from_db()
    assert offer.stripe_price.price_id.startswith("price_")
    return offer


@pytest.fixture
def connected(client: Client, owner: User, stripe_sandbox: Any) -> StripeAccount:
    _connect(client, owner, stripe_sandbox)
    client.logout()
    return StripeAccount.objects.connected().get()


def _start_checkout(client: Client, email: str = "bea@example.com") -> CheckoutAttempt:
    response = client.post("/offers/inner-circle/checkout/pay/", {"email": email, "full_name": "Bea Buyer"})
    assert response.status_code == 302, response.content.decode()[:2000]
    attempt = CheckoutAttempt.objects.get(email=email, status=CheckoutAttempt.Status.OPEN)
    assert response["Location"].startswith(settings.STRIPE_API_BASE)
    return attempt


def _paid(attempt: CheckoutAttempt) -> bool:
    return CheckoutAttempt.objects.filter(pk=attempt.pk, status=CheckoutAttempt.Status.PAID).exists()


def _events(sandbox: Any, account_id: str, type_: str) -> list[dict[str, Any]]:
    listed = sandbox.client().v1.events.list({"type": type_, "limit": 100}, {"stripe_account": account_id})
    return [event.to_dict(for_json=True) for event in listed.data]


def _deliver(url: str, event: dict[str, Any]) -> int:
    """Send an event as Stripe does: the raw body, signed with the endpoint's secret."""
    body = json.dumps(event).encode()
    timestamp = int(time.time())
    digest = hmac.new(
        settings.STRIPE_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={digest}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


# --- Connecting Stripe ---------------------------------------------------------------------
def test_a_creator_connects_a_stripe_account(client, owner, stripe_sandbox) -> None:
    response = _connect(client, owner, stripe_sandbox, business_name="Olive's Yoga")
    page = response.content.decode()
    account = StripeAccount.objects.connected().get()
    assert account.account_id.startswith("acct_")
    assert f"Stripe account {account.account_id} is connected" in page
    assert account.charges_enabled
    assert account.payouts_enabled
    assert not account.livemode
    assert account.display_name == "Olive's Yoga"
    assert stripe_connected()


def test_a_creator_who_refuses_on_stripe_connects_nothing(client, owner, stripe_sandbox) -> None:
    response = _connect(client, owner, stripe_sandbox, deny=True)
    assert "You declined the connection in Stripe" in response.content.decode()
    assert not StripeAccount.objects.exists()


def test_an_answer_with_a_bad_state_connects_nothing(client, owner, stripe_sandbox) -> None:
    client.force_login(owner)
    start = client.post("/dashboard/settings/integrations/stripe/connect/")
    back = stripe_sandbox.authorize_oauth(start["Location"])
    forged = back.replace("state=", "state=x")
    response = client.get(_path(forged), follow=True)
    assert "does not match a connection started here" in response.content.decode()
    assert not StripeAccount.objects.exists()


def test_an_account_that_needs_verification_cannot_sell_yet(client, owner, stripe_sandbox) -> None:
    response = _connect(client, owner, stripe_sandbox, needs_verification=True)
    assert "needs more information" in response.content.decode()
    assert not stripe_connected()
    account = StripeAccount.objects.connected().get()
    stripe_sandbox.update_account(account.account_id, verified=True)
    refreshed = client.post("/dashboard/settings/integrations/stripe/refresh/", follow=True)
    assert "the account can take payments" in refreshed.content.decode()
    assert stripe_connected()


def test_disconnecting_revokes_the_account_on_stripe(client, owner, stripe_sandbox) -> None:
    _connect(client, owner, stripe_sandbox)
    response = client.post("/dashboard/settings/integrations/stripe/disconnect/", follow=True)
    assert "Stripe is disconnected" in response.content.decode()
    assert not stripe_connected()


def test_a_forged_deauthorization_disconnects_nothing(client, connected, stripe_sandbox) -> None:
    """Whoever holds the signing secret can sign events; Stripe itself must confirm this one."""
    from tests.billing.helpers import event, post_event

    forged = event(
        "account.application.deauthorized", {"id": "ca_x", "object": "application"}, account=connected.account_id
    )
    assert post_event(client, forged).status_code == 200
    assert stripe_connected()
    recorded = WebhookEvent.objects.get(event_id=forged["id"])
    assert recorded.status == WebhookEvent.Status.FLAGGED
    assert "Stripe still gives the platform access" in recorded.error


def test_a_deauthorization_stripe_confirms_disconnects_the_account(client, connected, stripe_sandbox) -> None:
    from tests.billing.helpers import event, post_event

    stripe_sandbox.client().oauth.deauthorize({"stripe_user_id": connected.account_id})  # revoked in Stripe
    revoked = event(
        "account.application.deauthorized", {"id": "ca_x", "object": "application"}, account=connected.account_id
    )
    assert post_event(client, revoked).status_code == 200
    assert not stripe_connected()
    assert WebhookEvent.objects.get(event_id=revoked["id"]).status == WebhookEvent.Status.PROCESSED


# --- Purchases -----------------------------------------------------------------------------
def test_a_one_time_purchase_end_to_end(client, connected, stripe_sandbox, live_server, celery_worker) -> None:
    offer = _offer(amount=2500)
    attempt = _start_checkout(client)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")

    result = stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com", name="Bea Buyer")
    assert result.paid
    assert result.redirect_url.startswith(settings.SITE_URL + f"/checkout/{attempt.pk}/return/")
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")

    buyer = User.objects.get(email="bea@example.com")
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.access_until is None
    payment = Payment.objects.get()
    assert (payment.amount, payment.currency, payment.kind) == (2500, "usd", Payment.Kind.ONE_TIME)
    assert payment.stripe_object_id.startswith("pi_")
    # Stripe's fee, from the charge's balance transaction: 2.9% of $25.00 (72.5, rounded up) + 30 ¢.
    assert payment.stripe_fee_amount == 103
    assert sales_days_differences() == []
    [email] = celery_worker.wait_for(1)
    assert email["To"] == "bea@example.com"

    assert client.get(f"/checkout/{attempt.pk}/status/").json()["status"] == "paid"
    landing = client.get(f"/checkout/{attempt.pk}/complete/")
    assert landing.status_code == 302
    assert client.session["_auth_user_id"] == str(buyer.pk)


def test_a_recurring_purchase_end_to_end(client, connected, stripe_sandbox, live_server, celery_worker) -> None:
    offer = _offer(recurring=True, amount=50)
    attempt = _start_checkout(client)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    _wait(lambda: _paid(attempt), what="the subscription to be fulfilled")
    stripe_sandbox.wait_for_deliveries()
    _wait(
        lambda: not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists(),
        what="every event to be processed",
    )

    entitlement = Entitlement.objects.get(offer=offer)
    assert entitlement.source == Entitlement.Source.SUBSCRIPTION
    attempt.refresh_from_db()
    subscription = (
        stripe_sandbox.client()
        .v1.subscriptions.retrieve(attempt.stripe_subscription_id, None, {"stripe_account": connected.account_id})
        .to_dict()
    )
    period_end = subscription["items"]["data"][0]["current_period_end"]
    assert entitlement.access_until is not None
    assert period_end <= entitlement.access_until.timestamp() <= period_end + 3 * 3600
    payment = Payment.objects.get()  # checkout.session.completed and invoice.paid: one payment
    assert payment.stripe_object_id.startswith("in_")
    assert payment.amount == 50
    assert payment.stripe_fee_amount == 31  # 2.9% of 50 ¢ (1.45, rounded down) + 30 ¢
    assert sales_days_differences() == []
    assert len(celery_worker.wait_for(1)) == 1
    time.sleep(0.5)
    assert len(celery_worker.all()) == 1


def test_a_declined_card_grants_nothing(client, connected, stripe_sandbox, live_server, celery_worker) -> None:
    _offer()
    attempt = _start_checkout(client)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    result = stripe_sandbox.pay_checkout(attempt.stripe_session_id, card="4000000000000002")
    assert not result.paid
    assert result.error == "Your card was declined."
    stripe_sandbox.wait_for_deliveries()
    assert not Entitlement.objects.exists()
    assert not Payment.objects.exists()
    assert client.get(f"/checkout/{attempt.pk}/status/").json()["status"] == "open"


# --- The pipeline under duplicates, concurrency and disorder -------------------------------
@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="the live server shares one SQLite connection between its threads: concurrency is tested on "
    "PostgreSQL (CI's second pass)",
)
def test_the_same_event_five_times_at_once_grants_once(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    _offer()  # the sandbox delivers nothing: this test is the one delivering
    attempt = _start_checkout(client)
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    [event] = _events(stripe_sandbox, connected.account_id, "checkout.session.completed")

    statuses: list[int] = []
    barrier = threading.Barrier(5)

    def deliver() -> None:
        barrier.wait()
        statuses.append(_deliver(live_server.url + "/stripe/webhook/", event))

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 5
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")
    assert len(celery_worker.wait_for(1)) == 1
    time.sleep(0.5)
    assert WebhookEvent.objects.count() == 1
    assert Entitlement.objects.count() == 1
    assert Payment.objects.count() == 1
    assert len(celery_worker.all()) == 1


def test_invoice_paid_before_checkout_completed_grants_once(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    _offer(recurring=True)
    attempt = _start_checkout(client)
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    [invoice_paid] = _events(stripe_sandbox, connected.account_id, "invoice.paid")
    [completed] = _events(stripe_sandbox, connected.account_id, "checkout.session.completed")
    url = live_server.url + "/stripe/webhook/"

    assert _deliver(url, invoice_paid) == 200
    _wait(lambda: _paid(attempt), what="invoice.paid to fulfil the purchase")
    assert _deliver(url, completed) == 200
    _wait(
        lambda: WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).count() == 2,
        what="both events to be processed",
    )
    assert Entitlement.objects.count() == 1
    assert Payment.objects.count() == 1
    assert len(celery_worker.wait_for(1)) == 1
    assert _deliver(url, completed) == 200  # a replay adds nothing
    time.sleep(0.5)
    assert WebhookEvent.objects.count() == 2
    assert Payment.objects.count() == 1
    assert len(celery_worker.all()) == 1


def test_duplicated_and_reordered_deliveries_grant_once(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    _offer(recurring=True)
    attempt = _start_checkout(client)
    stripe_sandbox.set_delivery(duplicate=True, reorder=True)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    stripe_sandbox.wait_for_deliveries()
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")
    assert Entitlement.objects.count() == 1
    assert Payment.objects.count() == 1
    assert len(celery_worker.wait_for(1)) == 1


def test_an_amount_that_differs_from_the_snapshot_is_flagged_not_granted(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    """Stripe charged something other than what the buyer was shown (here: the snapshot says
    more than the price the session was made from)."""
    _offer(amount=2500)
    attempt = _start_checkout(client)
    CheckoutAttempt.objects.filter(pk=attempt.pk).update(amount=9900)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id).paid
    # The attempt is flagged in the handler's transaction and the event once the handler is
    # done: wait for both.
    _wait(
        lambda: WebhookEvent.objects.filter(
            type="checkout.session.completed", status=WebhookEvent.Status.FLAGGED
        ).exists(),
        what="the event to be flagged",
    )
    assert CheckoutAttempt.objects.get(pk=attempt.pk).status == CheckoutAttempt.Status.FLAGGED
    event = WebhookEvent.objects.get(type="checkout.session.completed")
    assert "2500 USD" in event.error
    assert not Entitlement.objects.exists()
    assert not Payment.objects.exists()
    assert client.get(f"/checkout/{attempt.pk}/status/").json()["status"] == "flagged"


def test_events_that_never_arrived_are_recovered_by_reconciliation(
    client, connected, stripe_sandbox, celery_worker
) -> None:
    """The sandbox delivers nothing here (no endpoint), as if every delivery had been lost."""
    from billing.tasks import reconcile_webhook_events

    offer = _offer()
    attempt = _start_checkout(client)
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    assert not WebhookEvent.objects.exists()

    assert reconcile_webhook_events.apply().get() >= 1
    _wait(lambda: _paid(attempt), what="the recovered event to be processed")
    assert Entitlement.objects.filter(offer=offer, user__email="bea@example.com").count() == 1
    assert WebhookEvent.objects.filter(type="checkout.session.completed").count() == 1
    assert reconcile_webhook_events.apply().get() == 0  # nothing new the second time
    assert len(celery_worker.wait_for(1)) == 1


def test_an_account_stripe_stopped_from_charging_gives_the_buyer_a_clear_page(
    client, connected, stripe_sandbox
) -> None:
    _offer()
    stripe_sandbox.update_account(connected.account_id, charges_enabled=False)
    response = client.post("/offers/inner-circle/checkout/pay/", {"email": "bea@example.com", "full_name": "Bea Buyer"})
    assert response.status_code == 503
    page = response.content.decode()
    assert "cannot be bought right now" in page
    assert "Nothing was charged" in page
    assert 'value="bea@example.com"' in page
    attempt = CheckoutAttempt.objects.get()
    assert attempt.status == CheckoutAttempt.Status.FAILED
    assert "needs verification" in attempt.error
    # The creator's dashboard now shows it, and paid offers cannot be published meanwhile.
    assert not stripe_connected()


def test_a_slow_webhook_keeps_the_return_page_waiting_until_fulfilment(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    _offer()
    attempt = _start_checkout(client)
    stripe_sandbox.set_delivery(delay_ms=1500)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    result = stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com")

    back = client.get(_path(result.redirect_url))  # Stripe sends the buyer back at once
    assert "Confirming your payment" in back.content.decode()
    assert client.get(f"/checkout/{attempt.pk}/status/").json() == {"status": "open", "done": False}
    assert client.get(f"/checkout/{attempt.pk}/complete/")["Location"] == f"/checkout/{attempt.pk}/return/"
    assert "_auth_user_id" not in client.session

    _wait(lambda: client.get(f"/checkout/{attempt.pk}/status/").json()["done"], what="the webhook")
    stripe_sandbox.wait_for_deliveries()
    client.get(f"/checkout/{attempt.pk}/complete/")
    assert client.session["_auth_user_id"] == str(User.objects.get(email="bea@example.com").pk)
