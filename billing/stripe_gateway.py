"""The only door to Stripe: every call the platform makes goes through this module.

It builds the official SDK's client (pointed at the offline sandbox when STRIPE_API_BASE is
set), reads Stripe's objects into small typed values (``AccountStatus``, ``Price``,
``CheckoutSession``, ``Subscription``, ``Invoice``, ``PaidObject``), so that no service digs
through Stripe's dictionaries, and turns Stripe's exceptions into the project's own, each with a
message a person can act on. Nothing here touches the database, and nothing may call Stripe
inside an open database transaction (a slow Stripe would hold locks, and a rolled-back
transaction cannot take back what Stripe already did): with
``STRIPE_REFUSE_CALLS_IN_TRANSACTIONS`` (on in DEBUG and in the tests) every call checks it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import stripe
from django.conf import settings
from django.db import connections
from stripe import oauth_error

# How long one call may take. Checkout waits on it, so keep it short; with idempotency keys
# one retry of a dropped connection is safe.
TIMEOUT_SECONDS = 15
NETWORK_RETRIES = 1
PRODUCTION_CONNECT_AUTHORIZE = "https://connect.stripe.com/oauth/authorize"


class StripeGatewayError(Exception):
    """A Stripe call failed. ``user_message`` is safe to show; ``str()`` is for the logs."""

    user_message = "Stripe could not complete the request. Please try again in a few minutes."

    def __init__(self, detail: str = "", *, user_message: str | None = None, code: str = "") -> None:
        super().__init__(detail or self.user_message)
        if user_message:
            self.user_message = user_message
        self.code = code


class StripeUnavailable(StripeGatewayError):
    user_message = (
        "We could not reach Stripe, the payment provider. Nothing was charged. Please try again in a few minutes."
    )


class StripeCardDeclined(StripeGatewayError):
    user_message = "Your card was declined."


class StripeAccountNotReady(StripeGatewayError):
    user_message = (
        "Stripe needs more information before this account can take payments. Open your Stripe dashboard, "
        "complete the verification steps it lists, then try again."
    )


class StripeConfigurationError(StripeGatewayError):
    user_message = "The platform's Stripe keys were refused by Stripe. The site's operator needs to check them."


class StripeOAuthFailed(StripeGatewayError):
    user_message = "Stripe did not accept the connection request. Please start again from Settings > Integrations."


class StripeCalledInTransaction(RuntimeError):
    """Stripe was called inside an open database transaction: a programming error."""


class WebhookSignatureInvalid(Exception):
    """The webhook's Stripe-Signature header is missing, malformed, wrong or too old.

    ``reason`` says which (``billing.models.WebhookRefusal.Reason``): ``missing``, ``malformed``,
    ``stale`` or ``mismatch``, the one a wrong signing secret gives."""

    def __init__(self, detail: str, *, reason: str = "mismatch") -> None:
        super().__init__(detail)
        self.reason = reason


class WebhookPayloadInvalid(Exception):
    """The webhook's body is not a Stripe event in JSON."""


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    livemode: bool
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    display_name: str
    requirements_due: tuple[str, ...]


@dataclass(frozen=True)
class CheckoutSessionCreated:
    session_id: str
    url: str


