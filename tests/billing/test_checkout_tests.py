"""Test purchases: the creator's signed, single-use test link, its live checklist, the log of
refused webhook deliveries, test purchases kept out of the figures, and Refund and hide.

Stripe is the gateway stand-in of ``tests/billing/helpers.py`` here; the browser tests
(``test_checkout_tests_browser.py``) run the same purchase against the sandbox.
"""

from __future__ import annotations

import html
import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail, signing
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from accounts.models import OutboxMessage, User
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, Payment, StripeAccount, TestPurchase, WebhookEvent, WebhookRefusal
from billing.services import checkout_tests, webhooks
from hubs.selectors import accessible_group_ids
from memberships.models import Entitlement, Offer
from tests import factories
from tests.billing.helpers import FakeStripe, event, post_event, sign

pytestmark = pytest.mark.django_db


class Stripe(FakeStripe):
    """The gateway stand-in, also opening Checkout Sessions (under the ids it later reads back)
    and answering for a charge's balance transaction with Stripe's standard US card fee."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(monkeypatch)
        self.created: list[dict[str, Any]] = []
        self.balances: dict[str, gateway.BalanceTransaction] = {}
        self.paid_at = int(time.time())
        monkeypatch.setattr(gateway, "checkout_session_create", self._create)
        monkeypatch.setattr(
            gateway,
            "price_retrieve",
            lambda *, account_id, price_id: gateway.Price.from_stripe(
                {
                    "id": price_id,
                    "active": True,
                    "unit_amount": Offer.objects.get(stripe_price__price_id=price_id).price_amount,
                    "currency": "usd",
                    "recurring": Offer.objects.get(stripe_price__price_id=price_id).stripe_recurring,
                }
            ),
        )
        monkeypatch.setattr(gateway, "charge_balance_transaction", self._balance)
        monkeypatch.setattr(
            gateway,
            "charge_retrieve",
            lambda *, account_id, charge_id: gateway.Charge.from_stripe(
                next(charge for charge in self.charges.values() if charge["id"] == charge_id)
            ),
        )

    def _create(self, *, account_id: str, params: dict[str, Any], idempotency_key: str) -> Any:
        self.created.append(params)
        session_id = f"cs_test_{len(self.created)}"
        attempt = CheckoutAttempt.objects.get(pk=params["client_reference_id"])
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "client_reference_id": str(attempt.pk),
            "amount_total": attempt.amount,
            "currency": attempt.currency,
            "payment_status": "unpaid",
            "status": "open",
            "mode": "payment",
        }
        return gateway.CheckoutSessionCreated(session_id=session_id, url="https://pay.test/s")

    def pay(self, attempt: CheckoutAttempt) -> dict[str, Any]:
        """The buyer pays on Stripe's page: the session is paid by a payment intent and its charge."""
        attempt.refresh_from_db()
        session = self.sessions[str(attempt.stripe_session_id)]
        intent = f"pi_{attempt.pk.hex[:16]}"
        session.update(
            payment_status="paid", status="complete", payment_intent=intent, customer=f"cus_{attempt.pk.hex[:8]}"
        )
        self.charges[intent] = {
            "id": f"ch_{attempt.pk.hex[:16]}",
            "object": "charge",
            "payment_intent": intent,
            "amount": attempt.amount,
            "amount_refunded": 0,
            "currency": attempt.currency,
            "created": self.paid_at,
            "disputed": False,
            "payment_method_details": {"card": {"last4": "4242"}},
        }
        fee = round(attempt.amount * 0.029) + 30
        self.balances[f"ch_{attempt.pk.hex[:16]}"] = gateway.BalanceTransaction.from_stripe(
            {
                "id": "txn_1",
                "amount": attempt.amount,
                "fee": fee,
                "net": attempt.amount - fee,
                "currency": attempt.currency,
                "fee_details": [{"type": "stripe_fee", "amount": fee}],
                "available_on": self.paid_at + 2 * 86400,
                "status": "pending",
            }
        )
        return session

    def _balance(self, *, account_id: str, charge_id: str) -> gateway.BalanceTransaction | None:
        self.calls.append("balance_transaction")
        return self.balances.get(charge_id)


@pytest.fixture
def stripe(monkeypatch: pytest.MonkeyPatch) -> Stripe:
    return Stripe(monkeypatch)


