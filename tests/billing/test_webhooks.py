"""The webhook endpoint and the processing pipeline, with Stripe-shaped payloads, a really
computed Stripe-Signature and the gateway reading back a fake Stripe state."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from billing.models import CheckoutAttempt, Payment, WebhookEvent
from billing.services import webhooks
from memberships.models import Entitlement
from memberships.services import RENEWAL_LEEWAY
from tests import factories
from tests.billing.helpers import ACCOUNT_ID, FakeStripe, event, post_event, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    return FakeStripe(monkeypatch)


def _completed(session: dict) -> dict:
    return event("checkout.session.completed", session)


# --- Signatures and payloads ---------------------------------------------------------------
def test_a_delivery_without_a_signature_is_refused(client) -> None:
    body = json.dumps(event("checkout.session.completed", {"id": "cs_1"})).encode()
    response = client.post("/stripe/webhook/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_malformed_signature_is_refused(client) -> None:
    body = json.dumps(event("checkout.session.completed", {"id": "cs_1"})).encode()
    response = client.post(
        "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE="garbage"
    )
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_signature_made_with_another_secret_is_refused(client) -> None:
    response = post_event(client, event("checkout.session.completed", {"id": "cs_1"}), secret="whsec_not_ours")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_stale_signature_is_refused(client) -> None:
    response = post_event(client, event("checkout.session.completed", {"id": "cs_1"}), timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_body_changed_after_signing_is_refused(client) -> None:
    body = json.dumps(event("checkout.session.completed", {"id": "cs_1"})).encode()
    response = client.post(
        "/stripe/webhook/",
        data=body.replace(b"cs_1", b"cs_2"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body),
    )
    assert response.status_code == 400


def test_a_correctly_signed_body_that_is_not_json_is_refused(client) -> None:
    response = post_event(client, b"{not json")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_the_webhook_only_accepts_post(client) -> None:
    assert client.get("/stripe/webhook/").status_code == 405


# --- Recording -----------------------------------------------------------------------------
def test_an_unknown_event_type_is_recorded_and_ignored(client) -> None:
    factories.stripe_account()
    response = post_event(client, event("customer.created", {"id": "cus_1"}, event_id="evt_unknown"))
    assert response.status_code == 200
    row = WebhookEvent.objects.get(event_id="evt_unknown")
    assert row.status == WebhookEvent.Status.IGNORED
    assert row.type == "customer.created"
    assert row.account == ACCOUNT_ID


def test_an_event_for_an_account_that_is_not_connected_is_recorded_and_ignored(client, fake_stripe) -> None:
    factories.stripe_account()
    response = post_event(
        client, event("checkout.session.completed", {"id": "cs_1"}, account="acct_Stranger", event_id="evt_x")
    )
    assert response.status_code == 200
    row = WebhookEvent.objects.get(event_id="evt_x")
    assert row.status == WebhookEvent.Status.IGNORED
    assert fake_stripe.calls == []


def test_a_replayed_event_is_stored_and_processed_once(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    payload = _completed(fake_stripe.paid_session(attempt))
    for _ in range(3):
        assert post_event(client, payload).status_code == 200
    assert WebhookEvent.objects.count() == 1
    assert WebhookEvent.objects.get().attempts == 1
    assert Payment.objects.count() == 1
    assert Entitlement.objects.count() == 1
    assert len(mail.outbox) == 1


# --- Fulfilment ----------------------------------------------------------------------------
def test_a_completed_one_time_checkout_grants_the_offer_and_records_the_payment(client, fake_stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer()
    attempt = factories.checkout_attempt(offer, email="bea@example.com")
    session = fake_stripe.paid_session(attempt)

    assert post_event(client, _completed(session)).status_code == 200

    buyer = User.objects.get(email="bea@example.com")
    assert buyer.full_name == "Bea Buyer"
    assert not buyer.has_usable_password()
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.source == Entitlement.Source.PURCHASE
    assert entitlement.access_until is None
    payment = Payment.objects.get()
    assert (payment.stripe_object_id, payment.amount, payment.currency) == (session["payment_intent"], 5000, "usd")
    assert payment.user == buyer
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.PAID
    assert attempt.user == buyer
    assert attempt.user_created
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED
    assert [m.to for m in mail.outbox] == [["bea@example.com"]]
    assert "Inner Circle" in mail.outbox[0].subject


def test_the_event_is_trusted_for_nothing_but_the_ids(client, fake_stripe) -> None:
    """The task re-reads the session: an event whose stale copy says unpaid still fulfils."""
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    session = fake_stripe.paid_session(attempt)
    stale = {**session, "payment_status": "unpaid", "amount_total": 1}
    post_event(client, _completed(stale))
    assert Entitlement.objects.count() == 1
    assert "checkout.session" in fake_stripe.calls


def test_a_purchase_by_an_existing_account_does_not_create_another(client, fake_stripe, member) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(), email="MEMBER@example.com ".strip().lower())
    post_event(client, _completed(fake_stripe.paid_session(attempt)))
    assert User.objects.filter(email="member@example.com").count() == 1
    attempt.refresh_from_db()
    assert attempt.user == member
    assert not attempt.user_created
    assert Entitlement.objects.filter(user=member).count() == 1


def test_an_amount_mismatch_is_flagged_and_not_granted(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(amount=5000))
    post_event(client, _completed(fake_stripe.paid_session(attempt, amount=50)))
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FLAGGED
    assert "50 USD" in row.error
    assert "5000 USD" in row.error
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.FLAGGED
    assert not Entitlement.objects.exists()
    assert not Payment.objects.exists()
    assert mail.outbox == []


def test_a_currency_mismatch_is_flagged_and_not_granted(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    session = fake_stripe.paid_session(attempt)
    session["currency"] = "eur"
    post_event(client, _completed(session))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.FLAGGED
    assert not Entitlement.objects.exists()


def test_a_checkout_still_processing_grants_nothing_until_the_async_payment_succeeds(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    session = fake_stripe.paid_session(attempt)
    session["payment_status"] = "unpaid"
    post_event(client, _completed(session))
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.PROCESSING
    assert not Entitlement.objects.exists()

    session["payment_status"] = "paid"
    post_event(client, event("checkout.session.async_payment_succeeded", session))
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.PAID
    assert Entitlement.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_failed_async_payment_marks_the_attempt_failed(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    session = fake_stripe.paid_session(attempt)
    session["payment_status"] = "unpaid"
    post_event(client, event("checkout.session.async_payment_failed", session))
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.FAILED
    assert not Entitlement.objects.exists()


def test_a_session_not_started_here_is_ignored(client, fake_stripe) -> None:
    factories.stripe_account()
    fake_stripe.sessions["cs_other"] = {"id": "cs_other", "client_reference_id": None, "payment_status": "paid"}
    post_event(client, event("checkout.session.completed", {"id": "cs_other"}))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert not Entitlement.objects.exists()


# --- Subscriptions -------------------------------------------------------------------------
def test_a_recurring_checkout_gives_access_until_the_period_end(client, fake_stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(recurring=True)
    attempt = factories.checkout_attempt(offer)
    session = fake_stripe.paid_session(attempt)
    post_event(client, _completed(session))
    entitlement = Entitlement.objects.get()
    assert entitlement.source == Entitlement.Source.SUBSCRIPTION
    period_end = fake_stripe.subscriptions[session["subscription"]]["items"]["data"][0]["current_period_end"]
    assert entitlement.access_until is not None
    assert int(entitlement.access_until.timestamp()) == period_end + int(RENEWAL_LEEWAY.total_seconds())
    assert Payment.objects.get().stripe_object_id == session["invoice"]


def test_invoice_paid_before_checkout_completed_grants_once(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(recurring=True))
    session = fake_stripe.paid_session(attempt)
    invoice = fake_stripe.invoices[session["invoice"]]

    post_event(client, event("invoice.paid", invoice))
    assert Entitlement.objects.count() == 1
    post_event(client, _completed(session))

    assert Entitlement.objects.count() == 1
    assert Payment.objects.count() == 1
    assert len(mail.outbox) == 1
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.PROCESSED}
    attempt.refresh_from_db()
    assert attempt.stripe_subscription_id == session["subscription"]


def test_a_renewal_extends_access_and_sends_a_receipt_not_another_welcome(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(recurring=True))
    session = fake_stripe.paid_session(attempt)
    post_event(client, _completed(session))
    first_until = Entitlement.objects.get().access_until
    renewal_end = int(time.time()) + 60 * 86400
    fake_stripe.renewal(session, "in_renewal", period_end=renewal_end)
    post_event(client, event("invoice.paid", fake_stripe.invoices["in_renewal"]))

    assert Payment.objects.count() == 2
    entitlement = Entitlement.objects.get()
    assert entitlement.access_until is not None
    assert first_until is not None
    assert entitlement.access_until > first_until
    assert entitlement.renews_at == datetime.fromtimestamp(renewal_end, tz=UTC)
    assert len(mail.outbox) == 2
    assert "receipt" in mail.outbox[1].subject.lower()


def test_a_late_checkout_event_records_the_first_payment_for_its_own_invoice(client, fake_stripe) -> None:
    """checkout.session.completed can arrive after a renewal: the first payment is still
    recorded with its invoice's period and date, as invoice.paid would record it."""
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(recurring=True))
    session = fake_stripe.paid_session(attempt)
    first = fake_stripe.invoices[session["invoice"]]
    first["created"] = int(time.time()) - 3600
    first_period = first["lines"]["data"][0]["period"]
    fake_stripe.renewal(session, "in_renewal", period_end=int(time.time()) + 60 * 86400)
    post_event(client, _completed(session))

    payment = Payment.objects.get(stripe_object_id=session["invoice"])
    assert payment.period_start == datetime.fromtimestamp(first_period["start"], tz=UTC)
    assert payment.period_end == datetime.fromtimestamp(first_period["end"], tz=UTC)
    assert payment.paid_at == datetime.fromtimestamp(first["created"], tz=UTC)