def _id(value: Any) -> str:
    """A Stripe reference, whether expanded into an object or left as its id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _latest(ends: list[Any]) -> datetime | None:
    values = [end for end in ends if isinstance(end, int)]
    return datetime.fromtimestamp(max(values), tz=UTC) if values else None


@dataclass(frozen=True)
class Price:
    price_id: str
    active: bool
    amount: int | None
    currency: str  # lower case
    # Stripe's ``recurring`` as (interval, interval_count), None for a one-time price.
    recurring: tuple[str, int] | None

    @classmethod
    def from_stripe(cls, price: dict[str, Any]) -> Price:
        recurring = price.get("recurring") or None
        amount = price.get("unit_amount")
        return cls(
            price_id=_id(price.get("id")),
            active=bool(price.get("active")),
            amount=amount if isinstance(amount, int) else None,
            currency=str(price.get("currency", "")).lower(),
            recurring=(
                (str(recurring.get("interval")), int(recurring.get("interval_count") or 1))
                if isinstance(recurring, dict)
                else None
            ),
        )


@dataclass(frozen=True)
class PaidObject:
    """What Stripe says was paid, read from Stripe itself (never from an event's old copy)."""

    stripe_object_id: str
    # ``Payment.Kind``: a one-time payment intent, or a subscription's invoice.
    kind: Literal["one_time", "invoice"]
    amount: int
    currency: str
    customer_id: str = ""
    subscription_id: str = ""
    period_end: datetime | None = None
    # A renewal invoice may be lower than the first price (a coupon, account credit): it is
    # checked by currency, and the amount Stripe collected is recorded.
    is_renewal: bool = False
    period_start: datetime | None = None
    created: datetime | None = None


def _moment(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) and value > 0 else None


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    # The checkout attempt that started it (its metadata, set at checkout), or "".
    checkout_attempt: str
    period_end: datetime | None
    status: str = ""
    customer_id: str = ""
    period_start: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    created: datetime | None = None
    latest_invoice_id: str = ""

    @classmethod
    def from_stripe(cls, subscription: dict[str, Any]) -> Subscription:
        items = (subscription.get("items") or {}).get("data") or []
        ends = [item.get("current_period_end") for item in items]
        ends.append(subscription.get("current_period_end"))
        starts = [item.get("current_period_start") for item in items]
        starts.append(subscription.get("current_period_start"))
        return cls(
            subscription_id=_id(subscription.get("id")),
            checkout_attempt=str((subscription.get("metadata") or {}).get("checkout_attempt") or ""),
            period_end=_latest(ends),
            status=str(subscription.get("status") or ""),
            customer_id=_id(subscription.get("customer")),
            period_start=_latest(starts),
            # A cancellation scheduled for the period's end, by either of Stripe's two fields.
            cancel_at_period_end=bool(subscription.get("cancel_at_period_end") or subscription.get("cancel_at")),
            canceled_at=_moment(subscription.get("canceled_at")),
            ended_at=_moment(subscription.get("ended_at")),
            created=_moment(subscription.get("created")),
            latest_invoice_id=_id(subscription.get("latest_invoice")),
        )


@dataclass(frozen=True)
class Charge:
    """A charge's money state: what was refunded of it, and its dispute."""

    charge_id: str
    payment_intent_id: str
    amount: int
    amount_refunded: int
    currency: str
    card_last4: str
    created: datetime | None
    disputed: bool = False
    # The platform's application fee on the charge, as Stripe took it (a referred sale's
    # commission): its id on the platform's account and its amount in minor units.
    application_fee_id: str = ""
    application_fee_amount: int = 0
    # Stripe's processing fee on the charge, from its balance transaction when it was read
    # expanded (in the balance's currency, which may differ from the charge's).
    stripe_fee: int = 0
    stripe_fee_currency: str = ""

    @classmethod
    def from_stripe(cls, charge: dict[str, Any]) -> Charge:
        card = ((charge.get("payment_method_details") or {}).get("card")) or {}
        txn = charge.get("balance_transaction")
        fees = BalanceTransaction.from_stripe(txn) if isinstance(txn, dict) else None
        return cls(
            charge_id=_id(charge.get("id")),
            payment_intent_id=_id(charge.get("payment_intent")),
            amount=int(charge.get("amount") or 0),
            amount_refunded=int(charge.get("amount_refunded") or 0),
            currency=str(charge.get("currency") or ""),
            card_last4=str(card.get("last4") or "")[:4],
            created=_moment(charge.get("created")),
            disputed=bool(charge.get("disputed")),
            application_fee_id=_id(charge.get("application_fee")),
            application_fee_amount=int(charge.get("application_fee_amount") or 0),
            stripe_fee=fees.stripe_fee if fees else 0,
            stripe_fee_currency=fees.currency if fees else "",
        )


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    charge_id: str
    payment_intent_id: str
    # Stripe's status: warning_needs_response, warning_under_review, warning_closed,
    # needs_response, under_review, won, lost.
    status: str

    @classmethod
    def from_stripe(cls, dispute: dict[str, Any]) -> Dispute:
        return cls(
            dispute_id=_id(dispute.get("id")),
            charge_id=_id(dispute.get("charge")),
            payment_intent_id=_id(dispute.get("payment_intent")),
            status=str(dispute.get("status") or ""),
        )

    @property
    def outcome(self) -> Literal["", "open", "won", "lost"]:
        """``Payment.DisputeStatus``: an inquiry closed without a chargeback counts as no dispute."""
        if self.status == "lost":
            return "lost"
        if self.status == "won":
            return "won"
        if self.status == "warning_closed":
            return ""
        return "open"


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    client_reference_id: str
    payment_status: str
    is_subscription: bool
    amount: int
    currency: str
    customer_id: str
    subscription_id: str
    invoice_id: str
    payment_intent_id: str

    @classmethod
    def from_stripe(cls, session: dict[str, Any]) -> CheckoutSession:
        return cls(
            session_id=_id(session.get("id")),
            client_reference_id=str(session.get("client_reference_id") or ""),
            payment_status=str(session.get("payment_status") or ""),
            is_subscription=session.get("mode") == "subscription",
            amount=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or ""),
            customer_id=_id(session.get("customer")),
            subscription_id=_id(session.get("subscription")),
            invoice_id=_id(session.get("invoice")),
            payment_intent_id=_id(session.get("payment_intent")),
        )

    @property
    def is_paid(self) -> bool:
        return self.payment_status in ("paid", "no_payment_required")

    def paid(self, subscription: Subscription | None = None, invoice: Invoice | None = None) -> PaidObject:
        """The payment this session made (a subscription's first invoice, or a payment intent).

        A subscription's first payment covers its first invoice's period, whenever the session's
        event arrives: the subscription's current period is the first one only until it renews.
        """
        if self.is_subscription:
            return PaidObject(
                stripe_object_id=self.invoice_id or f"{self.subscription_id}:first",
                kind="invoice",
                amount=self.amount,
                currency=self.currency,
                customer_id=self.customer_id,
                subscription_id=self.subscription_id,
                period_end=invoice.period_end if invoice else subscription.period_end if subscription else None,
                period_start=invoice.period_start if invoice else None,
                created=invoice.created if invoice else None,
            )
        return PaidObject(
            stripe_object_id=self.payment_intent_id or self.session_id,
            kind="one_time",
            amount=self.amount,
            currency=self.currency,
            customer_id=self.customer_id,
        )


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    status: str
    subscription_id: str
    amount_paid: int
    currency: str
    customer_id: str
    period_end: datetime | None
    is_renewal: bool
    created: datetime | None = None
    period_start: datetime | None = None

    @classmethod
    def from_stripe(cls, invoice: dict[str, Any]) -> Invoice:
        details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
        lines = (invoice.get("lines") or {}).get("data") or []
        ends = [(line.get("period") or {}).get("end") for line in lines]
        starts = [(line.get("period") or {}).get("start") for line in lines]
        return cls(
            invoice_id=_id(invoice.get("id")),
            status=str(invoice.get("status") or ""),
            subscription_id=_id(details.get("subscription")),
            amount_paid=int(invoice.get("amount_paid") or 0),
            currency=str(invoice.get("currency") or ""),
            customer_id=_id(invoice.get("customer")),
            period_end=_latest(ends),
            is_renewal=invoice.get("billing_reason") == "subscription_cycle",
            created=_moment(invoice.get("created")),
            period_start=_latest(starts),
        )

    def paid(self) -> PaidObject:
        return PaidObject(
            stripe_object_id=self.invoice_id,
            kind="invoice",
            amount=self.amount_paid,
            currency=self.currency,
            customer_id=self.customer_id,
            subscription_id=self.subscription_id,
            period_end=self.period_end,
            is_renewal=self.is_renewal,
            period_start=self.period_start,
            created=self.created,
        )


