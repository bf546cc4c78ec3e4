"""Forms for billing. They validate and normalise; they write nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import formats, timezone

from accounts.models import normalize_email
from billing.metrics import SalesFilters, Status
from billing.models import Payment
from billing.selectors import Membership
from core.ids import ModelChoiceField
from memberships.forms import FreeClaimForm
from memberships.models import Offer, format_money

EXPIRED = "This page has expired. Check your choices and submit again."


class PaidCheckoutForm(FreeClaimForm):
    """The buyer's details on a paid offer's checkout page, before the Stripe Checkout starts:
    the same fields as a free claim."""


def _day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "M j, Y")


def minor_units(amount: Decimal) -> int:
    """``Decimal("12.50")`` -> ``1250``: exact, since the field allows at most two decimals."""
    return int(amount * 100)


def major_units(amount: int) -> Decimal:
    return (Decimal(amount) / 100).quantize(Decimal("0.01"))


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


class _RequestKeyForm(forms.Form):
    """A confirmation page's form: its hidden key, made when the page is shown, names the
    request, so submitting it twice does one thing."""

    request_key = forms.UUIDField(widget=forms.HiddenInput, error_messages={"required": EXPIRED, "invalid": EXPIRED})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("request_key", uuid.uuid4())

    def with_fresh_key_if_expired(self) -> None:
        """After a bad key, show the page again with a new one (and what was typed)."""
        if self.is_bound and "request_key" in self.errors:
            data = self.data.copy() if isinstance(self.data, QueryDict) else QueryDict(mutable=True)
            data["request_key"] = str(uuid.uuid4())
            self.data = data


class MembershipCancelForm(_RequestKeyForm):
    """When a membership ends, and for an immediate end, what is refunded."""

    WHEN_PERIOD_END = "period_end"
    WHEN_NOW = "now"
    REFUND_NONE = "none"
    REFUND_LAST = "last"
    REFUND_PRORATED = "prorated"

    when = forms.ChoiceField(
        label="When",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose when the membership ends.",
            "invalid_choice": "Choose when the membership ends.",
        },
    )
    refund = forms.ChoiceField(
        label="Refund",
        widget=forms.RadioSelect,
        required=False,
        initial=REFUND_NONE,
        help_text="Only for a membership that ends immediately.",
        error_messages={"invalid_choice": "Choose one of the refunds listed."},
    )

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.period_end = membership.next_payment_at or membership.ends_at
        _choice_field(self, "when").choices = [
            (self.WHEN_PERIOD_END, f"At the end of the period{self.period_end_words}"),
            (self.WHEN_NOW, "Immediately"),
        ]
        self.last_payment = last_refundable_payment(membership)
        refunds = [(self.REFUND_NONE, "No refund")]
        if self.last_payment is not None:
            payment = self.last_payment
            left = format_money(payment.refundable_amount, payment.currency)
            if payment.amount_refunded:
                label = f"What is left of the last payment ({left} of {payment.amount_label})"
            else:
                label = f"The last payment in full ({left})"
            refunds.append((self.REFUND_LAST, label))
        if membership.prorated_refund > 0:
            currency = self.last_payment.currency if self.last_payment else membership.offer.currency
            amount = format_money(membership.prorated_refund, currency)
            refunds.append((self.REFUND_PRORATED, f"The unused part of the current period ({amount})"))
        _choice_field(self, "refund").choices = refunds
        self.refund_labels = dict(refunds)

    @property
    def period_end_words(self) -> str:
        return f" (on {_day(self.period_end)})" if self.period_end else ""

    def refund_label(self, refund: str) -> str:
        """``"last"`` -> ``"the last payment in full ($25.00)"``, as the page offered it."""
        label = self.refund_labels[refund]
        return label[:1].lower() + label[1:]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("when") == self.WHEN_PERIOD_END:
            if data.get("refund") not in ("", self.REFUND_NONE):
                self.add_error("refund", "A refund is only made with a membership that ends immediately.")
            data["refund"] = self.REFUND_NONE
        elif not data.get("refund"):
            data["refund"] = self.REFUND_NONE
        return data


def last_refundable_payment(membership: Membership) -> Payment | None:
    """The current period's payment of the subscription behind the membership (the one that
    ``subscription_cancel_request`` refunds as "last"), while it has money left to refund."""
    oldest = datetime.min.replace(tzinfo=UTC)
    payments = [
        receipt.payment
        for receipt in membership.receipts
        if receipt.payment.stripe_subscription_id
        and receipt.payment.stripe_subscription_id == membership.entitlement.backed_by
    ]
    last = max(
        payments,
        key=lambda payment: (payment.period_end or oldest, payment.paid_at or oldest, payment.pk),
        default=None,
    )
    return last if last is not None and last.refundable_amount > 0 else None


class PaymentRefundForm(_RequestKeyForm):
    """How much of a payment to refund, in the currency's major units (``12.50``)."""

    amount = forms.DecimalField(
        label="Amount to refund",
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
        error_messages={
            "required": "Enter the amount to refund, like 12.50.",
            "invalid": "Enter the amount to refund as a number, like 12.50.",
            "max_digits": "This amount is larger than the payment.",
            "max_whole_digits": "This amount is larger than the payment.",
            "max_decimal_places": "Use at most two decimals, like 12.50.",
        },
    )

    def __init__(self, *args: Any, payment: Payment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.payment = payment
        if not self.is_bound:
            self.initial.setdefault("amount", major_units(payment.refundable_amount))

    def clean_amount(self) -> int:
        amount = minor_units(self.cleaned_data["amount"])
        refundable = self.payment.refundable_amount
        if refundable <= 0:
            raise ValidationError("This payment has been refunded in full: nothing is left to refund.")
        if amount <= 0:
            raise ValidationError("Enter an amount above zero, like 12.50.")
        if amount > refundable:
            most = format_money(refundable, self.payment.currency)
            raise ValidationError(f"At most {most} of this payment can be refunded.")
        return amount


class OneClickForm(_RequestKeyForm):
    """The one-click page's confirmation: its key names the purchase (a second submit of the
    same page buys nothing more), with the price the member was shown and the group they came
    from, both hidden."""

    amount = forms.IntegerField(
        widget=forms.HiddenInput, min_value=0, error_messages={"required": EXPIRED, "invalid": EXPIRED}
    )
    group = forms.SlugField(widget=forms.HiddenInput, required=False, max_length=200)


class CheckoutTestForm(forms.Form):
    """The creator's test purchase: the address its test buyer uses."""

    __test__ = False

    email = forms.EmailField(
        label="Test buyer's email",
        max_length=254,
        help_text="Use an address no buyer uses: a new account is made for it, as for any buyer.",
    )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class SalesFilterForm(forms.Form):
    """The Sales page's filters (a GET form): an offer or all, a period, a payment status. An
    unknown value is an error the page shows, and the figures fall back to that field's default."""

    PERIODS = [("30d", "Last 30 days (daily)"), ("12m", "Last 12 months (monthly)")]

    offer = ModelChoiceField(
        queryset=Offer.objects.exclude(pricing=Offer.Pricing.FREE).order_by("title"),
        required=False,
        empty_label="All offers",
        error_messages={"invalid_choice": "Choose an offer from the list."},
    )
    period = forms.ChoiceField(
        choices=PERIODS, required=False, error_messages={"invalid_choice": "Choose a period from the list."}
    )
    status = forms.ChoiceField(
        choices=Status.CHOICES,
        required=False,
        error_messages={"invalid_choice": "Choose a status from the list."},
    )

    def filters(self) -> SalesFilters:
        """The filters to apply: the valid ones, each invalid or missing one at its default."""
        data: dict[str, Any] = {}
        if self.is_bound:
            self.is_valid()  # cleaned_data then holds the valid fields only
            data = self.cleaned_data
        return SalesFilters(
            offer=data.get("offer"),
            monthly=data.get("period") == "12m",
            status=data.get("status") or Status.ALL,
        )
