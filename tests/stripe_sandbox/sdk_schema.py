"""Stripe's schema for the pinned API version, as the installed SDK types it.

The SDK marks every field Stripe can expand as ``ExpandableField[...]`` (``Union[str, X]``);
``expandable_paths`` walks a resource class and its inner classes and returns those fields'
paths, as ``expand[]`` spells them (``parent.subscription_details.subscription``).
"""

from __future__ import annotations

import types
import typing
from typing import Any, ForwardRef

import stripe
from stripe import StripeObject

# The objects the sandbox serves, by their ``object`` value.
SERVED: dict[str, type[StripeObject]] = {
    "account": stripe.Account,
    "application_fee": stripe.ApplicationFee,
    "balance_transaction": stripe.BalanceTransaction,
    "billing_portal.configuration": stripe.billing_portal.Configuration,
    "billing_portal.session": stripe.billing_portal.Session,
    "charge": stripe.Charge,
    "checkout.session": stripe.checkout.Session,
    "customer": stripe.Customer,
    "dispute": stripe.Dispute,
    "event": stripe.Event,
    "fee_refund": stripe.ApplicationFeeRefund,
    "invoice": stripe.Invoice,
    "invoice_payment": stripe.InvoicePayment,
    "item": stripe.LineItem,
    "line_item": stripe.InvoiceLineItem,
    "payment_intent": stripe.PaymentIntent,
    "payment_method": stripe.PaymentMethod,
    "price": stripe.Price,
    "product": stripe.Product,
    "refund": stripe.Refund,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "transfer": stripe.Transfer,
    "transfer_reversal": stripe.TransferReversal,
}


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_expandable(annotation: Any) -> bool:
    members = [member for member in _members(annotation) if member is not type(None)]
    others = [member for member in members if member is not str]
    return str in members and any(
        isinstance(member, ForwardRef) or (isinstance(member, type) and issubclass(member, StripeObject))
        for member in others
    )


def _inner(annotation: Any, owner: type) -> type | None:
    """The inner class (``Session.TotalDetails``) an annotation holds, directly or in a list."""
    for member in _members(annotation):
        if typing.get_origin(member) in (list, typing.List):  # noqa: UP006
            member = typing.get_args(member)[0]
        if (
            isinstance(member, type)
            and issubclass(member, StripeObject)
            and member.__qualname__.startswith(owner.__qualname__.split(".")[0] + ".")
        ):
            return member
    return None


def expandable_paths(resource: type, prefix: str = "", depth: int = 0) -> set[str]:
    paths: set[str] = set()
    for name, annotation in vars(resource).get("__annotations__", {}).items():
        if name.startswith("_"):
            continue
        path = f"{prefix}{name}"
        if _is_expandable(annotation):
            paths.add(path)
            continue
        for member in _members(annotation):
            if typing.get_origin(member) in (list, typing.List) and _is_expandable(typing.get_args(member)[0]):  # noqa: UP006
                paths.add(path)
        inner = _inner(annotation, resource)
        if inner is not None and depth < 6:
            paths |= expandable_paths(inner, f"{path}.", depth + 1)
    return paths