@pytest.fixture
def draft() -> Offer:
    """A $0.50 draft with a group of its own and a snippet of custom code, on a connected account."""
    factories.stripe_account()
    return factories.paid_offer(
        amount=50, status=Offer.Status.DRAFT, custom_code="<script>fbq('track', 'Purchase')</script>"
    )


def _make_link(client: Client, owner: User, offer: Offer, email: str | None = None) -> tuple[TestPurchase, str]:
    """The creator asks for a test link: returns the test and the link's path."""
    client.force_login(owner)
    page = client.get(f"/dashboard/offers/{offer.pk}/test-purchase/").content.decode()
    suggested = re.search(r'name="email" value="([^"]+)"', page)
    assert suggested is not None
    response = client.post(
        f"/dashboard/offers/{offer.pk}/test-purchase/", {"email": email or suggested.group(1)}, follow=True
    )
    assert response.status_code == 200
    link = re.search(r'<code id="test-link">https?://[^/]+(/checkout/test/[^<]+/)</code>', response.content.decode())
    assert link is not None, response.content.decode()
    client.logout()
    return TestPurchase.objects.latest("pk"), link.group(1)


def _buy(link: str, email: str = "owner+test1@example.com") -> Any:
    """In a private window: the test link's checkout form, posted as a buyer does."""
    return Client().post(f"{link}pay/", {"email": email, "full_name": "Test Buyer"})


def _checklist(client: Client, owner: User, test: TestPurchase) -> dict[str, Any]:
    client.force_login(owner)
    answer = client.get(f"/dashboard/test-purchases/{test.pk}/status/")
    assert answer.status_code == 200
    return dict(answer.json())


def _states(checklist: dict[str, Any]) -> list[str]:
    return [step["state"] for step in checklist["steps"]]


def _paid_through_the_webhook(client: Client, stripe: Stripe, test: TestPurchase) -> CheckoutAttempt:
    attempt = CheckoutAttempt.objects.get(test_purchase=test)
    session = stripe.pay(attempt)
    assert post_event(Client(), event("checkout.session.completed", session)).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == CheckoutAttempt.Status.PAID
    return attempt


# --- The link ------------------------------------------------------------------------------------
def test_the_creator_gets_a_plus_address_of_their_email_one_more_each_time(client, owner, draft) -> None:
    client.force_login(owner)
    first = client.get(f"/dashboard/offers/{draft.pk}/test-purchase/").content.decode()
    assert 'value="owner+test1@example.com"' in first
    _make_link(client, owner, draft)
    client.force_login(owner)
    second = client.get(f"/dashboard/offers/{draft.pk}/test-purchase/").content.decode()
    assert 'value="owner+test2@example.com"' in second
    assert "owner+test1@example.com" in second  # the earlier test, listed


def test_the_creator_may_type_any_address_and_a_bad_one_is_refused(client, owner, draft) -> None:
    test, _link = _make_link(client, owner, draft, email="Casey.Tester@Example.COM")
    assert test.email == "casey.tester@example.com"  # as every address is kept
    client.force_login(owner)
    refused = client.post(f"/dashboard/offers/{draft.pk}/test-purchase/", {"email": "not an address"})
    assert refused.status_code == 400
    assert "Enter a valid email address." in refused.content.decode()
    assert TestPurchase.objects.count() == 1


def test_the_link_opens_a_drafts_checkout_as_a_buyer_sees_it_with_its_custom_code(client, owner, draft) -> None:
    test, link = _make_link(client, owner, draft)
    visitor = Client()
    assert visitor.get(f"/offers/{draft.slug}/checkout/").status_code == 404  # a draft, to anyone else

    page = visitor.get(link)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Inner Circle" in html
    assert "Continue to payment · $0.50" in html
    assert 'value="owner+test1@example.com"' in html
    assert "Test purchase: this is the checkout your buyers see" in html
    assert "Preview" not in html
    assert f'action="{link}pay/"' in html
    assert f'src="{link}custom-code/"' in html
    frame = visitor.get(f"{link}custom-code/", HTTP_SEC_FETCH_DEST="iframe")
    assert frame.status_code == 200
    assert "fbq(&#x27;track&#x27;" not in frame.content.decode()  # served as the creator wrote it
    assert "fbq('track', 'Purchase')" in frame.content.decode()
    assert "sandbox" in frame["Content-Security-Policy"]
    assert not TestPurchase.objects.get(pk=test.pk).used_at  # opening it uses nothing