# --- The client ----------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _client_for(api_key: str, base: str | None, client_id: str) -> Any:
    addresses: Any = {"api": base, "connect": base, "files": base} if base else None
    return stripe.StripeClient(
        api_key=api_key,
        base_addresses=addresses,
        client_id=client_id,
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def client() -> Any:
    """The SDK client for the current settings (tests point STRIPE_API_BASE at the sandbox)."""
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_CONNECT_CLIENT_ID)


T = TypeVar("T")


def _refuse_inside_transaction() -> None:
    """Raise when a database transaction is open, as Django's ``durable=True`` does: the
    blocks a test case wraps every test in do not count."""
    if not settings.STRIPE_REFUSE_CALLS_IN_TRANSACTIONS:
        return
    for connection in connections.all(initialized_only=True):
        if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
            raise StripeCalledInTransaction(
                f"Stripe was called inside an open transaction on the {connection.alias!r} database: call the "
                "gateway first, then hand its result to an atomic service (or queue the call on commit)."
            )


def _call(fn: Callable[[], T]) -> T:
    """Run one SDK call and translate its failures into the project's exceptions."""
    _refuse_inside_transaction()
    try:
        return fn()
    except stripe.CardError as exc:
        raise StripeCardDeclined(str(exc), user_message=exc.user_message or None, code=exc.code or "") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise StripeUnavailable(str(exc)) from exc
    except stripe.AuthenticationError as exc:
        raise StripeConfigurationError(str(exc)) from exc
    except stripe.PermissionError as exc:
        raise StripeAccountNotReady(str(exc), code=exc.code or "") from exc
    except oauth_error.OAuthError as exc:
        raise StripeOAuthFailed(str(exc), code=exc.code or "") from exc
    except stripe.InvalidRequestError as exc:
        code = exc.code or ""
        if code in {"account_invalid", "platform_account_required"} or "verif" in str(exc).lower():
            raise StripeAccountNotReady(str(exc), code=code) from exc
        raise StripeGatewayError(str(exc), code=code) from exc
    except stripe.StripeError as exc:
        raise StripeGatewayError(str(exc), code=getattr(exc, "code", None) or "") from exc


