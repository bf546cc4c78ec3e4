"""A small in-memory Stripe for one buyer and one recurring offer, for the lifecycle's property
test: it lives a subscription's life (purchases, renewals, failures, cancellations, refunds,
disputes, re-purchases) and emits the events Stripe would, each carrying a copy of its object
as it was when the event was made. The gateway's reads are answered from the state as it is
now, through the gateway's own parsers.

The life is built once (``StripeLife.build``) as a list of steps, each with its events and a
copy of Stripe's state just after it; a test then replays the steps, pointing the reads at the
state of the step it has reached.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from billing import stripe_gateway as gateway

DAY = 86_400
PERIOD = 30 * DAY
# Stripe's clock when a life begins (2031-03-01 UTC): far from the real now, on purpose.
EPOCH = 1_930_089_600

Obj = dict[str, Any]


@dataclass
class StripeState:
    """Stripe's objects on the creator's account, by id."""

    sessions: dict[str, Obj] = field(default_factory=dict)
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    disputes: dict[str, Obj] = field(default_factory=dict)

    def find(self, obj: Obj) -> Obj | None:
        """The current version of an object an event carries."""
        stores = {
            "checkout.session": self.sessions,
            "subscription": self.subscriptions,
            "invoice": self.invoices,
            "charge": self.charges,
            "refund": self.refunds,
            "dispute": self.disputes,
        }
        return stores[obj["object"]].get(obj["id"])


@dataclass(frozen=True)
class Step:
    """One thing that happened at Stripe: its words, the events it emitted and the state after it."""

    what: str
    at: int
    events: tuple[Obj, ...]
    state: StripeState


class StripeLife:
    """Builds a life from a list of intents ``(operation, choice)``: the operation is picked
    among those the current state allows (no renewal of a canceled subscription) by its index,
    and the choice picks among its variants (which charge to refund, how much; won or lost)."""

    OPERATIONS = (
        "renew",  # the period ends: paid renewal, or the end of a subscription set to cancel
        "renew_fails",  # the renewal's payment fails: past due, the invoice open
        "retry_fails",  # Stripe's retry of the open invoice fails again
        "recover",  # the open invoice gets paid: active again
        "give_up",  # the retries are spent: canceled or unpaid, as the account is set up
        "cancel_at_period_end",
        "resume",  # the cancellation at period end withdrawn
        "cancel_now",
        "refund",  # part or the rest of some paid charge
        "dispute",  # a paid charge disputed
        "dispute_review",  # an open dispute moves on, still open
        "dispute_close",  # won or lost
        "rebuy",  # a new checkout once the last subscription has ended
    )

    def __init__(self, *, account_id: str, attempts: list[str], amount: int) -> None:
        self.account_id = account_id
        self.attempts = list(attempts)  # checkout attempts still unused, one per purchase
        self.amount = amount
        self.now = EPOCH
        self.state = StripeState()
        self.steps: list[Step] = []
        self._counter = 0
        self._events: list[Obj] = []
        self.customer = self._id("cus")

    @classmethod
    def build(cls, *, account_id: str, attempts: list[str], amount: int, intents: list[tuple[int, int]]) -> list[Step]:
        life = cls(account_id=account_id, attempts=attempts, amount=amount)
        life._step("buy", life._buy)
        for index, choice in intents:
            allowed = [operation for operation in cls.OPERATIONS if life._allowed(operation)]
            operation = allowed[index % len(allowed)]
            life._step(operation, partial(getattr(life, f"_{operation}"), choice))
        return life.steps

    # --- Bookkeeping ---------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_model{self._counter:05d}"

    def _emit(self, type_: str, obj: Obj) -> None:
        self._events.append(
            {
                "id": self._id("evt"),
                "object": "event",
                "api_version": "2026-10-28.endive",
                "account": self.account_id,
                "created": self.now,
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": type_,
            }
        )

    def _step(self, what: str, do: Callable[[], None]) -> None:
        do()
        events, self._events = tuple(self._events), []
        self.steps.append(Step(what=what, at=self.now, events=events, state=copy.deepcopy(self.state)))

    def _latest(self) -> Obj:
        return max(self.state.subscriptions.values(), key=lambda sub: sub["created"])

    def _paid_charges(self) -> list[Obj]:
        return [charge for charge in self.state.charges.values() if charge["status"] == "succeeded"]

    def _allowed(self, operation: str) -> bool:
        sub = self._latest()
        status = sub["status"]
        live = status in ("active", "past_due", "unpaid")
        return {
            "renew": status == "active",
            "renew_fails": status == "active" and not sub["cancel_at_period_end"],
            "retry_fails": status == "past_due",
            "recover": status in ("past_due", "unpaid"),
            "give_up": status == "past_due",
            "cancel_at_period_end": status in ("active", "past_due") and not sub["cancel_at_period_end"],
            "resume": live and sub["cancel_at_period_end"],
            "cancel_now": live,
            "refund": any(charge["amount_refunded"] < charge["amount"] for charge in self._paid_charges()),
            "dispute": any(not charge["disputed"] for charge in self._paid_charges()),
            "dispute_review": any(d["status"] == "needs_response" for d in self.state.disputes.values()),
            "dispute_close": any(
                d["status"] in ("needs_response", "under_review") for d in self.state.disputes.values()
            ),
            "rebuy": status == "canceled" and bool(self.attempts),
        }[operation]

    # --- Money ---------------------------------------------------------------------------
    def _invoice(self, sub: Obj, *, reason: str, start: int, end: int) -> Obj:
        invoice: Obj = {
            "id": self._id("in"),
            "object": "invoice",
            "status": "open",
            "amount_due": self.amount,
            "amount_paid": 0,
            "attempt_count": 0,
            "currency": "usd",
            "customer": self.customer,
            "billing_reason": reason,
            "created": self.now,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub["id"]}},
            "lines": {"data": [{"period": {"start": start, "end": end}}]},
            "payments": [],
        }
        self.state.invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        return invoice

    def _charge_invoice(self, invoice: Obj, *, succeeds: bool) -> None:
        """An attempt to pay the invoice: a payment intent and its charge, as Stripe makes them."""
        invoice["attempt_count"] += 1
        intent_id = self._id("pi")
        charge: Obj = {
            "id": self._id("ch"),
            "object": "charge",
            "status": "succeeded" if succeeds else "failed",
            "paid": succeeds,
            "amount": self.amount,
            "amount_refunded": 0,
            "refunded": False,
            "disputed": False,
            "currency": "usd",
            "created": self.now,
            "payment_intent": intent_id,
            "invoice": invoice["id"],
            "payment_method_details": {"card": {"last4": "4242" if succeeds else "0341"}},
        }
        self.state.charges[charge["id"]] = charge
        self.state.payment_intents[intent_id] = {"id": intent_id, "latest_charge": charge["id"]}
        if succeeds:
            invoice.update(status="paid", amount_paid=self.amount)
            invoice["payments"].append({"status": "paid", "payment": {"payment_intent": intent_id}})

    def _set_period(self, sub: Obj, start: int, end: int) -> None:
        sub["items"]["data"][0].update(current_period_start=start, current_period_end=end)

    def _period_end(self, sub: Obj) -> int:
        return int(sub["items"]["data"][0]["current_period_end"])

    # --- The operations ------------------------------------------------------------------
    def _buy(self) -> None:
        attempt = self.attempts.pop(0)
        self.now += DAY
        sub: Obj = {
            "id": self._id("sub"),
            "object": "subscription",
            "status": "active",
            "customer": self.customer,
            "created": self.now,
            "metadata": {"checkout_attempt": attempt},
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "ended_at": None,
            "latest_invoice": None,
            "items": {"data": [{"current_period_start": self.now, "current_period_end": self.now + PERIOD}]},
        }
        self.state.subscriptions[sub["id"]] = sub
        invoice = self._invoice(sub, reason="subscription_create", start=self.now, end=self.now + PERIOD)
        self._charge_invoice(invoice, succeeds=True)
        session: Obj = {
            "id": self._id("cs"),
            "object": "checkout.session",
            "mode": "subscription",
            "status": "complete",
            "payment_status": "paid",
            "client_reference_id": attempt,
            "amount_total": self.amount,
            "currency": "usd",
            "customer": self.customer,
            "subscription": sub["id"],
            "invoice": invoice["id"],
            "payment_intent": None,
        }
        self.state.sessions[session["id"]] = session
        self._emit("customer.subscription.created", sub)
        self._emit("invoice.paid", invoice)
        self._emit("checkout.session.completed", session)

    def _rebuy(self, choice: int) -> None:
        self._buy()

    def _renew(self, choice: int) -> None:
        sub = self._latest()
        start = self._period_end(sub)
        self.now = start
        if sub["cancel_at_period_end"]:
            sub.update(status="canceled", canceled_at=self.now, ended_at=self.now)
            self._emit("customer.subscription.deleted", sub)
            return
        self._set_period(sub, start, start + PERIOD)
        invoice = self._invoice(sub, reason="subscription_cycle", start=start, end=start + PERIOD)
        self._charge_invoice(invoice, succeeds=True)
        self._emit("customer.subscription.updated", sub)
        self._emit("invoice.paid", invoice)

    def _renew_fails(self, choice: int) -> None:
        sub = self._latest()
        start = self._period_end(sub)
        self.now = start
        self._set_period(sub, start, start + PERIOD)
        invoice = self._invoice(sub, reason="subscription_cycle", start=start, end=start + PERIOD)
        self._charge_invoice(invoice, succeeds=False)
        sub["status"] = "past_due"
        self._emit("customer.subscription.updated", sub)
        self._emit("invoice.payment_failed", invoice)

    def _open_invoice(self) -> Obj:
        return self.state.invoices[self._latest()["latest_invoice"]]

    def _retry_fails(self, choice: int) -> None:
        self.now += (1 + choice % 4) * DAY
        invoice = self._open_invoice()
        self._charge_invoice(invoice, succeeds=False)
        self._emit("invoice.payment_failed", invoice)

    def _recover(self, choice: int) -> None:
        self.now += (1 + choice % 3) * DAY
        sub, invoice = self._latest(), self._open_invoice()
        self._charge_invoice(invoice, succeeds=True)
        sub["status"] = "active"
        self._emit("invoice.paid", invoice)
        self._emit("customer.subscription.updated", sub)

    def _give_up(self, choice: int) -> None:
        self.now += 7 * DAY
        sub = self._latest()
        if choice % 2:
            sub["status"] = "unpaid"
            self._emit("customer.subscription.updated", sub)
        else:
            sub.update(status="canceled", canceled_at=self.now, ended_at=self.now)
            self._emit("customer.subscription.deleted", sub)

    def _cancel_at_period_end(self, choice: int) -> None:
        self.now += 3600 * (1 + choice % 48)
        sub = self._latest()
        sub.update(cancel_at_period_end=True, cancel_at=self._period_end(sub), canceled_at=self.now)
        self._emit("customer.subscription.updated", sub)

    def _resume(self, choice: int) -> None:
        self.now += 3600 * (1 + choice % 48)
        sub = self._latest()
        sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        self._emit("customer.subscription.updated", sub)

    def _cancel_now(self, choice: int) -> None:
        self.now += 3600 * (1 + choice % 48)
        sub = self._latest()
        sub.update(status="canceled", canceled_at=self.now, ended_at=self.now)
        self._emit("customer.subscription.deleted", sub)

    def _refund(self, choice: int) -> None:
        """Refund part of what is left of a paid charge, or all of it (choice decides which charge
        and how much), as the creator does in Stripe's dashboard."""
        self.now += 3600
        charges = [charge for charge in self._paid_charges() if charge["amount_refunded"] < charge["amount"]]
        charge = charges[choice % len(charges)]
        left = charge["amount"] - charge["amount_refunded"]
        # Half of what is left first, so that a charge is often refunded in several parts.
        amount = (max(1, left // 2), left, 1)[choice % 3]
        refund: Obj = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "status": "succeeded",
            "created": self.now,
        }
        self.state.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("charge.refunded", charge)
        self._emit("refund.created", refund)

    def _dispute(self, choice: int) -> None:
        self.now += 3600
        charges = [charge for charge in self._paid_charges() if not charge["disputed"]]
        charge = charges[choice % len(charges)]
        dispute: Obj = {
            "id": self._id("dp"),
            "object": "dispute",
            "amount": charge["amount"],
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "status": "needs_response",
            "reason": "fraudulent",
            "created": self.now,
        }
        self.state.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        self._emit("charge.dispute.created", dispute)

    def _disputes_in(self, *statuses: str) -> list[Obj]:
        return [dispute for dispute in self.state.disputes.values() if dispute["status"] in statuses]

    def _dispute_review(self, choice: int) -> None:
        self.now += DAY
        disputes = self._disputes_in("needs_response")
        dispute = disputes[choice % len(disputes)]
        dispute["status"] = "under_review"
        self._emit("charge.dispute.updated", dispute)

    def _dispute_close(self, choice: int) -> None:
        self.now += 2 * DAY
        disputes = self._disputes_in("needs_response", "under_review")
        dispute = disputes[choice % len(disputes)]
        dispute["status"] = "won" if choice % 2 else "lost"
        self._emit("charge.dispute.closed", dispute)


class StripeReads:
    """Answers the gateway's reads from the state of the step a test has reached.

    The answers go through the gateway's own parsers, and each read first checks, as the real
    gateway does, that no database transaction is open.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state = StripeState()  # a test sets the state of the step it has reached
        patches: dict[str, Callable[..., Any]] = {
            "checkout_session_retrieve": lambda *, account_id, session_id: gateway.CheckoutSession.from_stripe(
                self._get("sessions", session_id)
            ),
            "subscription_retrieve": lambda *, account_id, subscription_id: gateway.Subscription.from_stripe(
                self._get("subscriptions", subscription_id)
            ),
            "invoice_retrieve": lambda *, account_id, invoice_id: gateway.Invoice.from_stripe(
                self._get("invoices", invoice_id)
            ),
            "invoice_payment_intent_id": self._invoice_payment_intent_id,
            "payment_intent_charge": self._payment_intent_charge,
            "charge_retrieve": lambda *, account_id, charge_id: gateway.Charge.from_stripe(
                self._get("charges", charge_id)
            ),
            "charge_dispute": self._charge_dispute,
            "dispute_retrieve": lambda *, account_id, dispute_id: gateway.Dispute.from_stripe(
                self._get("disputes", dispute_id)
            ),
            "refund_charge_id": lambda *, account_id, refund_id: str(self._get("refunds", refund_id)["charge"]),
        }
        for name, function in patches.items():
            monkeypatch.setattr(gateway, name, function)

    def _get(self, store: str, object_id: str) -> Obj:
        gateway._refuse_inside_transaction()
        found: dict[str, Obj] = getattr(self.state, store)
        if object_id not in found:
            raise gateway.StripeGatewayError(f"No such {store}: {object_id}", code="resource_missing")
        return copy.deepcopy(found[object_id])

    def _invoice_payment_intent_id(self, *, account_id: str, invoice_id: str) -> str:
        for payment in self._get("invoices", invoice_id)["payments"]:
            if payment["status"] == "paid":
                return str(payment["payment"]["payment_intent"])
        return ""

    def _payment_intent_charge(self, *, account_id: str, payment_intent_id: str) -> gateway.Charge | None:
        intent = self._get("payment_intents", payment_intent_id)
        return gateway.Charge.from_stripe(self._get("charges", intent["latest_charge"]))

    def _charge_dispute(self, *, account_id: str, charge_id: str) -> gateway.Dispute | None:
        gateway._refuse_inside_transaction()
        disputes = [dispute for dispute in self.state.disputes.values() if dispute["charge"] == charge_id]
        return gateway.Dispute.from_stripe(copy.deepcopy(disputes[0])) if disputes else None