def test_a_test_link_starts_one_checkout_marked_as_a_test_and_only_one(client, owner, draft, stripe) -> None:
    test, link = _make_link(client, owner, draft)

    first = _buy(link)
    assert first.status_code == 302
    assert first["Location"] == "https://pay.test/s"
    test.refresh_from_db()
    attempt = CheckoutAttempt.objects.get()
    assert test.attempt == attempt
    assert test.used_at is not None
    assert attempt.is_test
    assert (attempt.email, attempt.amount, attempt.stripe_session_id) == ("owner+test1@example.com", 50, "cs_test_1")
    assert "application_fee_amount" not in json.dumps(stripe.created[0])  # a test pays no partner

    again = _buy(link)
    assert again.status_code == 410
    assert "This test link was already used" in again.content.decode()
    assert Client().get(link).status_code == 410
    assert CheckoutAttempt.objects.count() == 1
    with pytest.raises(checkout_tests.CheckoutTestLinkInvalid):
        checkout_tests.checkout_test_link_consume(
            test=test,
            account=StripeAccount.objects.get(),
            email="x@example.com",
            full_name="X",
            browser_key="k",
        )


def test_a_tampered_link_is_refused(client, owner, draft, stripe) -> None:
    _test, link = _make_link(client, owner, draft)
    value = link.rstrip("/").rsplit("/", 1)[-1]
    key, _, signature = value.rpartition(":")
    forged = f"/checkout/test/{key[:-1]}{'A' if key[-1] != 'A' else 'B'}:{signature}/"
    for path in (forged, "/checkout/test/nothing-signed/", f"/checkout/test/{signing.dumps('x')}/"):
        page = Client().get(path)
        assert page.status_code == 404
        assert "This test link is not valid" in page.content.decode()
        assert _buy(path).status_code == 404
    assert not CheckoutAttempt.objects.exists()


def test_an_expired_link_is_refused(client, owner, draft, stripe, monkeypatch) -> None:
    _test, link = _make_link(client, owner, draft)
    monkeypatch.setattr(checkout_tests, "TEST_LINK_MAX_AGE", timedelta(seconds=-1))
    page = Client().get(link)
    assert page.status_code == 410
    assert "This test link has expired" in page.content.decode()
    assert _buy(link).status_code == 410
    assert not CheckoutAttempt.objects.exists()


def test_a_free_offer_has_no_test_purchase(client, owner) -> None:
    offer = factories.offer()
    client.force_login(owner)
    assert "Test purchase" not in client.get(f"/dashboard/offers/{offer.pk}/").content.decode()
    page = client.post(f"/dashboard/offers/{offer.pk}/test-purchase/", {"email": "owner+test1@example.com"})
    assert "there is no payment to test" in page.content.decode()
    assert not TestPurchase.objects.exists()


def test_the_editor_of_every_paid_offer_has_the_button_drafts_included(client, owner, draft) -> None:
    client.force_login(owner)
    page = client.get(f"/dashboard/offers/{draft.pk}/").content.decode()
    assert f'href="/dashboard/offers/{draft.pk}/test-purchase/">Test purchase</a>' in page


def test_canceling_on_stripe_says_the_link_is_used_up(client, owner, draft, stripe) -> None:
    _test, link = _make_link(client, owner, draft)
    _buy(link)
    attempt = CheckoutAttempt.objects.get()
    page = Client().get(f"/checkout/{attempt.pk}/cancel/")
    assert page.status_code == 200
    assert "Test checkout canceled" in page.content.decode()


# --- The refused deliveries ----------------------------------------------------------------------
def test_a_delivery_signed_with_another_secret_is_refused_and_noted_without_its_body(client) -> None:
    body = json.dumps(event("checkout.session.completed", {"id": "cs_secret_stuff"})).encode()
    response = client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret="whsec_x"),
    )
    assert response.status_code == 400
    [refusal] = WebhookRefusal.objects.all()
    assert (refusal.reason, refusal.event_type) == ("mismatch", "checkout.session.completed")
    assert "cs_secret_stuff" not in json.dumps(list(WebhookRefusal.objects.values()), default=str)
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "missing"), ("stale", "stale"), ("garbage", "malformed"), ("t=1,v1=\xe9", "malformed")],
)
def test_each_kind_of_refusal_is_named(client, header, reason) -> None:
    body = json.dumps(event("invoice.paid", {"id": "in_1"})).encode()
    if header == "stale":  # rightly signed, ten minutes ago: a replay, or a clock that is off
        header = sign(body, timestamp=int(time.time()) - 600)
    extra = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    assert client.post("/stripe/webhook/", data=body, content_type="application/json", **extra).status_code == 400
    assert WebhookRefusal.objects.get().reason == reason


