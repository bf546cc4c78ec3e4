"""What happens inside the sandbox's Stripe: accounts, payments, subscriptions, the clock.

Every method here runs with the store's lock held (the server takes it around each request)
and records the events Stripe would send in ``outbox``; the server hands them to the webhook
deliverer once the request's changes are saved.
"""

from __future__ import annotations

import calendar
import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stripe_sandbox.shapes import empty_address, list_object, shape
from stripe_sandbox.store import (
    EVENT_RETENTION_SECONDS,
    JSON,
    PLATFORM,
    PLATFORM_ACCOUNT_ID,
    Store,
    StripeError,
    new_id,
    not_found,
)

API_VERSION = "2026-10-28.endive"
DAY = 24 * 60 * 60

# Failed renewals are retried this many seconds after the renewal date; when the last retry
# fails the subscription is canceled (or marked unpaid, per ``after_failed_retries``).
RETRY_SCHEDULE = (3 * DAY, 5 * DAY, 7 * DAY)

# The smallest amount Stripe accepts per currency, in minor units.
MINIMUM_AMOUNT = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50, "nzd": 50}

# Stripe's standard processing fee for a card payment, by the charge's currency: a percentage
# of the amount plus a fixed part in minor units, as Stripe's pricing pages list them for
# cards of the account's own region (US: 2.9% + 30¢). Every card brand pays the same here.
CARD_FEES: dict[str, tuple[Decimal, int]] = {
    "usd": (Decimal("2.9"), 30),
    "cad": (Decimal("2.9"), 30),
    "eur": (Decimal("1.5"), 25),
    "gbp": (Decimal("1.5"), 20),
    "aud": (Decimal("1.7"), 30),
    "nzd": (Decimal("2.65"), 30),
    "chf": (Decimal("2.9"), 30),
    "sgd": (Decimal("3.4"), 50),
    "jpy": (Decimal("3.6"), 0),
}
OTHER_CARD_FEE = (Decimal("2.9"), 30)


def card_fee(amount: int, currency: str) -> int:
    """Stripe's processing fee on a card charge of ``amount`` minor units, rounded to the unit."""
    percent, fixed = CARD_FEES.get(currency.lower(), OTHER_CARD_FEE)
    fee = (Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP) + fixed
    return min(int(fee), amount)


@dataclass(frozen=True)
class Card:
    """How a test card number behaves."""

    brand: str
    decline_code: str | None = None  # declined at checkout
    message: str | None = None
    fails_off_session: bool = False  # attaches and pays now, fails later (renewals)
    # The bank asks the cardholder to authenticate: "always", or "unless_set_up" (not once the
    # card was saved for off-session use). The hosted pages stand for the authentication the
    # cardholder completes there; a charge without them (off-session) fails.
    authenticates: str | None = None


# How often, at most, requests catch up with real time (``Sandbox.catch_up``).
CATCH_UP_EVERY_SECONDS = 1.0

DECLINED = "Your card was declined."
TEST_CARDS: dict[str, Card] = {
    "4242424242424242": Card("visa"),
    "4000056655665556": Card("visa"),
    "5555555555554444": Card("mastercard"),
    "378282246310005": Card("amex"),
    "4000000000000002": Card("visa", "generic_decline", DECLINED),
    "4000000000009995": Card("visa", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": Card("visa", "expired_card", "Your card has expired."),
    "4000000000000341": Card("visa", fails_off_session=True),
    "4000002500003155": Card("visa", authenticates="unless_set_up"),
    "4000002760003184": Card("visa", authenticates="always"),
}
AUTHENTICATION_REQUIRED = "Your card was declined. This transaction requires authentication."
NON_TEST_CARD = Card(
    "visa",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
)


def card_for(number: str) -> Card:
    card = TEST_CARDS.get(number)
    if card:
        return card
    brand = "mastercard" if number.startswith("5") else "amex" if number[:2] in ("34", "37") else "visa"
    return Card(brand, NON_TEST_CARD.decline_code, NON_TEST_CARD.message)


def add_interval(start: int, interval: str, count: int) -> int:
    """``start`` moved on by ``count`` intervals; months keep the day, clamped to the month's end."""
    if interval == "day":
        return start + count * DAY
    if interval == "week":
        return start + count * 7 * DAY
    moment = datetime.fromtimestamp(start, UTC)
    months = count * (12 if interval == "year" else 1)
    year, month0 = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return int(moment.replace(year=year, month=month0 + 1, day=day).timestamp())


def format_amount(amount: int, currency: str) -> str:
    zero_decimal = currency.lower() in ("jpy", "krw", "vnd", "clp", "isk", "ugx", "xof", "xaf")
    symbols = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "jpy": "¥", "nzd": "NZ$", "chf": "CHF "}
    symbol = symbols.get(currency.lower(), currency.upper() + " ")
    if zero_decimal:
        return f"{symbol}{amount:,}"
    return f"{symbol}{amount // 100:,}.{amount % 100:02d}"


def describe_interval(recurring: JSON | None) -> str:
    if not recurring:
        return ""
    count = int(recurring["interval_count"])
    interval = recurring["interval"]
    return f"per {interval}" if count == 1 else f"every {count} {interval}s"