def _plain(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict(for_json=True)
    return result


def _on(account_id: str, idempotency_key: str | None = None) -> dict[str, str]:
    options = {"stripe_account": account_id}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    return options


# --- Connect -------------------------------------------------------------------------------
def oauth_authorize_url(*, state: str, redirect_uri: str, email: str = "") -> str:
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": settings.STRIPE_CONNECT_CLIENT_ID,
        "scope": "read_write",
        "state": state,
        "redirect_uri": redirect_uri,
    }
    if email:
        params["stripe_user[email]"] = email
    base = f"{settings.STRIPE_API_BASE}/oauth/authorize" if settings.STRIPE_API_BASE else PRODUCTION_CONNECT_AUTHORIZE
    return f"{base}?{urlencode(params)}"


def oauth_token(*, code: str) -> str:
    """Exchange an authorization code for the connected account's id."""
    token = _plain(_call(lambda: client().oauth.token({"grant_type": "authorization_code", "code": code})))
    account_id = str(token.get("stripe_user_id") or "")
    if not account_id:
        raise StripeOAuthFailed("the token response carried no stripe_user_id")
    return account_id


def oauth_deauthorize(*, account_id: str) -> None:
    _call(lambda: client().oauth.deauthorize({"stripe_user_id": account_id}))


def account_access_revoked(*, account_id: str) -> bool:
    """Has the connected account taken the platform's access away? Asked of Stripe with the
    platform's own key, so that a forged deauthorization event cannot disconnect an account.

    Stripe answers a revoked account with a 403 (``account_invalid``); any other failure is
    raised as usual, so the event is retried rather than acted on.
    """

    def retrieve() -> bool:
        try:
            client().v1.accounts.retrieve(account_id)
        except stripe.PermissionError:
            return True
        except stripe.InvalidRequestError as exc:
            if exc.code == "account_invalid":
                return True
            raise
        return False

    return _call(retrieve)


def account_retrieve(*, account_id: str) -> AccountStatus:
    account = _plain(_call(lambda: client().v1.accounts.retrieve(account_id)))
    profile = account.get("business_profile") or {}
    dashboard = (account.get("settings") or {}).get("dashboard") or {}
    requirements = account.get("requirements") or {}
    return AccountStatus(
        account_id=account["id"],
        livemode=bool(account.get("livemode", False)),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        display_name=str(dashboard.get("display_name") or profile.get("name") or account.get("email") or ""),
        requirements_due=tuple(requirements.get("currently_due") or ()),
    )


# --- Products and prices -------------------------------------------------------------------
def product_upsert(*, account_id: str, product_id: str, name: str, metadata: dict[str, str], key: str) -> str:
    """Create the product (when ``product_id`` is empty) or rename it; returns its id."""
    if product_id:
        _call(
            lambda: client().v1.products.update(
                product_id, {"name": name, "active": True}, _on(account_id, f"{key}-product-update")
            )
        )
        return product_id
    product = _call(
        lambda: client().v1.products.create({"name": name, "metadata": metadata}, _on(account_id, f"{key}-product"))
    )
    return str(product.id)


def price_retrieve(*, account_id: str, price_id: str) -> Price:
    return Price.from_stripe(_plain(_call(lambda: client().v1.prices.retrieve(price_id, None, _on(account_id)))))


def price_create(
    *,
    account_id: str,
    product_id: str,
    amount: int,
    currency: str,
    recurring: dict[str, int | str] | None,
    metadata: dict[str, str],
    key: str,
) -> str:
    params: dict[str, Any] = {
        "product": product_id,
        "unit_amount": amount,
        "currency": currency,
        "metadata": metadata,
    }
    if recurring:
        params["recurring"] = recurring
    price = _call(lambda: client().v1.prices.create(params, _on(account_id, f"{key}-price")))
    return str(price.id)


def price_archive(*, account_id: str, price_id: str) -> None:
    _call(lambda: client().v1.prices.update(price_id, {"active": False}, _on(account_id)))


# --- Checkout ------------------------------------------------------------------------------
def checkout_session_create(*, account_id: str, params: dict[str, Any], idempotency_key: str) -> CheckoutSessionCreated:
    session = _call(lambda: client().v1.checkout.sessions.create(params, _on(account_id, idempotency_key)))
    return CheckoutSessionCreated(session_id=str(session.id), url=str(session.url))


def checkout_session_retrieve(*, account_id: str, session_id: str) -> CheckoutSession:
    session = _plain(_call(lambda: client().v1.checkout.sessions.retrieve(session_id, None, _on(account_id))))
    return CheckoutSession.from_stripe(session)