def test_an_unreadable_body_is_noted_with_no_type(client) -> None:
    for body in (b"\xff\x00not json", json.dumps({"type": "<script>"}).encode(), b"[" * 5000):
        client.post("/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=x")
    assert list(WebhookRefusal.objects.values_list("event_type", flat=True)) == ["", "", ""]


def test_only_the_latest_refusals_are_kept(client) -> None:
    start = timezone.now()
    for index in range(WebhookRefusal.KEEP + 7):
        webhooks.webhook_refusal_record(
            reason="mismatch",
            body=json.dumps({"type": f"charge.refunded{'x' * (index % 2)}"}).encode(),
            now=start + timedelta(seconds=index),
        )
    kept = list(WebhookRefusal.objects.order_by("received_at"))
    assert len(kept) == WebhookRefusal.KEEP
    assert kept[0].received_at == start + timedelta(seconds=7)
    assert kept[-1].received_at == start + timedelta(seconds=WebhookRefusal.KEEP + 6)


def test_the_stripe_events_page_lists_the_refused_deliveries(client, owner) -> None:
    webhooks.webhook_refusal_record(reason="mismatch", body=b'{"type": "checkout.session.completed"}')
    client.force_login(owner)
    page = client.get("/dashboard/settings/integrations/stripe/events/").content.decode()
    assert "Refused deliveries" in page
    assert "The signature does not match" in page
    assert "checkout.session.completed" in page


def test_events_the_reconciliation_brings_are_marked_as_not_delivered(monkeypatch) -> None:
    factories.stripe_account()
    listed = [event("customer.created", {"id": "cus_1"}, event_id="evt_listed")]
    monkeypatch.setattr(gateway, "events_list", lambda **kwargs: listed)
    webhooks.webhook_events_reconcile()
    assert WebhookEvent.objects.get(event_id="evt_listed").recovered


# --- The checklist -------------------------------------------------------------------------------
def test_the_checklist_follows_the_purchase_to_six_green_steps(client, owner, draft, stripe) -> None:
    test, link = _make_link(client, owner, draft)
    assert _states(_checklist(client, owner, test)) == ["waiting"] * 6

    _buy(link)
    opened = _checklist(client, owner, test)
    assert _states(opened) == ["done", "waiting", "waiting", "waiting", "waiting", "waiting"]
    assert "4242 4242 4242 4242" in opened["steps"][1]["detail"]

    _paid_through_the_webhook(client, stripe, test)
    checklist = _checklist(client, owner, test)
    assert _states(checklist) == ["done"] * 6, checklist
    assert checklist["complete"]
    steps = {step["number"]: step for step in checklist["steps"]}
    assert "Stripe took $0.50 from the card ending 4242" in steps[2]["detail"]
    assert "checkout.session.completed" in steps[3]["detail"]
    assert "owner+test1@example.com has access to Inner Circle" in steps[4]["detail"]
    assert steps[5]["link_text"] == "View the email"
    assert "Charge $0.50 · Stripe's fee $0.31 · net $0.19 on acct_1CreatorTest000" in steps[6]["detail"]
    # Once the rows answer, Stripe is asked only for the balance, and that once.
    calls = len(stripe.calls)
    _checklist(client, owner, test)
    assert stripe.calls[calls:] == []

    client.force_login(owner)
    page = client.get(f"/dashboard/test-purchases/{test.pk}/").content.decode()
    assert 'aria-live="polite"' in page
    assert "Refund and hide" in page
    assert '<noscript><meta http-equiv="refresh"' not in page  # complete: nothing left to wait for


