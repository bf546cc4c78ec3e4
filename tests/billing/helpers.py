"""Shared by the billing tests: Stripe-shaped events with a really computed Stripe-Signature,
and a stand-in for the gateway's reads. Rows come from ``tests/factories.py``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from django.conf import settings
from django.test import Client, TestCase

from billing.models import CheckoutAttempt
from memberships.models import Offer
from tests.factories import ACCOUNT_ID


def sign(body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    secret = settings.STRIPE_WEBHOOK_SECRET if secret is None else secret
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(
    type_: str, obj: dict[str, Any], *, account: str | None = ACCOUNT_ID, event_id: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
    if account:
        payload["account"] = account
    return payload


def post_event(client: Client, payload: dict[str, Any] | bytes, **sign_kwargs: Any) -> Any:
    """POST a signed event and run what it queues after commit (as the real commit would)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, **sign_kwargs),
        )


class FakeStripe:
    """The current state of Stripe objects as the gateway would read them back.

    Patches only the gateway (the seam), for tests of the pipeline's own logic; the
    end-to-end tests go through the real SDK to the sandbox instead.
    """

    def __init__(self, monkeypatch: Any) -> None:
        from billing import stripe_gateway as gateway

        self.sessions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        # Charges by payment intent id; a payment intent without one has a plain paid charge.
        self.charges: dict[str, dict[str, Any]] = {}
        self.down = False
        self.calls: list[str] = []

        def lookup(store: dict[str, dict[str, Any]], key: str, name: str) -> dict[str, Any]:
            self.calls.append(name)
            if self.down:
                raise gateway.StripeUnavailable("connection refused")
            if key not in store:
                raise gateway.StripeGatewayError(f"No such {name}: {key}", code="resource_missing")
            return store[key]

        # Stripe's dictionaries, read by the gateway's own parsers as real answers are.
        monkeypatch.setattr(
            gateway,
            "checkout_session_retrieve",
            lambda *, account_id, session_id: gateway.CheckoutSession.from_stripe(
                lookup(self.sessions, session_id, "checkout.session")
            ),
        )
        monkeypatch.setattr(
            gateway,
            "invoice_retrieve",
            lambda *, account_id, invoice_id: gateway.Invoice.from_stripe(lookup(self.invoices, invoice_id, "invoice")),
        )
        monkeypatch.setattr(
            gateway,
            "subscription_retrieve",
            lambda *, account_id, subscription_id: gateway.Subscription.from_stripe(
                lookup(self.subscriptions, subscription_id, "subscription")
            ),
        )

        def charge_of(payment_intent_id: str) -> dict[str, Any]:
            self.calls.append("charge")
            if self.down:
                raise gateway.StripeUnavailable("connection refused")
            return self.charges.get(payment_intent_id) or {
                "id": f"ch_{payment_intent_id}",
                "object": "charge",
                "payment_intent": payment_intent_id,
                "amount": 0,
                "amount_refunded": 0,
                "disputed": False,
                "payment_method_details": {"card": {"last4": "4242"}},
            }

        monkeypatch.setattr(
            gateway,
            "payment_intent_charge",
            lambda *, account_id, payment_intent_id: gateway.Charge.from_stripe(charge_of(payment_intent_id)),
        )
        monkeypatch.setattr(
            gateway, "invoice_payment_intent_id", lambda *, account_id, invoice_id: f"pi_of_{invoice_id}"
        )

    def paid_session(self, attempt: CheckoutAttempt, *, amount: int | None = None) -> dict[str, Any]:
        session_id = f"cs_test_{uuid.uuid4().hex[:16]}"
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "client_reference_id": str(attempt.pk),
            "amount_total": attempt.amount if amount is None else amount,
            "currency": attempt.currency,
            "customer": f"cus_{uuid.uuid4().hex[:12]}",
            "customer_details": {"email": attempt.email, "name": attempt.full_name},
            "payment_status": "paid",
            "status": "complete",
            "mode": "payment",
            "payment_intent": f"pi_{uuid.uuid4().hex[:16]}",
            "subscription": None,
            "invoice": None,
        }
        if attempt.pricing == Offer.Pricing.RECURRING:
            sub_id = f"sub_{uuid.uuid4().hex[:16]}"
            invoice_id = f"in_{uuid.uuid4().hex[:16]}"
            period_end = int(time.time()) + 30 * 86400
            session.update(mode="subscription", payment_intent=None, subscription=sub_id, invoice=invoice_id)
            self.subscriptions[sub_id] = {
                "id": sub_id,
                "object": "subscription",
                "status": "active",
                "metadata": {"checkout_attempt": str(attempt.pk)},
                "items": {"data": [{"current_period_end": period_end, "current_period_start": int(time.time())}]},
            }
            self.invoices[invoice_id] = {
                "id": invoice_id,
                "object": "invoice",
                "status": "paid",
                "amount_paid": session["amount_total"],
                "currency": attempt.currency,
                "customer": session["customer"],
                "billing_reason": "subscription_create",
                "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub_id}},
                "lines": {"data": [{"period": {"start": int(time.time()), "end": period_end}}]},
            }
        self.sessions[session_id] = session
        return session

    def renewal(self, session: dict[str, Any], invoice_id: str, *, period_end: int, amount: int | None = None) -> None:
        """A renewal as Stripe makes it: the subscription moves to its next period and a
        ``subscription_cycle`` invoice for that period is paid."""
        now = int(time.time())
        first = self.invoices[session["invoice"]]
        self.invoices[invoice_id] = {
            **first,
            "id": invoice_id,
            "amount_paid": first["amount_paid"] if amount is None else amount,
            "billing_reason": "subscription_cycle",
            "lines": {"data": [{"period": {"start": now, "end": period_end}}]},
        }
        item = self.subscriptions[session["subscription"]]["items"]["data"][0]
        item.update(current_period_start=now, current_period_end=period_end)