def subscription_retrieve(*, account_id: str, subscription_id: str) -> Subscription:
    subscription = _plain(_call(lambda: client().v1.subscriptions.retrieve(subscription_id, None, _on(account_id))))
    return Subscription.from_stripe(subscription)


def invoice_retrieve(*, account_id: str, invoice_id: str) -> Invoice:
    return Invoice.from_stripe(_plain(_call(lambda: client().v1.invoices.retrieve(invoice_id, None, _on(account_id)))))


def subscription_read(*, account_id: str, subscription_id: str) -> tuple[Subscription, Invoice | None]:
    """The subscription and, while a renewal is failing, its latest invoice (for when the
    failure began)."""
    subscription = subscription_retrieve(account_id=account_id, subscription_id=subscription_id)
    invoice = None
    if subscription.status in ("past_due", "unpaid") and subscription.latest_invoice_id:
        invoice = invoice_retrieve(account_id=account_id, invoice_id=subscription.latest_invoice_id)
    return subscription, invoice


def charge_retrieve(*, account_id: str, charge_id: str) -> Charge:
    params = {"expand": ["balance_transaction"]}
    return Charge.from_stripe(_plain(_call(lambda: client().v1.charges.retrieve(charge_id, params, _on(account_id)))))


@dataclass(frozen=True)
class BalanceTransaction:
    """What a charge added to the connected account's balance: the amount, the fees Stripe took
    (its own processing fee, plus the platform's application fee on a referred sale) and the
    net, in the balance's currency."""

    transaction_id: str
    amount: int
    fee: int
    net: int
    currency: str
    stripe_fee: int
    application_fee: int
    available_on: datetime | None
    status: str

    @classmethod
    def from_stripe(cls, txn: dict[str, Any]) -> BalanceTransaction:
        details = [item for item in txn.get("fee_details") or [] if isinstance(item, dict)]
        return cls(
            transaction_id=_id(txn.get("id")),
            amount=int(txn.get("amount") or 0),
            fee=int(txn.get("fee") or 0),
            net=int(txn.get("net") or 0),
            currency=str(txn.get("currency") or ""),
            stripe_fee=sum(int(item.get("amount") or 0) for item in details if item.get("type") == "stripe_fee"),
            application_fee=sum(
                int(item.get("amount") or 0) for item in details if item.get("type") == "application_fee"
            ),
            available_on=_moment(txn.get("available_on")),
            status=str(txn.get("status") or ""),
        )


def charge_balance_transaction(*, account_id: str, charge_id: str) -> BalanceTransaction | None:
    """The balance transaction of a charge on the connected account (None until Stripe has
    recorded one): the charge read with its ``balance_transaction`` expanded."""
    params = {"expand": ["balance_transaction"]}
    charge = _plain(_call(lambda: client().v1.charges.retrieve(charge_id, params, _on(account_id))))
    txn = charge.get("balance_transaction")
    return BalanceTransaction.from_stripe(txn) if isinstance(txn, dict) else None


def payment_intent_charge(*, account_id: str, payment_intent_id: str) -> Charge | None:
    """The payment intent's successful charge, if it has one."""
    params = {"expand": ["latest_charge.balance_transaction"]}
    intent = _plain(_call(lambda: client().v1.payment_intents.retrieve(payment_intent_id, params, _on(account_id))))
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        return Charge.from_stripe(charge)
    return charge_retrieve(account_id=account_id, charge_id=charge) if isinstance(charge, str) and charge else None


def invoice_payment_intent_id(*, account_id: str, invoice_id: str) -> str:
    """The payment intent that paid the invoice ("" if none did), from its invoice payments."""
    payments = _call(lambda: client().v1.invoice_payments.list({"invoice": invoice_id, "limit": 10}, _on(account_id)))
    for payment in payments.data:
        plain = _plain(payment)
        if plain.get("status") == "paid":
            return _id((plain.get("payment") or {}).get("payment_intent"))
    return ""


def refund_charge_id(*, account_id: str, refund_id: str) -> str:
    refund = _plain(_call(lambda: client().v1.refunds.retrieve(refund_id, None, _on(account_id))))
    return _id(refund.get("charge"))


def dispute_retrieve(*, account_id: str, dispute_id: str) -> Dispute:
    return Dispute.from_stripe(_plain(_call(lambda: client().v1.disputes.retrieve(dispute_id, None, _on(account_id)))))


def charge_dispute(*, account_id: str, charge_id: str) -> Dispute | None:
    """The charge's dispute, if it has one (a charge is disputed at most once)."""
    listed = _call(lambda: client().v1.disputes.list({"charge": charge_id, "limit": 1}, _on(account_id)))
    return Dispute.from_stripe(_plain(listed.data[0])) if listed.data else None