def test_without_javascript_the_waiting_page_reloads_itself(client, owner, draft) -> None:
    test, _link = _make_link(client, owner, draft)
    client.force_login(owner)
    page = client.get(f"/dashboard/test-purchases/{test.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    assert 'data-status-url="/dashboard/test-purchases/' in page
    assert "js/checkout_test.js" in page


def test_the_email_page_shows_the_confirmation_without_a_working_login_link(client, owner, draft, stripe) -> None:
    test, link = _make_link(client, owner, draft)
    _buy(link)
    _paid_through_the_webhook(client, stripe, test)
    [sent] = [message for message in mail.outbox if message.to == ["owner+test1@example.com"]]
    client.force_login(owner)
    page = client.get(f"/dashboard/test-purchases/{test.pk}/email/").content.decode()
    assert html.escape(sent.subject) in page
    assert "Thank you for joining Inner Circle" in page
    assert "[a single-use login link, sent to the buyer only]" in page
    assert "/accounts/login-link/" not in page


def test_stripe_sending_with_another_secret_fails_step_3_with_the_signing_secret(
    client, owner, draft, stripe, settings
) -> None:
    test, link = _make_link(client, owner, draft)
    _buy(link)
    session = stripe.pay(CheckoutAttempt.objects.get())
    settings.STRIPE_WEBHOOK_SECRET = "whsec_another_endpoint"
    body = json.dumps(event("checkout.session.completed", session)).encode()
    refused = Client().post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret="whsec_x"),
    )
    assert refused.status_code == 400

    steps = _checklist(client, owner, test)["steps"]
    assert _states({"steps": steps})[:3] == ["done", "done", "failed"]
    assert "refused" in steps[2]["detail"]
    assert "the signature does not match" in steps[2]["detail"]
    assert "Stripe is sending, but the signature does not match" in steps[2]["fix"]
    assert "STRIPE_WEBHOOK_SECRET" in steps[2]["fix"]
    assert [step["state"] for step in steps[3:]] == ["waiting", "waiting", "done"]  # the money is there all the same


def test_a_payment_no_webhook_reports_names_the_endpoint_to_add(client, owner, draft, stripe, settings) -> None:
    settings.SITE_URL = "https://community.example.com"
    test, link = _make_link(client, owner, draft)
    _buy(link)
    stripe.pay(CheckoutAttempt.objects.get())
    assert _checklist(client, owner, test)["steps"][2]["state"] == "waiting"  # Stripe delivers in seconds

    stripe.paid_at -= 31
    stripe.charges[next(iter(stripe.charges))]["created"] = stripe.paid_at
    from django.core.cache import cache

    cache.clear()
    step = _checklist(client, owner, test)["steps"][2]
    assert step["state"] == "failed"
    assert "no webhook has arrived" in step["detail"]
    assert "https://community.example.com/stripe/webhook/" in step["fix"]


def test_an_account_that_needs_verification_fails_step_1_with_what_to_do(client, owner, draft, monkeypatch) -> None:
    test, link = _make_link(client, owner, draft)

    def refused(**kwargs: Any) -> Any:
        raise gateway.StripeAccountNotReady("account needs verification")

    price = gateway.Price.from_stripe({"id": "price_test", "active": True, "unit_amount": 50, "currency": "usd"})
    monkeypatch.setattr(gateway, "price_retrieve", lambda **kwargs: price)
    monkeypatch.setattr(gateway, "checkout_session_create", refused)
    monkeypatch.setattr(gateway, "account_retrieve", refused)
    assert _buy(link).status_code == 503
    step = _checklist(client, owner, test)["steps"][0]
    assert step["state"] == "failed"
    assert "complete the verification steps" in step["fix"]


def test_an_email_the_mail_server_refuses_fails_step_5_with_the_smtp_settings(client, owner, draft, stripe) -> None:
    test, link = _make_link(client, owner, draft)
    _buy(link)
    _paid_through_the_webhook(client, stripe, test)
    OutboxMessage.objects.filter(key__startswith="confirmation:").update(
        status=OutboxMessage.Status.PENDING, last_error="SMTPAuthenticationError: 535 bad credentials", sent_at=None
    )
    step = _checklist(client, owner, test)["steps"][4]
    assert step["state"] == "failed"
    assert "535 bad credentials" in step["detail"]
    assert "EMAIL_HOST" in step["fix"]


