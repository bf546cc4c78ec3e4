"""``expand[]``: the paths Stripe expands on the objects the sandbox serves, and how.

``EXPANDABLE`` lists, per object (its ``object`` value), every path Stripe's schema for the
pinned API version marks expandable (``tests/stripe_sandbox/test_schema.py`` compares it with
the SDK's types), plus the fields Stripe includes only when asked (``INCLUDED``): a session's
``line_items`` and ``total_details.breakdown``, an invoice's ``payments``. A path may go on
through what it expanded (``payment_intent.latest_charge``) and through lists (``data.customer``,
``line_items.data.discounts``). Any other path is refused, as Stripe refuses it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from stripe_sandbox.shapes import list_object
from stripe_sandbox.store import JSON, PLATFORM, Store, StripeError

EXPANDABLE: dict[str, frozenset[str]] = {
    "account": frozenset(
        {
            "company.verification.document.back",
            "company.verification.document.front",
            "settings.branding.icon",
            "settings.branding.logo",
            "settings.invoices.default_account_tax_ids",
        }
    ),
    "application_fee": frozenset(
        {
            "account",
            "application",
            "balance_transaction",
            "charge",
            "originating_transaction",
        }
    ),
    "balance_transaction": frozenset(
        {
            "source",
        }
    ),
    "billing_portal.configuration": frozenset(
        {
            "application",
            "features.subscription_cancel.cancellation_reason.feedback_options",
        }
    ),
    "billing_portal.session": frozenset(
        {
            "configuration",
        }
    ),
    "charge": frozenset(
        {
            "application",
            "application_fee",
            "balance_transaction",
            "customer",
            "failure_balance_transaction",
            "on_behalf_of",
            "outcome.rule",
            "payment_intent",
            "payment_method_details.bancontact.generated_sepa_debit",
            "payment_method_details.bancontact.generated_sepa_debit_mandate",
            "payment_method_details.card.mandate",
            "payment_method_details.ideal.generated_sepa_debit",
            "payment_method_details.ideal.generated_sepa_debit_mandate",
            "payment_method_details.sofort.generated_sepa_debit",
            "payment_method_details.sofort.generated_sepa_debit_mandate",
            "payment_method_details.us_bank_account.mandate",
            "review",
            "source_transfer",
            "transfer",
            "transfer_data.destination",
        }
    ),
    "checkout.session": frozenset(
        {
            "automatic_tax.liability.account",
            "customer",
            "discounts.coupon",
            "discounts.promotion_code",
            "invoice",
            "invoice_creation.invoice_data.account_tax_ids",
            "invoice_creation.invoice_data.issuer.account",
            "line_items",
            "payment_intent",
            "payment_link",
            "setup_intent",
            "shipping_cost.shipping_rate",
            "shipping_options.shipping_rate",
            "subscription",
            "total_details.breakdown",
        }
    ),
    "customer": frozenset(
        {
            "default_source",
            "invoice_settings.default_payment_method",
            "test_clock",
        }
    ),
    "dispute": frozenset(
        {
            "charge",
            "evidence.cancellation_policy",
            "evidence.customer_communication",
            "evidence.customer_signature",
            "evidence.duplicate_charge_documentation",
            "evidence.receipt",
            "evidence.refund_policy",
            "evidence.service_documentation",
            "evidence.shipping_documentation",
            "evidence.uncategorized_file",
            "payment_intent",
        }
    ),
    "event": frozenset(),
    "fee_refund": frozenset(
        {
            "balance_transaction",
            "fee",
        }
    ),
    "invoice": frozenset(
        {
            "account_tax_ids",
            "application",
            "automatic_tax.liability.account",
            "confirmation_secret",
            "customer",
            "default_payment_method",
            "default_source",
            "discounts",
            "from_invoice.invoice",
            "issuer.account",
            "latest_revision",
            "on_behalf_of",
            "parent.subscription_details.subscription",
            "payments",
            "shipping_cost.shipping_rate",
            "test_clock",
            "total_discount_amounts.discount",
            "total_pretax_credit_amounts.credit_balance_transaction",
            "total_pretax_credit_amounts.discount",
        }
    ),
    "invoice_payment": frozenset(
        {
            "invoice",
            "payment.charge",
            "payment.payment_intent",
            "payment.payment_record",
        }
    ),
    "item": frozenset(
        {
            "discounts",
            "taxes",
        }
    ),
    "line_item": frozenset(
        {
            "discount_amounts.discount",
            "discounts",
            "pretax_credit_amounts.credit_balance_transaction",
            "pretax_credit_amounts.discount",
            "pricing.price_details.price",
            "subscription",
        }
    ),
    "payment_intent": frozenset(
        {
            "application",
            "customer",
            "latest_charge",
            "on_behalf_of",
            "payment_method",
            "payment_record",
            "review",
            "source",
            "transfer_data.destination",
        }
    ),
    "payment_method": frozenset(
        {
            "card.generated_from.setup_attempt",
            "customer",
            "sepa_debit.generated_from.charge",
            "sepa_debit.generated_from.setup_attempt",
        }
    ),
    "price": frozenset(
        {
            "product",
        }
    ),
    "product": frozenset(
        {
            "default_price",
            "tax_code",
        }
    ),
    "refund": frozenset(
        {
            "balance_transaction",
            "charge",
            "customer",
            "failure_balance_transaction",
            "payment_intent",
            "payment_method",
            "source_transfer_reversal",
            "transfer_reversal",
        }
    ),
    "subscription": frozenset(
        {
            "application",
            "automatic_tax.liability.account",
            "billing_schedules.applies_to.price",
            "cancellation_details.feedback_option",
            "customer",
            "default_payment_method",
            "default_source",
            "discounts",
            "invoice_settings.account_tax_ids",
            "invoice_settings.issuer.account",
            "latest_invoice",
            "on_behalf_of",
            "pending_setup_intent",
            "pending_update.discounts",
            "schedule",
            "test_clock",
            "transfer_data.destination",
        }
    ),
    "subscription_item": frozenset(
        {
            "discounts",
        }
    ),
    "transfer": frozenset(
        {
            "balance_transaction",
            "destination",
            "destination_payment",
            "source_transaction",
        }
    ),
    "transfer_reversal": frozenset(
        {
            "balance_transaction",
            "destination_payment_refund",
            "source_refund",
            "transfer",
        }
    ),
}


class Source(Protocol):
    """What expansion reads from the sandbox."""

    store: Store

    def checkout_line_items(self, session_id: str) -> list[JSON]: ...

    def invoice_payments(self, invoice_id: str) -> list[JSON]: ...


def _line_items(sandbox: Source, session: JSON) -> JSON:
    items = copy.deepcopy(sandbox.checkout_line_items(session["id"]))
    return list_object(items, f"/v1/checkout/sessions/{session['id']}/line_items")


def _payments(sandbox: Source, invoice: JSON) -> JSON:
    payments = copy.deepcopy(sandbox.invoice_payments(invoice["id"]))
    return list_object(payments, f"/v1/invoice_payments?invoice={invoice['id']}")


def _confirmation_secret(sandbox: Source, invoice: JSON) -> JSON | None:
    for payment in sandbox.invoice_payments(invoice["id"]):
        intent = sandbox.store.get(payment["payment"]["payment_intent"]) or {}
        if intent.get("client_secret"):
            return {"client_secret": intent["client_secret"], "type": "payment_intent"}
    return None


# The sandbox has no discounts or taxes: their breakdowns are empty, as Stripe's are then.
INCLUDED: dict[str, dict[str, Callable[[Source, JSON], Any]]] = {
    "checkout.session": {
        "line_items": _line_items,
        "total_details.breakdown": lambda sandbox, session: {"discounts": [], "taxes": []},
    },
    "invoice": {"payments": _payments, "confirmation_secret": _confirmation_secret},
    "item": {"discounts": lambda sandbox, item: [], "taxes": lambda sandbox, item: []},
}


def expand(sandbox: Source, obj: Any, path: list[str], owner: str) -> None:
    """Replace what ``path`` names in ``obj`` (an API answer) with the objects it refers to."""
    if not path or obj is None:
        return
    if isinstance(obj, list):
        for item in obj:
            expand(sandbox, item, path, owner)
        return
    if not isinstance(obj, dict):
        return
    kind = str(obj.get("object"))
    if kind == "list" and path[0] == "data":
        expand(sandbox, obj["data"], path[1:], owner)
        return
    known = EXPANDABLE.get(kind, frozenset())
    # The longest known field the path starts with (``total_details.breakdown``, then ``.x``).
    length = next((n for n in range(len(path), 0, -1) if ".".join(path[:n]) in known), 0)
    if not length:
        raise StripeError(f"This property cannot be expanded ({path[0]}).", param="expand")
    field, rest = ".".join(path[:length]), path[length:]
    _at(obj, path[:length], lambda holder, name: _expand_field(sandbox, obj, holder, name, field, rest, owner))


def _at(container: Any, names: list[str], action: Callable[[JSON, str], None]) -> None:
    """Run ``action`` on the last name of ``names``, through nested hashes and lists of them."""
    if isinstance(container, list):
        for item in container:
            _at(item, names, action)
    elif isinstance(container, dict):
        if len(names) == 1:
            action(container, names[0])
        else:
            _at(container.get(names[0]), names[1:], action)


def _expand_field(
    sandbox: Source, root: JSON, holder: JSON, name: str, field: str, rest: list[str], owner: str
) -> None:
    include = INCLUDED.get(str(root.get("object")), {}).get(field)
    if include is not None:
        if name not in holder:  # another path of the same request may have included it already
            holder[name] = include(sandbox, root)
    else:
        holder[name] = _resolve(sandbox, holder.get(name), owner)
    expand(sandbox, holder[name], rest, owner)


def _resolve(sandbox: Source, value: Any, owner: str) -> Any:
    """An id becomes the object it names (when the sandbox has it); lists of ids too."""
    if isinstance(value, list):
        return [_resolve(sandbox, item, owner) for item in value]
    if isinstance(value, str):
        target = sandbox.store.get(value, owner) or sandbox.store.get(value, PLATFORM)
        if target is not None:
            return copy.deepcopy(target)
    return value