def refund_create(
    *,
    account_id: str,
    payment_intent_id: str,
    amount: int,
    idempotency_key: str,
    metadata: dict[str, str],
    refund_application_fee: bool = False,
) -> str:
    """Refund ``amount`` of a payment. With ``refund_application_fee`` Stripe also refunds the
    platform's application fee in the same proportion (a referred sale's commission)."""
    params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata}
    if refund_application_fee:
        params["refund_application_fee"] = True
    refund = _call(lambda: client().v1.refunds.create(params, _on(account_id, idempotency_key)))
    return str(refund.id)


def subscription_cancel(*, account_id: str, subscription_id: str, idempotency_key: str) -> str:
    """Cancel at once. A subscription already canceled counts as done."""
    try:
        subscription = _call(
            lambda: client().v1.subscriptions.cancel(subscription_id, None, _on(account_id, idempotency_key))
        )
    except StripeGatewayError as exc:
        if "canceled" in str(exc).lower():
            return "already canceled"
        raise
    return str(subscription.status)


def subscription_set_cancel_at_period_end(
    *, account_id: str, subscription_id: str, cancel: bool, idempotency_key: str
) -> str:
    params = {"cancel_at_period_end": cancel}
    subscription = _call(
        lambda: client().v1.subscriptions.update(subscription_id, params, _on(account_id, idempotency_key))
    )
    return str(subscription.status)


def subscription_set_application_fee_percent(
    *, account_id: str, subscription_id: str, percent: float, idempotency_key: str
) -> str:
    """Change the platform's fee on a subscription's future invoices (0 stops it)."""
    params = {"application_fee_percent": percent}
    subscription = _call(
        lambda: client().v1.subscriptions.update(subscription_id, params, _on(account_id, idempotency_key))
    )
    return str(subscription.status)


# --- Cards on file (one-click purchases) -----------------------------------------------------
@dataclass(frozen=True)
class SavedCard:
    """A card saved to a customer on the connected account, as the buyer recognises it."""

    payment_method_id: str
    customer_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @classmethod
    def from_stripe(cls, payment_method: dict[str, Any]) -> SavedCard:
        card = payment_method.get("card") or {}
        return cls(
            payment_method_id=_id(payment_method.get("id")),
            customer_id=_id(payment_method.get("customer")),
            brand=str(card.get("display_brand") or card.get("brand") or "card"),
            last4=str(card.get("last4") or "")[:4],
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
        )

    @property
    def label(self) -> str:
        """``Visa •••• 4242``."""
        brand = {"amex": "American Express", "mastercard": "Mastercard"}.get(self.brand, self.brand.title())
        return f"{brand} •••• {self.last4}"

    def expired(self, now: datetime) -> bool:
        return (self.exp_year, self.exp_month) < (now.year, now.month)


def customer_cards(*, account_id: str, customer_id: str) -> list[SavedCard]:
    """The cards saved to a customer, newest first (Stripe's order)."""
    listed = _call(
        lambda: client().v1.customers.payment_methods.list(customer_id, {"type": "card", "limit": 10}, _on(account_id))
    )
    return [SavedCard.from_stripe(_plain(method)) for method in listed.data]


@dataclass(frozen=True)
class PaymentIntent:
    payment_intent_id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    customer_id: str
    created: datetime | None
    # The checkout attempt it pays (its metadata, set by the platform), or "".
    checkout_attempt: str

    @classmethod
    def from_stripe(cls, intent: dict[str, Any]) -> PaymentIntent:
        return cls(
            payment_intent_id=_id(intent.get("id")),
            status=str(intent.get("status") or ""),
            amount=int(intent.get("amount") or 0),
            amount_received=int(intent.get("amount_received") or 0),
            currency=str(intent.get("currency") or ""),
            customer_id=_id(intent.get("customer")),
            created=_moment(intent.get("created")),
            checkout_attempt=str((intent.get("metadata") or {}).get("checkout_attempt") or ""),
        )

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def paid(self) -> PaidObject:
        return PaidObject(
            stripe_object_id=self.payment_intent_id,
            kind="one_time",
            amount=self.amount_received,
            currency=self.currency,
            customer_id=self.customer_id,
            created=self.created,
        )


def payment_intent_retrieve(*, account_id: str, payment_intent_id: str) -> PaymentIntent:
    intent = _plain(_call(lambda: client().v1.payment_intents.retrieve(payment_intent_id, None, _on(account_id))))
    return PaymentIntent.from_stripe(intent)


