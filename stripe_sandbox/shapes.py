"""Object shapes, taken from Stripe's own examples.

``stripe_fixtures.json`` is the subset of Stripe's published OpenAPI fixtures
(``fixtures3.json``, MIT licence in ``STRIPE_FIXTURES_LICENSE``) for the objects the sandbox
serves. Every object starts as a deep copy of its example; the example's placeholder values
that would mislead a client (random amounts, sample ids, filled-in sub-objects) are reset to
their empty values below, and the sandbox then sets the fields it knows.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

_FIXTURES = Path(__file__).with_name("stripe_fixtures.json")

_EMPTY_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}

# Placeholder values in the examples, reset before use.
_NEUTRAL: dict[str, JSON] = {
    "account": {"metadata": {}},
    "customer": {"discount": None, "address": None, "shipping": None, "currency": None, "invoice_prefix": None},
    "product": {"package_dimensions": None, "default_price": None, "description": None, "images": []},
    "price": {"transform_quantity": None, "recurring": None},
    "checkout.session": {
        "after_expiration": None,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "consent_collection": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_details": None,
        "invoice_creation": None,
        "payment_method_configuration_details": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "collected_information": None,
        "currency_conversion": None,
        "saved_payment_method_options": None,
        "payment_method_options": {},
        "managed_payments": None,
        "adaptive_pricing": {"enabled": False},
        "wallet_options": None,
        "permissions": None,
        "payment_intent": None,
    },
    "item": {"adjustable_quantity": None, "metadata": {}},
    "payment_method": {"metadata": {}},
    "payment_intent": {
        "amount_details": {"tip": {}},
        "automatic_payment_methods": None,
        "canceled_at": None,
        "last_payment_error": None,
        "next_action": None,
        "payment_method_configuration_details": None,
        "processing": None,
        "shipping": None,
        "transfer_data": None,
        "managed_payments": None,
    },
    "charge": {
        "description": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "receipt_url": None,
        "shipping": None,
        "source": None,
        "transfer_data": None,
        "fraud_details": {},
    },
    "balance_transaction": {"description": None},
    "subscription": {
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "next_pending_invoice_item_invoice": None,
        "pause_collection": None,
        "pending_invoice_item_interval": None,
        "pending_update": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_start": None,
        "cancel_at_period_end": False,
        "managed_payments": None,
        "billing_schedules": [],
        "billing_thresholds": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
    },
    "subscription_item": {"billing_thresholds": None},
    "invoice": {
        "due_date": None,
        "from_invoice": None,
        "last_finalization_error": None,
        "next_payment_attempt": None,
        "shipping_cost": None,
        "shipping_details": None,
        "amount_overpaid": 0,
        "customer_address": None,
        "customer_shipping": None,
        "webhooks_delivered_at": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
    },
    "line_item": {"subtotal": 0, "discountable": True},
    "invoice_payment": {},
    "refund": {"destination_details": {"card": {"type": "refund"}, "type": "card"}},
    "dispute": {"enhanced_eligibility_types": []},
    "billing_portal.session": {"flow": None, "configuration": None},
    "transfer": {"destination_payment": None},
}


# Objects Stripe's examples leave out, with every field the SDK's types give the pinned API
# version, at the values Stripe gives them by default.
_WITHOUT_EXAMPLE: dict[str, JSON] = {
    "billing_portal.configuration": {
        "id": None,
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
        "created": 0,
        "default_return_url": None,
        "features": {
            "customer_update": {"allowed_updates": [], "enabled": False},
            "invoice_history": {"enabled": False},
            "payment_method_update": {"enabled": False, "payment_method_configuration": None},
            "subscription_cancel": {
                "cancellation_reason": {"enabled": False, "feedback_options": None, "options": []},
                "enabled": False,
                "mode": "at_period_end",
                "proration_behavior": "none",
            },
            "subscription_pause": {
                "duration": {
                    "interval_options": [{"interval": "month", "interval_count": 1}],
                    "type": "interval_options",
                },
                "enabled": False,
            },
            "subscription_update": {
                "billing_cycle_anchor": None,
                "default_allowed_updates": [],
                "enabled": False,
                "products": [],
                "proration_behavior": "none",
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        "is_default": False,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": 0,
    },
}


# Fields of the examples that the pinned API version no longer has.
_REMOVED: dict[str, tuple[str, ...]] = {"invoice": ("subscription",)}


@cache
def _examples() -> dict[str, JSON]:
    loaded: dict[str, JSON] = json.loads(_FIXTURES.read_text(encoding="utf-8"))
    return loaded


def shape(kind: str, **fields: Any) -> JSON:
    """A new object of ``kind`` (``"checkout.session"``, ``"price"``...) with ``fields`` set."""
    obj = copy.deepcopy(_WITHOUT_EXAMPLE.get(kind) or _examples()[kind])
    for name in _REMOVED.get(kind, ()):
        del obj[name]
    obj.update(copy.deepcopy(_NEUTRAL.get(kind, {})))
    if "livemode" in obj:
        obj["livemode"] = False
    obj.update(fields)
    return obj


def empty_address() -> JSON:
    return dict(_EMPTY_ADDRESS)


def list_object(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