def test_an_event_stuck_unprocessed_says_to_start_the_worker(client, owner, draft, stripe) -> None:
    test, link = _make_link(client, owner, draft)
    _buy(link)
    session = stripe.pay(CheckoutAttempt.objects.get())
    CheckoutAttempt.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    WebhookEvent.objects.create(
        event_id="evt_waiting",
        type="checkout.session.completed",
        account=factories.ACCOUNT_ID,
        payload=event("checkout.session.completed", session),
        received_at=timezone.now() - timedelta(minutes=5),
    )
    steps = _checklist(client, owner, test)["steps"]
    assert steps[2]["state"] == "done"
    assert steps[3]["state"] == "failed"
    assert "celery -A config worker" in steps[3]["fix"]


# --- Out of the figures, then refunded and hidden ---------------------------------------------------
def _a_real_sale(stripe: Stripe, offer: Offer) -> User:
    attempt = factories.checkout_attempt(offer, email="bea@example.com")
    post_event(Client(), event("checkout.session.completed", stripe.paid_session(attempt)))
    return User.objects.get(email="bea@example.com")


def test_test_purchases_stay_out_of_sales_and_buyer_counts(client, owner, stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=50)
    _a_real_sale(stripe, offer)
    test, link = _make_link(client, owner, offer)
    _buy(link)
    attempt = _paid_through_the_webhook(client, stripe, test)

    test_payment = Payment.objects.get(attempt=attempt)
    assert test_payment.is_test
    entitlement = Entitlement.objects.get(user=attempt.user, offer=offer)
    assert entitlement.is_test
    assert entitlement.has_access()  # the test buyer gets in, as a buyer would

    client.force_login(owner)
    sales = client.get("/dashboard/sales/").content.decode()
    sold, _, tests = sales.partition("<h2>Test purchases</h2>")
    assert "bea@example.com" in sold
    assert "owner+test1@example.com" not in sold
    assert "owner+test1@example.com" in tests
    offers = client.get("/dashboard/offers/").content.decode()
    assert re.search(r"<td>\$0\.50</td>\s*<td>1</td>", offers)  # one buyer: Bea
    overview = client.get("/dashboard/").content.decode()
    assert re.search(r'<div class="stat">1</div><div class="muted">members</div>', overview)
    editor = client.get(f"/dashboard/offers/{offer.pk}/").content.decode()
    assert 'data-buyers="1"' in editor


def test_an_existing_account_a_creator_types_stays_counted(client, owner, member, stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=50)
    test, link = _make_link(client, owner, offer, email=member.email)
    _buy(link, email=member.email)
    _paid_through_the_webhook(client, stripe, test)
    client.force_login(owner)
    overview = client.get("/dashboard/").content.decode()
    assert re.search(r'<div class="stat">1</div><div class="muted">members</div>', overview)


def test_refund_and_hide_refunds_in_full_through_the_outbox_and_ends_access(client, owner, stripe) -> None:
    factories.stripe_account()
    group = factories.group("Inner")
    offer = factories.paid_offer(amount=50, groups=[group], refund_policy=Offer.RefundPolicy.KEEP)
    test, link = _make_link(client, owner, offer)
    _buy(link)
    attempt = _paid_through_the_webhook(client, stripe, test)
    buyer = attempt.user
    assert buyer is not None
    assert group.pk in accessible_group_ids(user=buyer)

    client.force_login(owner)
    response = client.post(f"/dashboard/test-purchases/{test.pk}/close/", follow=True)
    assert (
        "The test purchase is hidden from your sales and its buyer no longer has access." in response.content.decode()
    )

    payment = Payment.objects.get(attempt=attempt)
    assert payment.is_test
    assert payment.hidden_at is not None  # kept in the ledger, as a test
    [refund] = OutboxMessage.objects.filter(kind=OutboxMessage.Kind.STRIPE)
    assert refund.key == f"refund:{payment.pk}:test-purchase-{test.pk}-{payment.pk}"
    assert (refund.payload["payment"], refund.payload["amount"]) == (payment.pk, 50)
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.REFUNDED  # whatever the offer's refund policy
    assert group.pk not in accessible_group_ids(user=buyer)
    assert "Test purchase refunded and hidden" in entitlement.changes.first().reason
    assert "owner+test1@example.com" not in client.get("/dashboard/sales/").content.decode()
    checklist = _checklist(client, owner, test)
    assert checklist["closed"]
    assert "Refunded and hidden" in checklist["summary"]

    client.post(f"/dashboard/test-purchases/{test.pk}/close/")  # again: nothing more
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.STRIPE).count() == 1
    assert Client().get(link).status_code == 404  # its link is no more