def payment_intent_charge_saved_card(
    *,
    account_id: str,
    card: SavedCard,
    amount: int,
    currency: str,
    description: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> PaymentIntent:
    """Charge a saved card now, without the buyer (``off_session``): a decline, or a bank that
    asks the buyer to authenticate (code ``authentication_required``), is ``StripeCardDeclined``."""
    params = {
        "amount": amount,
        "currency": currency,
        "customer": card.customer_id,
        "payment_method": card.payment_method_id,
        "confirm": True,
        "off_session": True,
        "description": description,
        "metadata": metadata,
    }
    intent = _call(lambda: client().v1.payment_intents.create(params, _on(account_id, idempotency_key)))
    return PaymentIntent.from_stripe(_plain(intent))


def subscription_create_on_saved_card(
    *, account_id: str, card: SavedCard, price_id: str, metadata: dict[str, str], idempotency_key: str
) -> Subscription:
    """Start a subscription whose first invoice is charged now to a saved card, without the
    buyer; if it cannot be paid Stripe refuses it (``error_if_incomplete``: ``StripeCardDeclined``)."""
    params = {
        "customer": card.customer_id,
        "items": [{"price": price_id}],
        "default_payment_method": card.payment_method_id,
        "off_session": True,
        "payment_behavior": "error_if_incomplete",
        "metadata": metadata,
    }
    subscription = _call(lambda: client().v1.subscriptions.create(params, _on(account_id, idempotency_key)))
    return Subscription.from_stripe(_plain(subscription))


# --- Transfers to partners (the platform's own account: no Stripe-Account header) ---------------
@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    amount: int
    amount_reversed: int
    currency: str
    destination: str

    @classmethod
    def from_stripe(cls, transfer: dict[str, Any]) -> Transfer:
        return cls(
            transfer_id=_id(transfer.get("id")),
            amount=int(transfer.get("amount") or 0),
            amount_reversed=int(transfer.get("amount_reversed") or 0),
            currency=str(transfer.get("currency") or ""),
            destination=_id(transfer.get("destination")),
        )


def transfer_create(
    *,
    amount: int,
    currency: str,
    destination: str,
    transfer_group: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> Transfer:
    params = {
        "amount": amount,
        "currency": currency,
        "destination": destination,
        "transfer_group": transfer_group,
        "metadata": metadata,
    }
    options = {"idempotency_key": idempotency_key}
    return Transfer.from_stripe(_plain(_call(lambda: client().v1.transfers.create(params, options))))


def transfers_in_group(*, transfer_group: str) -> list[Transfer]:
    """The platform's transfers made under ``transfer_group`` (at most a few per group)."""
    listed = _call(lambda: client().v1.transfers.list({"transfer_group": transfer_group, "limit": 10}))
    return [Transfer.from_stripe(_plain(transfer)) for transfer in listed.data]


def transfer_reverse(*, transfer_id: str, amount: int, metadata: dict[str, str], idempotency_key: str) -> Transfer:
    """Take ``amount`` back from a transfer; returns the transfer as it stands afterwards."""
    params = {"amount": amount, "metadata": metadata}
    options = {"idempotency_key": idempotency_key}
    _call(lambda: client().v1.transfers.reversals.create(transfer_id, params, options))
    return Transfer.from_stripe(_plain(_call(lambda: client().v1.transfers.retrieve(transfer_id))))


PORTAL_FEATURES: dict[str, Any] = {
    "payment_method_update": {"enabled": True},
    "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
    "invoice_history": {"enabled": True},
}


PORTAL_CONFIGURATION_MARK = {"created_by": "membership-platform"}


def portal_session_create(*, account_id: str, customer_id: str, return_url: str) -> str:
    """A fresh billing portal session's URL. A connected account needs a portal configuration:
    the platform uses its own (made once, idempotently, the first time), named explicitly, so
    whatever the account's default is, buyers get the features the platform relies on."""
    configurations = _call(
        lambda: client().v1.billing_portal.configurations.list({"active": True, "limit": 100}, _on(account_id))
    )
    ours = [
        _plain(item)
        for item in configurations.data
        if (_plain(item).get("metadata") or {}).get("created_by") == PORTAL_CONFIGURATION_MARK["created_by"]
    ]
    if ours:
        configuration_id = str(ours[0]["id"])
    else:
        created = _call(
            lambda: client().v1.billing_portal.configurations.create(
                {"features": PORTAL_FEATURES, "metadata": PORTAL_CONFIGURATION_MARK},
                _on(account_id, f"portal-configuration-{account_id}"),
            )
        )
        configuration_id = str(created.id)
    session = _call(
        lambda: client().v1.billing_portal.sessions.create(
            {"customer": customer_id, "return_url": return_url, "configuration": configuration_id}, _on(account_id)
        )
    )
    return str(session.url)


def _listed(list_method: Callable[..., Any], params: dict[str, Any], account_id: str, cap: int) -> list[dict[str, Any]]:
    """Up to ``cap`` + 1 objects of a Stripe list on the account, page by page (100 a page),
    under ``_call``'s rules. The one beyond the cap says there were more."""
    params = {**params, "limit": 100}
    return _call(
        lambda: [
            _plain(item) for item in itertools.islice(list_method(params, _on(account_id)).auto_paging_iter(), cap + 1)
        ]
    )


# Stripe's list of events takes at most 20 types at a time.
EVENT_TYPES_PER_LIST = 20


def events_list(*, account_id: str, types: list[str], created_gte: int, cap: int = 1000) -> list[dict[str, Any]]:
    """Recent events on a connected account, newest first: at most ``cap`` for each list of up
    to 20 types (Stripe's limit), so at most ``cap`` times the number of lists."""
    events: dict[str, dict[str, Any]] = {}
    for start in range(0, len(types), EVENT_TYPES_PER_LIST):
        params = {"types": types[start : start + EVENT_TYPES_PER_LIST], "created": {"gte": created_gte}}
        for event in _listed(client().v1.events.list, params, account_id, cap)[:cap]:
            events[str(event.get("id"))] = event
    return sorted(events.values(), key=lambda event: int(event.get("created") or 0), reverse=True)


def subscriptions_list(*, account_id: str, cap: int = 1000) -> tuple[list[Subscription], bool]:
    """The subscriptions on a connected account, canceled ones included, newest first: at most
    ``cap`` of them, and whether there were more."""
    listed = _listed(client().v1.subscriptions.list, {"status": "all"}, account_id, cap)
    return [Subscription.from_stripe(item) for item in listed[:cap]], len(listed) > cap


# --- Webhooks ------------------------------------------------------------------------------
# Limits on what a verified event may hold, so that storing it cannot fail: Stripe's events
# nest a dozen levels at most, its ids are short, and its timestamps are whole seconds.
EVENT_MAX_DEPTH = 64
EVENT_ID_MAX_LENGTH = 255
# 1970 to 9999: what every database and Python's datetime can hold.
EVENT_CREATED_RANGE = range(0, 253_402_300_800)


def webhook_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Check the Stripe-Signature header on the raw body and return the event as a dict.

    Uses the SDK's default tolerance (five minutes) so that old, replayed deliveries fail.
    A correctly signed body is still refused (``WebhookPayloadInvalid``) when it is not an
    event the webhook log can store: nesting too deep, NUL characters or lone surrogates
    (PostgreSQL's text and jsonb refuse them), NaN or infinite numbers, an id too long for its
    column, or a ``created`` that is not a timestamp.
    """
    # A header WSGI decoded as Latin-1 may hold any byte; the SDK's compare_digest raises a
    # TypeError on non-ASCII text instead of saying the signature is wrong.
    if not signature:
        raise WebhookSignatureInvalid("no Stripe-Signature header", reason="missing")
    if not signature.isascii():
        raise WebhookSignatureInvalid("the signature header is not ASCII", reason="malformed")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(str(exc), reason=_signature_problem(str(exc))) from exc
    except UnicodeDecodeError as exc:
        raise WebhookSignatureInvalid(str(exc), reason="malformed") from exc
    try:
        event = json.loads(payload, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadInvalid(str(exc) or type(exc).__name__) from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookPayloadInvalid("not a Stripe event")
    problem = _unstorable(event)
    if problem:
        raise WebhookPayloadInvalid(problem)
    if not 0 < len(event["id"]) <= EVENT_ID_MAX_LENGTH:
        raise WebhookPayloadInvalid(f"the event id is empty or longer than {EVENT_ID_MAX_LENGTH} characters")
    if not isinstance(event.get("account"), str | None):
        raise WebhookPayloadInvalid("the event's account is not an id")
    created = event.get("created")
    if created is not None and (type(created) is not int or created not in EVENT_CREATED_RANGE):
        raise WebhookPayloadInvalid("the event's created is not a timestamp")
    return event


def _signature_problem(message: str) -> str:
    """Which way the SDK found a signature wrong, from its message (it has no codes)."""
    if "tolerance" in message:
        return "stale"  # signed correctly, but long ago: a replay, or a clock that is off
    if "matching the expected signature" in message:
        return "mismatch"  # signed, with another secret
    return "malformed"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _unstorable(value: Any) -> str:
    """Why a parsed JSON value cannot be stored as it is, or "" (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > EVENT_MAX_DEPTH:
            return f"nested deeper than {EVENT_MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "a text holds a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a text is not valid Unicode"
    return ""