def test_an_invoice_from_another_subscription_is_ignored(client, fake_stripe) -> None:
    factories.stripe_account()
    fake_stripe.invoices["in_x"] = {
        "id": "in_x",
        "status": "paid",
        "amount_paid": 900,
        "currency": "usd",
        "parent": {"subscription_details": {"subscription": "sub_x"}},
    }
    fake_stripe.subscriptions["sub_x"] = {"id": "sub_x", "metadata": {}}
    post_event(client, event("invoice.paid", fake_stripe.invoices["in_x"]))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


# --- Failures, retries and the sweep -------------------------------------------------------
def test_stripe_down_while_processing_records_the_error_and_a_retry_fulfils(
    client, fake_stripe, django_capture_on_commit_callbacks
) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    payload = _completed(fake_stripe.paid_session(attempt))
    fake_stripe.down = True
    assert post_event(client, payload).status_code == 200
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert "could not reach Stripe" in row.error
    assert not Entitlement.objects.exists()

    fake_stripe.down = False
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_event_retry(event=row)
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED
    assert row.error == ""
    assert Entitlement.objects.count() == 1


def test_the_sweep_requeues_events_stored_but_never_processed(fake_stripe, django_capture_on_commit_callbacks) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    payload = _completed(fake_stripe.paid_session(attempt))
    with django_capture_on_commit_callbacks(execute=False):
        webhooks.webhook_event_record(event=payload)  # the task is lost: never run
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.PENDING

    assert webhooks.webhook_events_sweep() == 0  # too recent: its task may still be on its way
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.webhook_events_sweep() == 1
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED
    assert Entitlement.objects.count() == 1
    assert webhooks.webhook_events_sweep() == 0