def test_the_refund_stripe_confirms_later_changes_nothing_more(client, owner, stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=50)
    test, link = _make_link(client, owner, offer)
    _buy(link)
    attempt = _paid_through_the_webhook(client, stripe, test)
    client.force_login(owner)
    client.post(f"/dashboard/test-purchases/{test.pk}/close/")
    changes = Entitlement.objects.get(user=attempt.user).changes.count()

    charge = next(iter(stripe.charges.values()))
    charge["amount_refunded"] = 50
    post_event(Client(), event("charge.refunded", charge))
    payment = Payment.objects.get(attempt=attempt)
    assert payment.amount_refunded == 50
    assert Entitlement.objects.get(user=attempt.user).changes.count() == changes


def test_a_test_not_paid_cannot_be_refunded(client, owner, draft) -> None:
    test, _link = _make_link(client, owner, draft)
    client.force_login(owner)
    response = client.post(f"/dashboard/test-purchases/{test.pk}/close/", follow=True)
    assert "Nothing was paid with this test link yet" in response.content.decode()
    assert TestPurchase.objects.get(pk=test.pk).closed_at is None


def test_the_sales_page_lists_test_purchases_in_a_constant_number_of_queries(
    client, owner, stripe, django_assert_num_queries
) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=50)
    for number in range(3):
        test, link = _make_link(client, owner, offer, email=f"owner+test{number + 1}@example.com")
        _buy(link, email=f"owner+test{number + 1}@example.com")
        _paid_through_the_webhook(client, stripe, test)
    client.force_login(owner)
    # The user; the figures per period, per offer and of tests; the payments; whether test
    # purchases are listed, and those listed apart; the offer filter's choices.
    with django_assert_num_queries(8):
        page = client.get("/dashboard/sales/").content.decode()
    assert page.count(">Refund and hide</button>") == 3


# --- Getting started -------------------------------------------------------------------------------
def test_getting_started_ticks_off_each_step_and_goes_once_all_are_done(client, owner, stripe) -> None:
    client.force_login(owner)
    page = client.get("/dashboard/").content.decode()
    assert "Getting started" in page
    assert page.count('class="done"') == 0

    factories.stripe_account()
    offer = factories.paid_offer(amount=50)  # a published offer, with a group of its own
    page = client.get("/dashboard/").content.decode()
    assert page.count('class="done"') == 3
    assert "Make a test purchase" in page

    test, link = _make_link(client, owner, offer)
    _buy(link)
    _paid_through_the_webhook(client, stripe, test)
    client.force_login(owner)
    assert "Getting started" not in client.get("/dashboard/").content.decode()


def test_closing_a_recurring_test_refunds_it_and_cancels_its_subscription(client, owner, stripe) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=50, recurring=True)
    test, link = _make_link(client, owner, offer)
    _buy(link)
    attempt = CheckoutAttempt.objects.get()
    post_event(Client(), event("checkout.session.completed", stripe.paid_session(attempt)))
    payment = Payment.objects.get(attempt=attempt)
    assert payment.is_test
    assert payment.stripe_subscription_id

    client.force_login(owner)
    client.post(f"/dashboard/test-purchases/{test.pk}/close/")
    writes = dict(OutboxMessage.objects.filter(kind=OutboxMessage.Kind.STRIPE).values_list("key", "payload"))
    assert writes[f"refund:{payment.pk}:test-purchase-{test.pk}-{payment.pk}"]["amount"] == 50
    assert writes[f"cancel:{payment.stripe_subscription_id}"]["subscription"] == payment.stripe_subscription_id
    entitlement = Entitlement.objects.get(offer=offer)
    assert (entitlement.status, entitlement.is_test) == (Entitlement.Status.REFUNDED, True)


def test_a_refusal_that_cannot_be_noted_is_still_a_400(client, monkeypatch) -> None:
    def database_down(**kwargs: Any) -> None:
        raise DatabaseError("the connection is closed")

    monkeypatch.setattr(webhooks, "webhook_refusal_record", database_down)
    response = client.post("/stripe/webhook/", data=b"{}", content_type="application/json")
    assert response.status_code == 400