class Sandbox:
    def __init__(self, store: Store, *, public_url: str, client_id: str) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")
        self.client_id = client_id
        self.outbox: list[str] = []  # event ids made by the current request
        self.request_info: JSON = {"id": None, "idempotency_key": None}
        self._caught_up: tuple[float, int] | None = None  # (monotonic time, clock offset) of the last catch-up
        self.ensure_platform()

    # --- Basics ---------------------------------------------------------------------------
    @property
    def state(self) -> JSON:
        return self.store.state

    def now(self) -> int:
        return self.store.now()

    def ensure_platform(self) -> None:
        if self.store.get(PLATFORM_ACCOUNT_ID) is None:
            account = self._account_shape(
                PLATFORM_ACCOUNT_ID, name="Sandbox platform", email="platform@example.com", verified=True
            )
            self.store.put(account, PLATFORM)

    def get(self, object_id: str, owner: str, kind: str, noun: str | None = None, param: str = "id") -> JSON:
        obj = self.store.get(object_id, owner)
        if obj is None or obj.get("object") != kind:
            raise not_found(noun or kind, object_id, param)
        return obj

    def emit(
        self, event_type: str, obj: JSON, owner: str, *, previous: JSON | None = None, at: int | None = None
    ) -> JSON:
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event = shape(
            "event",
            id=new_id("evt", 24),
            api_version=API_VERSION,
            created=at if at is not None else self.now(),
            data=data,
            pending_webhooks=1,
            request=dict(self.request_info),
            type=event_type,
        )
        if owner != PLATFORM:
            event = {"id": event["id"], "object": "event", "account": owner, **event}
        self.store.put(event, owner)
        if obj.get("id") in self.state["objects"]:
            self.store.touch(obj["id"])  # an event about an object says it changed
        self.state["events"].append(event["id"])
        self.store.pending_add(event["id"])
        self.outbox.append(event["id"])
        return event

    # --- Accounts and Connect OAuth -------------------------------------------------------
    def _account_shape(self, account_id: str, *, name: str, email: str, verified: bool) -> JSON:
        account = shape("account", id=account_id, created=self.now(), email=email or None)
        account["business_profile"]["name"] = name or None
        account["settings"]["dashboard"]["display_name"] = name or None
        account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
        self._set_verified(account, verified)
        return account

    @staticmethod
    def _set_verified(account: JSON, verified: bool) -> None:
        account["charges_enabled"] = verified
        account["payouts_enabled"] = verified
        account["details_submitted"] = verified
        account["capabilities"] = {
            "card_payments": "active" if verified else "inactive",
            "transfers": "active" if verified else "inactive",
        }
        requirements = account["requirements"]
        if verified:
            requirements.update(currently_due=[], eventually_due=[], past_due=[], disabled_reason=None)
        else:
            due = [
                "business_profile.product_description",
                "business_profile.support_phone",
                "business_profile.url",
                "external_account",
                "tos_acceptance.date",
                "tos_acceptance.ip",
            ]
            requirements.update(
                currently_due=due, eventually_due=due, past_due=[], disabled_reason="requirements.past_due"
            )

    def account_create(self, *, name: str, email: str, needs_verification: bool = False) -> JSON:
        account_id = new_id("acct_1", 15)
        account = self._account_shape(account_id, name=name, email=email, verified=not needs_verification)
        self.store.put(account, PLATFORM)
        self.state["accounts"][account_id] = {"connected": False}
        return account

    def accounts(self) -> list[JSON]:
        return [self.store.get(account_id) or {} for account_id in self.state["accounts"]]

    def account_update(self, account_id: str, changes: JSON) -> JSON:
        account = self.connected_or_known(account_id)
        before = copy.deepcopy(account)
        if "verified" in changes:
            self._set_verified(account, bool(changes["verified"]))
        for key in ("charges_enabled", "payouts_enabled", "details_submitted"):
            if key in changes:
                account[key] = bool(changes[key])
        if "payouts_enabled" in changes:  # a restricted account cannot receive transfers either
            account["capabilities"]["transfers"] = "active" if account["payouts_enabled"] else "inactive"
        previous = {key: before[key] for key in account if before.get(key) != account[key]}
        if previous and self.state["accounts"][account_id]["connected"]:
            self.emit("account.updated", account, account_id, previous=previous)
        return account

    def connected_or_known(self, account_id: str) -> JSON:
        if account_id not in self.state["accounts"]:
            raise not_found("account", account_id)
        account = self.store.get(account_id)
        assert account is not None
        return account

    def is_connected(self, account_id: str) -> bool:
        return bool(self.state["accounts"].get(account_id, {}).get("connected"))

    def oauth_code_create(self, account_id: str) -> str:
        self.connected_or_known(account_id)
        code = new_id("ac", 32)
        self.state["oauth_codes"][code] = {"account": account_id, "used": False, "created": self.now()}
        return code

    def oauth_token(self, params: JSON) -> JSON:
        grant_type = params.get("grant_type")
        if grant_type != "authorization_code":
            raise StripeError(
                f"Unsupported grant type: {grant_type}", extra={"oauth": "unsupported_grant_type"}, status=400
            )
        code = str(params.get("code") or "")
        grant = self.state["oauth_codes"].get(code)
        if grant is None:
            raise StripeError(f"Authorization code does not exist: {code}", extra={"oauth": "invalid_grant"})
        if grant["used"] or self.now() - int(grant["created"]) > 5 * 60:
            self._disconnect(grant["account"])
            raise StripeError(
                "This authorization code has already been used. All tokens issued with this code have been revoked.",
                extra={"oauth": "invalid_grant"},
            )
        grant["used"] = True
        account_id = grant["account"]
        self.state["accounts"][account_id]["connected"] = True
        self.emit("account.application.authorized", self._application(), account_id)
        token = new_id("sk_test_", 32)
        self.state["access_tokens"][token] = account_id
        return {
            "access_token": token,
            "livemode": False,
            "refresh_token": new_id("rt", 32),
            "scope": "read_write",
            "stripe_publishable_key": new_id("pk_test_", 32),
            "stripe_user_id": account_id,
            "token_type": "bearer",
        }

    def oauth_deauthorize(self, params: JSON) -> JSON:
        if params.get("client_id") != self.client_id:
            raise StripeError(f"No such application: '{params.get('client_id')}'", extra={"oauth": "invalid_client"})
        account_id = str(params.get("stripe_user_id") or "")
        if not self.is_connected(account_id):
            raise StripeError(
                f"This application is not connected to stripe account {account_id}, or that account does not exist.",
                extra={"oauth": "invalid_client"},
            )
        self._disconnect(account_id)
        return {"stripe_user_id": account_id}

    def _disconnect(self, account_id: str) -> None:
        if not self.is_connected(account_id):
            return
        # Its access tokens stay known so that using one is refused as revoked.
        self.state["accounts"][account_id]["connected"] = False
        self.emit("account.application.deauthorized", self._application(), account_id)

    def _application(self) -> JSON:
        return {"id": self.client_id, "object": "application", "name": "Sandbox platform"}

    # --- Products and prices --------------------------------------------------------------
    def product_create(self, owner: str, params: JSON) -> JSON:
        now = self.now()
        product_id = params.get("id") or new_id("prod", 14)
        if self.store.get(product_id) is not None:
            raise StripeError(f"Product already exists: '{product_id}'", code="resource_already_exists", param="id")
        product = shape(
            "product",
            id=product_id,
            name=params["name"],
            active=params.get("active", True),
            created=now,
            updated=now,
            description=params.get("description"),
            images=params.get("images", []),
            metadata=params.get("metadata", {}),
            url=params.get("url"),
            statement_descriptor=params.get("statement_descriptor"),
            unit_label=params.get("unit_label"),
            type="service",
            shippable=None,
        )
        self.store.put(product, owner)
        self.emit("product.created", product, owner)
        return product

    def product_update(self, owner: str, product_id: str, params: JSON) -> JSON:
        product = self.get(product_id, owner, "product")
        if params.get("default_price"):
            price = self.get(params["default_price"], owner, "price", param="default_price")
            if price["product"] != product_id:
                raise StripeError("The default price must belong to this product.", param="default_price")
        return self._update(product, owner, params, "product.updated", stamp=True)

    def price_create(self, owner: str, params: JSON) -> JSON:
        if "product_data" in params:
            product = self.product_create(owner, {"name": params["product_data"]["name"], **params["product_data"]})
        else:
            product = self.get(params["product"], owner, "product", param="product")
        recurring = params.get("recurring")
        price = shape(
            "price",
            id=new_id("price_1", 23),
            active=params.get("active", True),
            created=self.now(),
            currency=params["currency"],
            lookup_key=params.get("lookup_key"),
            metadata=params.get("metadata", {}),
            nickname=params.get("nickname"),
            product=product["id"],
            recurring=(
                {
                    "interval": recurring["interval"],
                    "interval_count": recurring.get("interval_count", 1),
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                }
                if recurring
                else None
            ),
            tax_behavior=params.get("tax_behavior", "unspecified"),
            type="recurring" if recurring else "one_time",
            unit_amount=params["unit_amount"],
            unit_amount_decimal=str(params["unit_amount"]),
        )
        self.store.put(price, owner)
        self.emit("price.created", price, owner)
        return price

    def price_update(self, owner: str, price_id: str, params: JSON) -> JSON:
        price = self.get(price_id, owner, "price")
        return self._update(price, owner, params, "price.updated")

    def _update(self, obj: JSON, owner: str, params: JSON, event_type: str, *, stamp: bool = False) -> JSON:
        previous: JSON = {}
        for key, value in params.items():
            if key == "metadata":
                merged = merge_metadata(obj.get("metadata") or {}, value)
                if merged != obj.get("metadata"):
                    previous["metadata"] = obj.get("metadata")
                    obj["metadata"] = merged
            elif obj.get(key) != value:
                previous[key] = obj.get(key)
                obj[key] = value
        if previous:
            if stamp:
                obj["updated"] = self.now()
            self.emit(event_type, obj, owner, previous=previous)
        return obj

    # --- Customers ------------------------------------------------------------------------
    def customer_create(self, owner: str, params: JSON, *, at: int | None = None) -> JSON:
        customer = shape(
            "customer",
            id=new_id("cus", 14),
            created=at if at is not None else self.now(),
            email=params.get("email"),
            name=params.get("name"),
            description=params.get("description"),
            phone=params.get("phone"),
            metadata=params.get("metadata", {}),
            invoice_prefix=new_id("x", 8)[2:].upper(),
        )
        self.store.put(customer, owner)
        self.emit("customer.created", customer, owner, at=at)
        return customer

    def customer_update(self, owner: str, customer_id: str, params: JSON) -> JSON:
        customer = self.get(customer_id, owner, "customer")
        changes = dict(params)
        if "invoice_settings" in changes:
            settings = {**customer["invoice_settings"], **changes.pop("invoice_settings")}
            changes["invoice_settings"] = settings
        return self._update(customer, owner, changes, "customer.updated")

    # --- Checkout Sessions ----------------------------------------------------------------
    def checkout_session_create(self, owner: str, params: JSON) -> JSON:
        now = self.now()
        if owner != PLATFORM:
            account = self.store.get(owner) or {}
            if not account.get("charges_enabled"):
                raise StripeError(
                    f"Your account ({owner}) cannot currently make charges: it still needs verification. "
                    "Complete the requirements in your Stripe dashboard.",
                    code="account_invalid",
                )
        mode = params["mode"]
        items: list[JSON] = []
        currency: str | None = None
        total = 0
        for index, line in enumerate(params["line_items"]):
            param = f"line_items[{index}][price]"
            price = self.store.get(line["price"], owner)
            if price is None or price.get("object") != "price":
                raise not_found("price", line["price"], param)
            if not price["active"]:
                raise StripeError(
                    "The price specified is inactive. This field only accepts active prices.", param=param
                )
            if mode == "payment" and price["type"] == "recurring":
                raise StripeError(
                    "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                    "mode or use only one-time prices.",
                    param=param,
                )
            if currency and price["currency"] != currency:
                raise StripeError("All prices in a Checkout Session must use the same currency.", param=param)
            currency = price["currency"]
            product = self.store.get(price["product"]) or {}
            amount = int(price["unit_amount"]) * int(line["quantity"])
            total += amount
            items.append(
                shape(
                    "item",
                    id=new_id("li_1", 23),
                    amount_subtotal=amount,
                    amount_total=amount,
                    currency=price["currency"],
                    description=product.get("name"),
                    price=copy.deepcopy(price),
                    quantity=int(line["quantity"]),
                )
            )
        if mode == "subscription":
            if not any(item["price"]["type"] == "recurring" for item in items):
                raise StripeError(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                    param="line_items",
                )
            if any(item["price"]["type"] != "recurring" for item in items):
                # Stripe would bill one-time prices on the first invoice; the sandbox does not model it.
                raise StripeError(
                    "The Stripe sandbox only accepts recurring prices in `subscription` mode.", param="line_items"
                )
            intervals = {
                (item["price"]["recurring"]["interval"], item["price"]["recurring"]["interval_count"]) for item in items
            }
            if len(intervals) > 1:
                raise StripeError(
                    "Checkout does not support multiple prices with different billing intervals.", param="line_items"
                )
        assert currency is not None
        minimum = MINIMUM_AMOUNT.get(currency, 50)
        if total < minimum:
            raise StripeError(
                f"The Checkout Session's total amount due must add up to at least {format_amount(minimum, currency)} "
                f"{currency}",
                param="line_items",
            )
        customer_id = params.get("customer")
        customer_email = params.get("customer_email")
        customer: JSON = {}
        if customer_id:
            customer = self.get(customer_id, owner, "customer", param="customer")
            customer_email = None
        payment_intent_data = params.get("payment_intent_data") or {}
        subscription_data = params.get("subscription_data") or {}
        fee_amount = payment_intent_data.get("application_fee_amount")
        fee_percent = subscription_data.get("application_fee_percent")
        if (fee_amount is not None or fee_percent is not None) and owner == PLATFORM:
            raise StripeError(
                "Can only apply an application fee when the request is made on behalf of another account "
                "(using an OAuth key or the Stripe-Account header).",
                param="payment_intent_data[application_fee_amount]"
                if fee_amount is not None
                else "subscription_data[application_fee_percent]",
            )
        if fee_amount is not None and fee_amount > total:
            raise StripeError(
                "The application fee amount cannot be greater than the total amount.",
                param="payment_intent_data[application_fee_amount]",
            )
        expires_at = params.get("expires_at", now + DAY)
        if expires_at > now + DAY:
            raise StripeError(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        if expires_at < now + 30 * 60:
            raise StripeError(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        session_id = new_id("cs_test_a1", 54)
        session = shape(
            "checkout.session",
            id=session_id,
            amount_subtotal=total,
            amount_total=total,
            cancel_url=params.get("cancel_url"),
            client_reference_id=params.get("client_reference_id"),
            created=now,
            currency=currency,
            customer=customer_id,
            customer_creation="always" if mode == "payment" and not customer_id else None,
            customer_email=customer_email,
            expires_at=expires_at,
            locale=params.get("locale"),
            metadata=params.get("metadata", {}),
            mode=mode,
            payment_method_types=["card"],
            payment_status="unpaid",
            status="open",
            submit_type=params.get("submit_type"),
            success_url=params.get("success_url"),
            ui_mode="hosted_page",
            url=f"{self.public_url}/c/pay/{session_id}",
        )
        if customer_id:
            session["customer_details"] = {
                "address": None,
                "email": customer.get("email"),
                "name": customer.get("name"),
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
                "business_name": None,
                "individual_name": None,
            }
        self.store.put(session, owner)
        self.store.extras(session_id).update(
            line_items=items,
            payment_intent_data=payment_intent_data,
            subscription_data=subscription_data,
        )
        return session

    def checkout_saves_card(self, session_id: str) -> bool:
        """Whether paying the session saves the card to the customer (see ``checkout_pay``)."""
        session = self.store.get(session_id) or {}
        extras = self.store.extras(session_id)
        return session.get("mode") == "subscription" or bool(
            (extras.get("payment_intent_data") or {}).get("setup_future_usage")
        )

    def checkout_line_items(self, session_id: str) -> list[JSON]:
        items: list[JSON] = self.store.extras(session_id).get("line_items", [])
        return items

    def checkout_session_expire(self, owner: str, session_id: str, *, at: int | None = None) -> JSON:
        session = self.get(session_id, owner, "checkout.session", noun="checkout.session")
        if session["status"] != "open":
            raise StripeError(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This session has a status of '
                f'"{session["status"]}".',
                param="session",
            )
        session["status"] = "expired"
        session["url"] = None
        self.emit("checkout.session.expired", session, owner, at=at)
        return session

    def checkout_pay(
        self, session_id: str, *, email: str, name: str, number: str, exp_month: int, exp_year: int
    ) -> tuple[JSON, str | None]:
        """Pay an open session with a card. Returns the session and the decline message, if any."""
        owner = self.store.owner_of(session_id)
        session = self.store.get(session_id)
        if owner is None or session is None or session.get("object") != "checkout.session":
            raise not_found("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeError(f"This Checkout Session is {session['status']}.", code="checkout_session_not_open")
        card = card_for(number)
        extras = self.store.extras(session_id)
        items = extras["line_items"]
        pm = self._payment_method(owner, number=number, card=card, exp_month=exp_month, exp_year=exp_year)
        pm["billing_details"].update(email=email, name=name or None)
        if card.decline_code:
            # Declined: no customer or subscription is made and the session stays open for
            # another card. In payment mode the session keeps its PaymentIntent, as Stripe's does.
            pi = self._session_payment_intent(owner, session, customer=session.get("customer"))
            self._attempt(owner, pi, pm, card, receipt_email=email, off_session=False)
            return session, card.message
        now = self.now()
        if session.get("customer"):
            customer = self.get(session["customer"], owner, "customer")
        else:
            customer = self.customer_create(owner, {"email": email, "name": name or None})
        # As on Stripe, the card is saved to the customer only when asked: always for a
        # subscription (its renewals are charged off-session), in payment mode only with
        # ``payment_intent_data[setup_future_usage]``.
        usage = (
            "off_session"
            if session["mode"] == "subscription"
            else extras["payment_intent_data"].get("setup_future_usage")
        )
        if usage:
            self._card_save(owner, pm, customer["id"], usage=usage)
        details: JSON = {
            "address": empty_address(),
            "email": email,
            "name": name or None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
            "business_name": None,
            "individual_name": None,
        }
        if session["mode"] == "payment":
            pi = self._session_payment_intent(owner, session, customer=customer["id"])
            self._attempt(owner, pi, pm, card, receipt_email=email, off_session=False)
        else:
            subscription, invoice = self._subscription_start(
                owner,
                customer=customer,
                pm=pm,
                items=items,
                data=extras["subscription_data"],
                currency=str(session["currency"]),
                now=now,
            )
            session["subscription"] = subscription["id"]
            session["invoice"] = invoice["id"]
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer["id"],
            customer_details=details,
            url=None,
        )
        self.emit("checkout.session.completed", session, owner)
        return session, None

    def _session_payment_intent(self, owner: str, session: JSON, *, customer: str | None) -> JSON:
        """The session's PaymentIntent: made at the first attempt (payment mode), reused after."""
        if session["mode"] == "payment" and session.get("payment_intent"):
            pi = self.get(session["payment_intent"], owner, "payment_intent")
            pi["customer"] = customer
            return pi
        pid = self.store.extras(session["id"])["payment_intent_data"]
        pi = self._payment_intent(
            owner,
            amount=int(session["amount_total"]),
            currency=str(session["currency"]),
            customer=customer,
            description=pid.get("description"),
            fee_amount=pid.get("application_fee_amount"),
            metadata=pid.get("metadata", {}),
        )
        if session["mode"] == "payment":
            session["payment_intent"] = pi["id"]
            pi["setup_future_usage"] = pid.get("setup_future_usage")
        return pi

    # --- Payments -------------------------------------------------------------------------
    def _card_save(self, owner: str, pm: JSON, customer_id: str, *, usage: str) -> None:
        """Attach a card the cardholder just used to the customer, set up for ``usage``
        (``off_session`` or ``on_session``): what a card that authenticates unless set up needs."""
        pm["customer"] = customer_id
        self.store.extras(pm["id"])["set_up_for"] = usage
        self.emit("payment_method.attached", pm, owner)

    def _needs_authentication(self, pm: JSON, card: Card) -> bool:
        """Whether the bank asks the cardholder to authenticate a charge made without them."""
        if card.authenticates == "always":
            return True
        return card.authenticates == "unless_set_up" and self.store.extras(pm["id"]).get("set_up_for") != "off_session"

    def _payment_method(self, owner: str, *, number: str, card: Card, exp_month: int, exp_year: int) -> JSON:
        pm = shape("payment_method", id=new_id("pm_1", 23), created=self.now(), customer=None, type="card")
        pm["billing_details"] = {
            "address": empty_address(),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        }
        pm["card"].update(
            brand=card.brand,
            display_brand=card.brand,
            exp_month=exp_month,
            exp_year=exp_year,
            fingerprint=new_id("x", 16)[2:],
            last4=number[-4:],
            networks={"available": [card.brand], "preferred": None},
            wallet=None,
        )
        self.store.put(pm, owner)
        # Renewals need to know how the card behaves; only test numbers are kept, never others.
        self.store.extras(pm["id"])["test_card"] = number if number in TEST_CARDS else None
        return pm

    def _payment_intent(
        self,
        owner: str,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        description: str | None,
        fee_amount: int | None,
        metadata: JSON,
        at: int | None = None,
    ) -> JSON:
        pi_id = new_id("pi_3", 23)
        pi = shape(
            "payment_intent",
            id=pi_id,
            amount=amount,
            amount_received=0,
            application_fee_amount=fee_amount,
            client_secret=f"{pi_id}_secret_{new_id('x', 25)[2:]}",
            created=at if at is not None else self.now(),
            currency=currency,
            customer=customer,
            description=description,
            metadata=metadata,
            status="requires_payment_method",
            payment_method_types=["card"],
        )
        self.store.put(pi, owner)
        self.emit("payment_intent.created", pi, owner, at=at)
        return pi

    def _attempt(
        self,
        owner: str,
        pi: JSON,
        pm: JSON,
        card: Card,
        *,
        receipt_email: str | None,
        off_session: bool,
        at: int | None = None,
    ) -> JSON:
        """Charge ``pm`` for ``pi``: a succeeded or failed charge, and their events."""
        at = at if at is not None else self.now()
        decline = card.decline_code or ("generic_decline" if off_session and card.fails_off_session else None)
        message = card.message or DECLINED
        # Without the cardholder there to authenticate, Stripe's error is its own code.
        code = "card_declined"
        if not decline and off_session and self._needs_authentication(pm, card):
            decline = code = "authentication_required"
            message = AUTHENTICATION_REQUIRED
        charge = shape(
            "charge",
            id=new_id("ch_3", 23),
            amount=pi["amount"],
            amount_captured=0 if decline else pi["amount"],
            amount_refunded=0,
            application_fee=None,
            application_fee_amount=None if decline else pi["application_fee_amount"],
            balance_transaction=None,
            billing_details=copy.deepcopy(pm["billing_details"]),
            captured=not decline,
            created=at,
            currency=pi["currency"],
            customer=pi["customer"],
            description=pi["description"],
            disputed=False,
            failure_code=code if decline else None,
            failure_message=message if decline else None,
            metadata=copy.deepcopy(pi["metadata"]),
            paid=not decline,
            payment_intent=pi["id"],
            payment_method=pm["id"],
            receipt_email=receipt_email,
            refunded=False,
            status="failed" if decline else "succeeded",
        )
        charge["refunds"] = list_object([], f"/v1/charges/{charge['id']}/refunds")
        details = charge["payment_method_details"]["card"]
        details.update(
            brand=card.brand,
            network=card.brand,
            exp_month=pm["card"]["exp_month"],
            exp_year=pm["card"]["exp_year"],
            fingerprint=pm["card"]["fingerprint"],
            last4=pm["card"]["last4"],
            amount_authorized=None if decline else pi["amount"],
            wallet=None,
            overcapture={"maximum_amount_capturable": pi["amount"], "status": "unavailable"},
        )
        if decline:
            charge["outcome"].update(
                network_status="declined_by_network",
                reason=decline,
                seller_message="The bank did not return any further details with this decline.",
                type="issuer_declined",
            )
        self.store.put(charge, owner)
        self.store.extras(pm["id"])["used"] = True
        previous_status = pi["status"]
        pi["payment_method"] = pm["id"]
        pi["latest_charge"] = charge["id"]
        if decline:
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {
                "charge": charge["id"],
                "code": code,
                "decline_code": decline,
                "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
                "message": message,
                "payment_method": copy.deepcopy(pm),
                "type": "card_error",
            }
            self.emit("charge.failed", charge, owner, at=at)
            self.emit("payment_intent.payment_failed", pi, owner, at=at)
            return charge
        # On a direct charge the connected account's balance pays Stripe's fee and the
        # platform's application fee, if any: both are in the transaction's fee.
        fee_details = [
            {
                "amount": card_fee(pi["amount"], pi["currency"]),
                "application": None,
                "currency": pi["currency"],
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if pi["application_fee_amount"] and owner != PLATFORM:
            fee_details.append(
                {
                    "amount": pi["application_fee_amount"],
                    "application": self.client_id,
                    "currency": pi["currency"],
                    "description": "Application fee",
                    "type": "application_fee",
                }
            )
        fee_total = min(sum(int(item["amount"]) for item in fee_details), pi["amount"])
        txn = shape(
            "balance_transaction",
            id=new_id("txn_3", 23),
            amount=pi["amount"],
            available_on=at + 2 * DAY,
            created=at,
            currency=pi["currency"],
            fee=fee_total,
            fee_details=fee_details,
            net=pi["amount"] - fee_total,
            reporting_category="charge",
            source=charge["id"],
            status="pending",
            type="charge",
        )
        self.store.put(txn, owner)
        charge["balance_transaction"] = txn["id"]
        if pi["application_fee_amount"] and owner != PLATFORM:
            fee = shape(
                "application_fee",
                id=new_id("fee_1", 23),
                account=owner,
                amount=pi["application_fee_amount"],
                amount_refunded=0,
                application=self.client_id,
                balance_transaction=None,
                charge=charge["id"],
                created=at,
                currency=pi["currency"],
                fee_source={"charge": charge["id"], "type": "charge"},
                refunded=False,
            )
            fee["refunds"] = list_object([], f"/v1/application_fees/{fee['id']}/refunds")
            self.store.put(fee, PLATFORM)
            charge["application_fee"] = fee["id"]
            self.emit("application_fee.created", fee, PLATFORM, at=at)
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
        self.emit("charge.succeeded", charge, owner, at=at)
        self.emit("payment_intent.succeeded", pi, owner, previous={"status": previous_status}, at=at)
        return charge

    def payment_intent_create(self, owner: str, params: JSON) -> JSON:
        customer = params.get("customer")
        if customer:
            self.get(customer, owner, "customer", param="customer")
        pm = self._customer_payment_method(owner, params.get("payment_method"), customer)
        if params.get("application_fee_amount") is not None and owner == PLATFORM:
            raise StripeError(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment "
                "(using an OAuth key or Stripe-Account header).",
                param="application_fee_amount",
            )
        pi = self._payment_intent(
            owner,
            amount=params["amount"],
            currency=params["currency"],
            customer=customer,
            description=params.get("description"),
            fee_amount=params.get("application_fee_amount"),
            metadata=params.get("metadata", {}),
        )
        pi["receipt_email"] = params.get("receipt_email")
        if pm is not None:
            pi.update(payment_method=pm["id"], status="requires_confirmation")
        if params.get("confirm"):
            return self.payment_intent_confirm(owner, pi["id"], {"off_session": params.get("off_session", False)})
        return pi

    def payment_intent_confirm(self, owner: str, pi_id: str, params: JSON) -> JSON:
        pi = self.get(pi_id, owner, "payment_intent")
        if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise StripeError(
                f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}.",
                code="payment_intent_unexpected_state",
            )
        pm = self._customer_payment_method(owner, params.get("payment_method") or pi["payment_method"], pi["customer"])
        if pm is None:
            raise StripeError(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        number = self.store.extras(pm["id"]).get("test_card") or ""
        card = card_for(number)
        off_session = bool(params.get("off_session"))
        if not off_session and card.authenticates and not card.decline_code:
            # On-session, the cardholder authenticates in the browser (Stripe.js) before any charge.
            previous = pi["status"]
            pi.update(
                payment_method=pm["id"],
                status="requires_action",
                next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}},
            )
            self.emit("payment_intent.requires_action", pi, owner, previous={"status": previous})
            return pi
        charge = self._attempt(owner, pi, pm, card, receipt_email=pi.get("receipt_email"), off_session=off_session)
        if charge["status"] != "succeeded":
            error = pi["last_payment_error"]
            raise StripeError(
                error["message"],
                status=402,
                type="card_error",
                code=error["code"],
                extra={
                    "decline_code": error["decline_code"],
                    "charge": charge["id"],
                    "doc_url": error["doc_url"],
                    "payment_intent": copy.deepcopy(pi),
                    "payment_method": copy.deepcopy(pm),
                },
                keep_changes=True,
            )
        return pi

    def _customer_payment_method(self, owner: str, pm_id: str | None, customer: str | None) -> JSON | None:
        if not pm_id:
            return None
        pm = self.get(pm_id, owner, "payment_method", param="payment_method")
        if pm["customer"] is None and self.store.extras(pm_id).get("used"):
            raise StripeError(
                "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, "
                "shared with a connected account without Customer attachment, or was detached from a Customer. It "
                "may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.",
                param="payment_method",
            )
        if customer and pm["customer"] != customer:
            raise StripeError(
                f"The provided PaymentMethod {pm_id} does not belong to the customer {customer}.",
                param="payment_method",
            )
        return pm

    # --- Subscriptions and invoices -------------------------------------------------------
    def _subscription_start(
        self, owner: str, *, customer: JSON, pm: JSON, items: list[JSON], data: JSON, currency: str, now: int
    ) -> tuple[JSON, JSON]:
        """A subscription and its first invoice, charged now. ``items``: ``{"price", "quantity"}``."""
        recurring = next(item["price"]["recurring"] for item in items if item["price"]["type"] == "recurring")
        period_end = add_interval(now, recurring["interval"], int(recurring["interval_count"]))
        sub_id = new_id("sub_1", 23)
        sub_items = []
        for item in items:
            price = item["price"]
            sub_item = shape(
                "subscription_item",
                id=new_id("si", 14),
                created=now,
                current_period_start=now,
                current_period_end=period_end,
                discounts=[],
                metadata={},
                price=copy.deepcopy(price),
                plan=plan_from_price(price),
                quantity=item["quantity"],
                subscription=sub_id,
                tax_rates=[],
            )
            sub_items.append(sub_item)
        fee_percent = data.get("application_fee_percent")
        subscription = shape(
            "subscription",
            id=sub_id,
            application=self.client_id if owner != PLATFORM else None,
            application_fee_percent=float(fee_percent) if fee_percent is not None else None,
            billing_cycle_anchor=now,
            collection_method="charge_automatically",
            created=now,
            currency=currency,
            customer=customer["id"],
            default_payment_method=pm["id"],
            description=data.get("description"),
            items=list_object(sub_items, f"/v1/subscription_items?subscription={sub_id}"),
            latest_invoice=None,
            metadata=data.get("metadata", {}),
            start_date=now,
            status="incomplete",
        )
        subscription["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        self.store.put(subscription, owner)
        self.store.extras(sub_id).update(anchor=now, periods=0, failed_since=None, retries=0)
        self.emit("customer.subscription.created", subscription, owner)
        invoice = self._invoice_create(owner, subscription, "subscription_create", now, now, now)
        if self._invoice_pay(owner, invoice, subscription, now, off_session=bool(data.get("off_session"))):
            subscription["status"] = "active"
            self.emit("customer.subscription.updated", subscription, owner, previous={"status": "incomplete"})
        return subscription, invoice

    def subscription_create(self, owner: str, params: JSON) -> JSON:
        """A subscription charged at once to a card on file (Stripe's default ``allow_incomplete``:
        a decline leaves it ``incomplete``; ``error_if_incomplete`` makes the decline a 402)."""
        customer = self.get(params["customer"], owner, "customer", param="customer")
        pm = self._customer_payment_method(owner, params.get("default_payment_method"), customer["id"])
        if pm is None:
            raise StripeError(
                "This customer has no attached payment source or default payment method.",
                param="default_payment_method",
            )
        items: list[JSON] = []
        for index, line in enumerate(params["items"]):
            price = self.get(line["price"], owner, "price", param=f"items[{index}][price]")
            if price["type"] != "recurring" or not price["active"]:
                raise StripeError("The price must be an active recurring price.", param=f"items[{index}][price]")
            items.append({"price": price, "quantity": int(line.get("quantity", 1))})
        intervals = {(i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"]) for i in items}
        currencies = {i["price"]["currency"] for i in items}
        if len(intervals) > 1 or len(currencies) > 1:
            raise StripeError("All prices of a subscription must share one interval and currency.", param="items")
        if params.get("application_fee_percent") is not None and owner == PLATFORM:
            raise StripeError(
                "Can only apply an application_fee_percent when the request is made on behalf of another account.",
                param="application_fee_percent",
            )
        subscription, invoice = self._subscription_start(
            owner,
            customer=customer,
            pm=pm,
            items=items,
            data=params,
            currency=currencies.pop(),
            now=self.now(),
        )
        if subscription["status"] == "incomplete" and params.get("payment_behavior") == "error_if_incomplete":
            pi = self.store.get(self.invoice_payments(invoice["id"])[0]["payment"]["payment_intent"]) or {}
            error = pi["last_payment_error"]
            raise StripeError(
                error["message"],
                status=402,
                type="card_error",
                code=error["code"],
                extra={"decline_code": error["decline_code"], "charge": error["charge"], "doc_url": error["doc_url"]},
                keep_changes=True,
            )
        return subscription

    def _invoice_create(
        self, owner: str, subscription: JSON, reason: str, period_start: int, period_end: int, at: int
    ) -> JSON:
        customer = self.store.get(subscription["customer"]) or {}
        account = self.store.get(owner if owner != PLATFORM else PLATFORM_ACCOUNT_ID) or {}
        invoice_id = new_id("in_1", 23)
        lines = []
        total = 0
        for sub_item in subscription["items"]["data"]:
            price = sub_item["price"]
            product = self.store.get(price["product"]) or {}
            amount = int(price["unit_amount"]) * int(sub_item["quantity"])
            total += amount
            lines.append(
                shape(
                    "line_item",
                    id=new_id("il_1", 23),
                    amount=amount,
                    currency=price["currency"],
                    description=(
                        f"{sub_item['quantity']} × {product.get('name')} "  # noqa: RUF001 (Stripe's own wording)
                        f"(at {format_amount(int(price['unit_amount']), price['currency'])} "
                        f"/ {price['recurring']['interval']})"
                    ),
                    invoice=invoice_id,
                    metadata={},
                    parent={
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": subscription["id"],
                            "subscription_item": sub_item["id"],
                        },
                        "type": "subscription_item_details",
                    },
                    period={"start": sub_item["current_period_start"], "end": sub_item["current_period_end"]},
                    pricing={
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    quantity=sub_item["quantity"],
                    subscription=subscription["id"],
                    subtotal=amount,
                )
            )
        self.state["invoice_sequence"] += 1
        invoice = shape(
            "invoice",
            id=invoice_id,
            account_name=account.get("business_profile", {}).get("name"),
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            attempt_count=0,
            attempted=False,
            auto_advance=True,
            billing_reason=reason,
            created=at,
            currency=subscription["currency"],
            customer=subscription["customer"],
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            effective_at=None,
            lines=list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
            metadata={},
            number=f"{customer.get('invoice_prefix') or 'SANDBOX'}-{self.state['invoice_sequence']:04d}",
            parent={
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
                "type": "subscription_details",
            },
            period_end=period_end,
            period_start=period_start,
            status="draft",
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            total_discount_amounts=[],
            total_taxes=[],
        )
        self.store.put(invoice, owner)
        subscription["latest_invoice"] = invoice_id
        self.emit("invoice.created", invoice, owner, at=at)
        invoice["status"] = "open"
        invoice["effective_at"] = at
        invoice["status_transitions"]["finalized_at"] = at
        invoice["hosted_invoice_url"] = None
        self.emit("invoice.finalized", invoice, owner, previous={"status": "draft"}, at=at)
        return invoice

    def invoice_payments(self, invoice_id: str) -> list[JSON]:
        payments: list[JSON] = self.store.extras(invoice_id).get("payments", [])
        return payments

    def _invoice_pay(
        self, owner: str, invoice: JSON, subscription: JSON, at: int, *, off_session: bool = False
    ) -> bool:
        """Charge the subscription's card for the invoice. True when it was paid."""
        amount = int(invoice["amount_due"])
        percent = subscription.get("application_fee_percent")
        fee = (
            int((Decimal(amount) * Decimal(str(percent)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            if percent
            else None
        )
        description = (
            "Subscription creation" if invoice["billing_reason"] == "subscription_create" else "Subscription update"
        )
        pi = self._payment_intent(
            owner,
            amount=amount,
            currency=invoice["currency"],
            customer=invoice["customer"],
            description=description,
            fee_amount=fee,
            metadata={},
            at=at,
        )
        pm = self.store.get(subscription["default_payment_method"]) or {}
        number = self.store.extras(pm.get("id", "")).get("test_card") or ""
        charge = self._attempt(owner, pi, pm, card_for(number), receipt_email=None, off_session=off_session, at=at)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        paid: bool = charge["status"] == "succeeded"
        payment = shape(
            "invoice_payment",
            id=new_id("inpay_1", 23),
            amount_paid=amount if paid else None,
            amount_requested=amount,
            created=at,
            currency=invoice["currency"],
            invoice=invoice["id"],
            is_default=True,
            livemode=False,
            payment={"payment_intent": pi["id"], "type": "payment_intent"},
            status="paid" if paid else "open",
            status_transitions={"canceled_at": None, "paid_at": at if paid else None},
        )
        # Stripe sends an invoice's payments only when asked (``expand[]=payments``).
        self.store.extras(invoice["id"])["payments"] = [payment]
        if paid:
            invoice.update(amount_paid=amount, amount_remaining=0, status="paid", next_payment_attempt=None)
            invoice["status_transitions"]["paid_at"] = at
            self.emit("invoice.paid", invoice, owner, previous={"status": "open"}, at=at)
            self.emit("invoice.payment_succeeded", invoice, owner, at=at)
        else:
            self.emit("invoice.payment_failed", invoice, owner, at=at)
            if pi["last_payment_error"]["code"] == "authentication_required":
                self.emit("invoice.payment_action_required", invoice, owner, at=at)
        return paid

    def customer_card_update(
        self, owner: str, customer_id: str, *, number: str, exp_month: int, exp_year: int, name: str
    ) -> str | None:
        """The billing portal's *Update card*: the new card becomes the default of the customer and
        their subscriptions, and an unpaid renewal is charged to it at once. Returns a decline
        message when the card is refused."""
        customer = self.get(customer_id, owner, "customer")
        card = card_for(number)
        if card.decline_code:
            return card.message
        pm = self._payment_method(owner, number=number, card=card, exp_month=exp_month, exp_year=exp_year)
        pm["billing_details"].update(email=customer.get("email"), name=name or None)
        self._card_save(owner, pm, customer_id, usage="off_session")
        self.customer_update(owner, customer_id, {"invoice_settings": {"default_payment_method": pm["id"]}})
        now = self.now()
        for subscription in self.store.find("subscription", owner):
            if subscription["customer"] != customer_id or subscription["status"] in ("canceled", "incomplete_expired"):
                continue
            previous: JSON = {"default_payment_method": subscription["default_payment_method"]}
            subscription["default_payment_method"] = pm["id"]
            invoice = self.store.get(subscription["latest_invoice"] or "") or {}
            unpaid = subscription["status"] != "active" and invoice.get("status") == "open"
            if unpaid and self._invoice_pay(owner, invoice, subscription, now, off_session=True):
                previous["status"] = subscription["status"]
                subscription["status"] = "active"
                self.store.extras(subscription["id"]).update(failed_since=None, retries=0)
            self.emit("customer.subscription.updated", subscription, owner, previous=previous)
        return None

    def subscription_update(self, owner: str, sub_id: str, params: JSON) -> JSON:
        subscription = self.get(sub_id, owner, "subscription")
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param="cancel_at_period_end" if "cancel_at_period_end" in params else None,
            )
        changes = dict(params)
        if "cancel_at_period_end" in changes:
            cancel = bool(changes["cancel_at_period_end"])
            period_end = subscription["items"]["data"][0]["current_period_end"]
            changes["cancel_at"] = period_end if cancel else None
            changes["canceled_at"] = self.now() if cancel else None
        if "cancellation_details" in changes:
            changes["cancellation_details"] = {
                **subscription["cancellation_details"],
                **changes["cancellation_details"],
            }
        return self._update(subscription, owner, changes, "customer.subscription.updated")

    def subscription_cancel(
        self, owner: str, sub_id: str, *, at: int | None = None, reason: str = "cancellation_requested"
    ) -> JSON:
        subscription = self.get(sub_id, owner, "subscription")
        if subscription["status"] == "canceled":
            raise StripeError(
                f"A canceled subscription can only update its cancellation_details and metadata. {sub_id} is canceled."
            )
        at = at if at is not None else self.now()
        subscription.update(status="canceled", canceled_at=subscription.get("canceled_at") or at, ended_at=at)
        subscription["cancellation_details"]["reason"] = reason
        self.emit("customer.subscription.deleted", subscription, owner, at=at)
        return subscription

    # --- Refunds, fees, disputes, transfers -----------------------------------------------
    def refund_create(self, owner: str, params: JSON) -> JSON:
        if params.get("charge"):
            charge = self.get(params["charge"], owner, "charge", param="charge")
        elif params.get("payment_intent"):
            pi = self.get(params["payment_intent"], owner, "payment_intent", param="payment_intent")
            if pi["status"] != "succeeded" or not pi.get("latest_charge"):
                raise StripeError(
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self.get(pi["latest_charge"], owner, "charge")
        else:
            raise StripeError(
                "One of the following params should be provided for this request: charge or payment_intent."
            )
        if charge["status"] != "succeeded":
            raise StripeError(f"Charge {charge['id']} has not succeeded and cannot be refunded.", param="charge")
        remaining = int(charge["amount"]) - int(charge["amount_refunded"])
        if remaining <= 0:
            raise StripeError(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = int(params.get("amount", remaining))
        if amount > remaining:
            raise StripeError(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded amount on "
                f"charge ({format_amount(remaining, charge['currency'])})",
                param="amount",
            )
        now = self.now()
        refund = shape(
            "refund",
            id=new_id("re_3", 23),
            amount=amount,
            balance_transaction=None,
            charge=charge["id"],
            created=now,
            currency=charge["currency"],
            metadata=params.get("metadata", {}),
            payment_intent=charge["payment_intent"],
            reason=params.get("reason"),
            status="succeeded",
            customer=charge.get("customer"),
            payment_method=charge.get("payment_method"),
        )
        self.store.put(refund, owner)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        self.emit("refund.created", refund, owner)
        self.emit("charge.refunded", charge, owner, previous=previous)
        if params.get("refund_application_fee") and charge.get("application_fee"):
            fee = self.store.get(charge["application_fee"]) or {}
            share = int(
                (Decimal(fee["amount"]) * amount / Decimal(charge["amount"])).quantize(
                    Decimal(1), rounding=ROUND_HALF_UP
                )
            )
            share = min(share, int(fee["amount"]) - int(fee["amount_refunded"]))
            if share > 0:
                self.fee_refund_create(fee, share, {})
        return refund

    def fee_refund_create(self, fee: JSON, amount: int, metadata: JSON) -> JSON:
        remaining = int(fee["amount"]) - int(fee["amount_refunded"])
        if amount > remaining:
            raise StripeError(
                f"Refund amount ({amount}) is greater than the unrefunded amount on the application fee ({remaining}).",
                param="amount",
            )
        fee_refund = shape(
            "fee_refund",
            id=new_id("fr_1", 23),
            amount=amount,
            created=self.now(),
            currency=fee["currency"],
            fee=fee["id"],
            metadata=metadata,
        )
        self.store.put(fee_refund, PLATFORM)
        previous = {"amount_refunded": fee["amount_refunded"], "refunded": fee["refunded"]}
        fee["amount_refunded"] = int(fee["amount_refunded"]) + amount
        fee["refunded"] = fee["amount_refunded"] == fee["amount"]
        fee["refunds"]["data"].insert(0, copy.deepcopy(fee_refund))
        self.emit("application_fee.refunded", fee, PLATFORM, previous=previous)
        return fee_refund

    def dispute_create(self, target: str, *, reason: str = "fraudulent", amount: int | None = None) -> JSON:
        owner = self.store.owner_of(target)
        obj = self.store.get(target)
        if owner is None or obj is None:
            raise not_found("charge", target, "charge")
        charge = obj if obj["object"] == "charge" else self.store.get(obj.get("latest_charge") or "")
        if charge is None or charge.get("status") != "succeeded":
            raise StripeError(f"{target} has no successful charge to dispute.", param="charge")
        now = self.now()
        dispute = shape(
            "dispute",
            id=new_id("dp_1", 23),
            amount=amount if amount is not None else int(charge["amount"]),
            balance_transactions=[],
            charge=charge["id"],
            created=now,
            currency=charge["currency"],
            is_charge_refundable=False,
            metadata={},
            payment_intent=charge.get("payment_intent"),
            reason=reason,
            status="needs_response",
        )
        dispute["evidence_details"].update(
            due_by=now + 7 * DAY,
            has_evidence=False,
            past_due=False,
            submission_count=0,
            submission_method="not_submitted",
        )
        dispute["payment_method_details"] = {
            "card": {
                "brand": charge["payment_method_details"]["card"]["brand"],
                "case_type": "chargeback",
                "network_reason_code": "10.4",
                "network": charge["payment_method_details"]["card"]["brand"],
            },
            "type": "card",
        }
        self.store.put(dispute, owner)
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute, owner)
        self.emit("charge.dispute.funds_withdrawn", dispute, owner)
        return dispute

    def dispute_close(self, dispute_id: str, *, status: str) -> JSON:
        owner = self.store.owner_of(dispute_id)
        dispute = self.store.get(dispute_id)
        if owner is None or dispute is None or dispute.get("object") != "dispute":
            raise not_found("dispute", dispute_id)
        if status not in ("won", "lost"):
            raise StripeError("status must be won or lost.", param="status")
        if dispute["status"] in ("won", "lost"):
            raise StripeError(f"Dispute {dispute_id} is already closed.", param="status")
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        self.emit("charge.dispute.closed", dispute, owner, previous=previous)
        if status == "won":
            self.emit("charge.dispute.funds_reinstated", dispute, owner)
        return dispute

    def transfer_create(self, owner: str, params: JSON) -> JSON:
        if owner != PLATFORM:
            raise StripeError("Transfers are made by the platform: do not send a Stripe-Account header.")
        destination = params["destination"]
        if not self.is_connected(destination):
            raise StripeError(f"No such destination: '{destination}'", code="resource_missing", param="destination")
        account = self.store.get(destination) or {}
        if (account.get("capabilities") or {}).get("transfers") != "active":
            raise StripeError(
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                param="destination",
            )
        if self.state.get("refuse_transfers"):
            raise StripeError(
                "You have insufficient available funds in your Stripe account. Try adding funds directly to your "
                "available balance by creating Charges using the 4000000000000077 test card.",
                code="balance_insufficient",
            )
        now = self.now()
        transfer = shape(
            "transfer",
            id=new_id("tr_1", 23),
            amount=params["amount"],
            amount_reversed=0,
            balance_transaction=None,
            created=now,
            currency=params["currency"],
            description=params.get("description"),
            destination=destination,
            destination_payment=new_id("py_1", 23),
            metadata=params.get("metadata", {}),
            reversed=False,
            source_transaction=params.get("source_transaction"),
            source_type="card",
            transfer_group=params.get("transfer_group"),
        )
        transfer["reversals"] = list_object([], f"/v1/transfers/{transfer['id']}/reversals")
        self.store.put(transfer, PLATFORM)
        self.emit("transfer.created", transfer, PLATFORM)
        return transfer

    def transfer_reverse(self, transfer_id: str, params: JSON) -> JSON:
        transfer = self.get(transfer_id, PLATFORM, "transfer")
        remaining = int(transfer["amount"]) - int(transfer["amount_reversed"])
        if remaining <= 0:
            raise StripeError(f"Transfer {transfer_id} has already been fully reversed.", param="amount")
        amount = int(params.get("amount", remaining))
        if amount > remaining:
            raise StripeError(
                f"You have requested to reverse {format_amount(amount, transfer['currency'])}, but only "
                f"{format_amount(remaining, transfer['currency'])} remains to be reversed.",
                param="amount",
            )
        reversal = shape(
            "transfer_reversal",
            id=new_id("trr_1", 23),
            amount=amount,
            created=self.now(),
            currency=transfer["currency"],
            metadata=params.get("metadata", {}),
            transfer=transfer_id,
        )
        self.store.put(reversal, PLATFORM)
        previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
        transfer["amount_reversed"] = int(transfer["amount_reversed"]) + amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].insert(0, copy.deepcopy(reversal))
        self.emit("transfer.reversed", transfer, PLATFORM, previous=previous)
        return reversal

    # --- Billing portal -------------------------------------------------------------------
    def portal_configuration_create(self, owner: str, params: JSON) -> JSON:
        """A portal configuration. The account's first one is its default, as the configuration
        saved in the Dashboard is on Stripe; an account starts with none."""
        now = self.now()
        configuration = shape(
            "billing_portal.configuration",
            id=new_id("bpc_1", 23),
            application=None if owner == PLATFORM else self.client_id,
            created=now,
            updated=now,
            is_default=self.portal_default_configuration(owner) is None,
        )
        self._portal_configuration_set(configuration, params)
        self.store.put(configuration, owner)
        self.emit("billing_portal.configuration.created", configuration, owner)
        return configuration

    def portal_configuration_update(self, owner: str, configuration_id: str, params: JSON) -> JSON:
        configuration = self.get(configuration_id, owner, "billing_portal.configuration", noun="configuration")
        if params.get("active") is False and configuration["is_default"]:
            raise StripeError("The default configuration cannot be deactivated.", param="active")
        previous = {key: copy.deepcopy(configuration[key]) for key in params if key in configuration}
        self._portal_configuration_set(configuration, params)
        configuration["updated"] = self.now()
        self.emit("billing_portal.configuration.updated", configuration, owner, previous=previous)
        return configuration

    @staticmethod
    def _portal_configuration_set(configuration: JSON, params: JSON) -> None:
        """Hashes are merged key by key, as Stripe updates nested parameters."""
        for key in ("active", "default_return_url", "name"):
            if key in params:
                configuration[key] = params[key]
        for key in ("business_profile", "login_page"):
            configuration[key].update(params.get(key) or {})
        for feature, changes in (params.get("features") or {}).items():
            current = configuration["features"][feature]
            for key, value in changes.items():
                if isinstance(value, dict):
                    current[key].update(value)
                else:
                    current[key] = value
        if "metadata" in params:
            configuration["metadata"] = merge_metadata(configuration["metadata"], params["metadata"])

    def portal_default_configuration(self, owner: str) -> JSON | None:
        return next(
            (found for found in self.store.find("billing_portal.configuration", owner) if found["is_default"]), None
        )

    def portal_session_create(self, owner: str, params: JSON) -> JSON:
        customer = self.get(params["customer"], owner, "customer", param="customer")
        if params.get("configuration"):
            configuration = self.get(
                params["configuration"],
                owner,
                "billing_portal.configuration",
                noun="configuration",
                param="configuration",
            )
            if not configuration["active"]:
                raise StripeError(
                    f"The configuration {configuration['id']} is not active and cannot be used to create portal "
                    "sessions.",
                    param="configuration",
                )
        else:
            default = self.portal_default_configuration(owner)
            if default is None:
                raise StripeError(
                    "You can't create a portal session in test mode until you save your customer portal settings in "
                    "test mode at https://dashboard.stripe.com/test/settings/billing/portal."
                )
            configuration = default
        session = shape(
            "billing_portal.session",
            id=new_id("bps_1", 23),
            configuration=configuration["id"],
            created=self.now(),
            customer=customer["id"],
            return_url=params.get("return_url") or configuration["default_return_url"],
            locale=params.get("locale"),
            on_behalf_of=None,
        )
        session["url"] = f"{self.public_url}/p/session/{session['id']}"
        self.store.put(session, owner)
        return session

    # --- The test clock -------------------------------------------------------------------
    def catch_up(self) -> None:
        """Run what fell due as real time passed (renewals, expiries), as each request does
        first: at most once every ``CATCH_UP_EVERY_SECONDS``, since it looks at every object,
        which a run of 10,000 buyers cannot afford on every request. A move of the clock
        (``advance``, the control API) always runs at once, and so does the next catch-up."""
        moment = time.monotonic()
        offset = int(self.state["clock_offset"])
        if self._caught_up is not None:
            at, caught_offset = self._caught_up
            if moment - at < CATCH_UP_EVERY_SECONDS and offset == caught_offset:
                return
        self.advance(0)
        self._caught_up = (moment, int(self.state["clock_offset"]))

    def advance(self, seconds: int) -> int:
        """Move the clock forward and run, in time order, everything that fell due."""
        if seconds < 0:
            raise StripeError("The clock only moves forward.", param="seconds")
        target = self.now() + seconds
        while (due := self._next_due(target)) is not None:
            at, action = due
            self._set_now(max(at, self.now()))
            action()
        self._set_now(max(target, self.now()))
        self._prune_events()
        return self.now()

    def _set_now(self, moment: int) -> None:
        self.state["clock_offset"] += moment - self.now()

    def _next_due(self, limit: int) -> tuple[int, Any] | None:
        candidates: list[tuple[int, Any]] = []
        for object_id, obj in self.state["objects"].items():
            kind = obj.get("object")
            owner = self.state["owners"][object_id]
            if kind == "checkout.session" and obj["status"] == "open" and obj["expires_at"] <= limit:
                at = int(obj["expires_at"])
                candidates.append((at, lambda s=object_id, o=owner, a=at: self.checkout_session_expire(o, s, at=a)))
            elif kind == "subscription" and obj["status"] in ("active", "past_due"):
                period_end = int(obj["items"]["data"][0]["current_period_end"])
                extras = self.state["extras"].get(object_id, {})  # a look, not a change
                if period_end <= limit:
                    candidates.append((period_end, lambda s=obj, o=owner, a=period_end: self._period_end(o, s, a)))
                if obj["status"] == "past_due" and extras.get("failed_since") is not None:
                    retries = int(extras.get("retries", 0))
                    retry_at = int(extras["failed_since"]) + RETRY_SCHEDULE[min(retries, len(RETRY_SCHEDULE) - 1)]
                    if retry_at <= limit:
                        candidates.append((retry_at, lambda s=obj, o=owner, a=retry_at: self._retry(o, s, a)))
        if not candidates:
            return None
        return min(candidates, key=lambda candidate: candidate[0])

    def _period_end(self, owner: str, subscription: JSON, at: int) -> None:
        if subscription["cancel_at_period_end"]:
            self.subscription_cancel(owner, subscription["id"], at=at)
            return
        extras = self.store.extras(subscription["id"])
        extras["periods"] = int(extras.get("periods", 0)) + 1
        previous_items = copy.deepcopy(subscription["items"])
        for sub_item in subscription["items"]["data"]:
            recurring = sub_item["price"]["recurring"]
            count = int(recurring["interval_count"])
            anchor = int(extras.get("anchor") or subscription["billing_cycle_anchor"])
            sub_item["current_period_start"] = sub_item["current_period_end"]
            sub_item["current_period_end"] = add_interval(
                anchor, recurring["interval"], count * (extras["periods"] + 1)
            )
        previous_start = previous_items["data"][0]["current_period_start"]
        previous_invoice = subscription["latest_invoice"]
        invoice = self._invoice_create(owner, subscription, "subscription_cycle", previous_start, at, at)
        paid = self._invoice_pay(owner, invoice, subscription, at, off_session=True)
        previous: JSON = {"items": previous_items, "latest_invoice": previous_invoice}
        if paid:
            extras.update(failed_since=None, retries=0)
            if subscription["status"] == "past_due":
                previous["status"] = "past_due"
                subscription["status"] = "active"
        else:
            if extras.get("failed_since") is None:
                extras.update(failed_since=at, retries=0)
            invoice["next_payment_attempt"] = int(extras["failed_since"]) + RETRY_SCHEDULE[0]
            if subscription["status"] != "past_due":
                previous["status"] = subscription["status"]
                subscription["status"] = "past_due"
        self.emit("customer.subscription.updated", subscription, owner, previous=previous, at=at)

    def _retry(self, owner: str, subscription: JSON, at: int) -> None:
        extras = self.store.extras(subscription["id"])
        invoice = self.store.get(subscription["latest_invoice"]) or {}
        extras["retries"] = int(extras.get("retries", 0)) + 1
        paid = invoice.get("status") == "paid" or (
            invoice.get("status") == "open" and self._invoice_pay(owner, invoice, subscription, at, off_session=True)
        )
        if paid:
            extras.update(failed_since=None, retries=0)
            subscription["status"] = "active"
            self.emit("customer.subscription.updated", subscription, owner, previous={"status": "past_due"}, at=at)
            return
        if extras["retries"] < len(RETRY_SCHEDULE):
            invoice["next_payment_attempt"] = int(extras["failed_since"]) + RETRY_SCHEDULE[extras["retries"]]
            return
        invoice["next_payment_attempt"] = None
        extras.update(failed_since=None, retries=0)
        if self.state["after_failed_retries"] == "unpaid":
            subscription["status"] = "unpaid"
            self.emit("customer.subscription.updated", subscription, owner, previous={"status": "past_due"}, at=at)
        else:
            self.subscription_cancel(owner, subscription["id"], at=at, reason="payment_failed")

    def _prune_events(self) -> None:
        """Forget events older than the retention, except those still to be delivered: an advance
        of more than 30 days would otherwise drop the events it made before they were sent."""
        horizon = self.now() - EVENT_RETENTION_SECONDS
        undelivered = self.state["pending_deliveries"]
        objects = self.state["objects"]
        kept = []
        for event_id in self.state["events"]:
            event = objects.get(event_id)  # a look: ``store.get`` would mark every event as changed
            if event is not None and int(event["created"]) < horizon and event_id not in undelivered:
                self.store.delete(event_id)
            elif event is not None:
                kept.append(event_id)
        self.state["events"] = kept


def plan_from_price(price: JSON) -> JSON:
    recurring = price.get("recurring") or {}
    return {
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "id": price["id"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": copy.deepcopy(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "object": "plan",
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def merge_metadata(current: JSON, update: Any) -> JSON:
    """Stripe's metadata update: keys are added or replaced; an empty value removes a key."""
    if update == "" or update is None:
        return {}
    if isinstance(update, list):
        update = {str(index): value for index, value in enumerate(update)}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