def test_the_sweep_and_the_reconciliation_run_on_the_beat_schedule(settings) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "billing.tasks.sweep_webhook_events" in tasks
    assert "billing.tasks.reconcile_webhook_events" in tasks


# --- The staff page ------------------------------------------------------------------------
def test_staff_see_recent_events_with_their_status_and_error(client, owner, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    post_event(client, _completed(fake_stripe.paid_session(attempt, amount=50)))
    post_event(client, event("customer.created", {"id": "cus_1"}))
    client.force_login(owner)
    response = client.get("/dashboard/settings/integrations/stripe/events/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "checkout.session.completed" in page
    assert "Flagged" in page
    assert "not granted" in page
    assert "customer.created" in page


def test_the_events_page_runs_a_constant_number_of_queries(client, owner, django_assert_num_queries) -> None:
    factories.stripe_account()
    for index in range(30):
        webhooks.webhook_event_record(event=event("customer.created", {"id": f"cus_{index}"}))
    client.force_login(owner)
    with django_assert_num_queries(4):  # user, events, stuck outbox rows, refused deliveries (session cached)
        assert client.get("/dashboard/settings/integrations/stripe/events/").status_code == 200


def test_staff_can_retry_a_failed_event(client, owner, fake_stripe, django_capture_on_commit_callbacks) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    fake_stripe.down = True
    post_event(client, _completed(fake_stripe.paid_session(attempt)))
    fake_stripe.down = False
    row = WebhookEvent.objects.get()
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/settings/integrations/stripe/events/{row.pk}/retry/", follow=True)
    assert response.status_code == 200
    assert f"Event {row.event_id} was queued again." in response.content.decode()
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED
    assert Entitlement.objects.count() == 1


def test_members_cannot_see_the_events_page(client, member) -> None:
    client.force_login(member)
    assert client.get("/dashboard/settings/integrations/stripe/events/").status_code == 403


# --- The connected account's own events ----------------------------------------------------
def test_account_updated_refreshes_the_accounts_capabilities(client, monkeypatch) -> None:
    from billing import stripe_gateway as gateway
    from billing.models import StripeAccount

    factories.stripe_account(charges_enabled=False)
    monkeypatch.setattr(
        gateway,
        "account_retrieve",
        lambda *, account_id: gateway.AccountStatus(
            account_id=account_id,
            livemode=False,
            charges_enabled=True,
            payouts_enabled=True,
            details_submitted=True,
            display_name="Olive's Yoga",
            requirements_due=(),
        ),
    )
    post_event(client, event("account.updated", {"id": ACCOUNT_ID, "object": "account", "charges_enabled": False}))
    account = StripeAccount.objects.get()
    assert account.charges_enabled
    assert account.display_name == "Olive's Yoga"
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_a_deauthorization_from_stripe_disconnects_the_account(client, monkeypatch) -> None:
    from billing import stripe_gateway as gateway
    from billing.selectors import stripe_connected

    factories.stripe_account()
    monkeypatch.setattr(gateway, "account_access_revoked", lambda *, account_id: account_id == ACCOUNT_ID)
    post_event(client, event("account.application.deauthorized", {"id": "ca_platform", "object": "application"}))
    assert not stripe_connected()


def test_a_cheaper_renewal_after_a_coupon_still_renews_access(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(recurring=True))
    session = fake_stripe.paid_session(attempt)
    post_event(client, _completed(session))
    first_until = Entitlement.objects.get().access_until
    renewal_end = int(time.time()) + 60 * 86400
    fake_stripe.renewal(session, "in_renewal", period_end=renewal_end, amount=2500)  # half price this month
    post_event(client, event("invoice.paid", {"id": "in_renewal", "object": "invoice"}))
    assert WebhookEvent.objects.get(payload__data__object__id="in_renewal").status == WebhookEvent.Status.PROCESSED
    assert Payment.objects.get(stripe_object_id="in_renewal").amount == 2500
    assert Entitlement.objects.get().access_until > first_until


def test_a_first_payment_for_less_than_the_price_is_still_flagged(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer(recurring=True))
    session = fake_stripe.paid_session(attempt)
    fake_stripe.invoices[session["invoice"]]["amount_paid"] = 100
    post_event(client, event("invoice.paid", {"id": session["invoice"], "object": "invoice"}))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.FLAGGED
    assert not Entitlement.objects.exists()


def test_an_old_deauthorization_does_not_disconnect_a_newer_connection(client) -> None:
    from billing.selectors import stripe_connected

    factories.stripe_account()
    old = event("account.application.deauthorized", {"id": "ca_platform", "object": "application"})
    old["created"] = int(time.time()) - 3600  # from before this connection
    post_event(client, old)
    assert stripe_connected()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


def test_a_late_still_processing_never_hides_a_failed_payment(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    session = fake_stripe.paid_session(attempt)
    session["payment_status"] = "unpaid"
    post_event(client, event("checkout.session.async_payment_failed", {"id": session["id"], "object": "x"}))
    post_event(client, _completed(session))
    assert CheckoutAttempt.objects.get().status == CheckoutAttempt.Status.FAILED


def test_failed_events_are_swept_again_with_growing_waits_for_three_days(fake_stripe) -> None:
    factories.stripe_account()
    now = timezone.now()

    def failed(event_id: str, *, attempts: int, received_ago: timedelta, last_ago: timedelta) -> WebhookEvent:
        return WebhookEvent.objects.create(
            event_id=event_id,
            type="invoice.paid",
            account="acct_x",
            payload={},
            status=WebhookEvent.Status.FAILED,
            attempts=attempts,
            received_at=now - received_ago,
            last_attempt_at=now - last_ago,
        )

    failed("evt_recent_many_tries", attempts=12, received_ago=timedelta(minutes=20), last_ago=timedelta(minutes=10))
    failed("evt_rested_long_enough", attempts=12, received_ago=timedelta(hours=5), last_ago=timedelta(hours=3))
    failed("evt_just_tried", attempts=1, received_ago=timedelta(minutes=5), last_ago=timedelta(minutes=1))
    failed("evt_first_quick_retry", attempts=2, received_ago=timedelta(minutes=9), last_ago=timedelta(minutes=3))
    failed("evt_too_old", attempts=40, received_ago=timedelta(days=4), last_ago=timedelta(hours=7))
    with TestCase.captureOnCommitCallbacks(execute=False):
        queued = webhooks.webhook_events_sweep(now=now)
    assert queued == 2
    pending = set(WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).values_list("event_id", flat=True))
    assert pending == {"evt_rested_long_enough", "evt_first_quick_retry"}


def test_retrying_a_processed_event_changes_nothing(client, fake_stripe) -> None:
    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    post_event(client, _completed(fake_stripe.paid_session(attempt)))
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.PROCESSED
    assert webhooks.webhook_event_retry(event=row) is False
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED


def test_an_event_processed_twice_records_one_confirmation_and_sends_one_email(client, fake_stripe) -> None:
    from accounts.models import OutboxMessage

    factories.stripe_account()
    attempt = factories.checkout_attempt(factories.paid_offer())
    post_event(client, _completed(fake_stripe.paid_session(attempt)))
    row = WebhookEvent.objects.get()
    # A worker died after fulfilling but before recording it: the event runs again.
    WebhookEvent.objects.filter(pk=row.pk).update(status=WebhookEvent.Status.PENDING)
    with TestCase.captureOnCommitCallbacks(execute=True):
        webhooks.webhook_event_process(event_pk=row.pk)
    assert Payment.objects.count() == 1
    assert OutboxMessage.objects.filter(key__startswith="confirmation:").count() == 1
    assert len(mail.outbox) == 1
