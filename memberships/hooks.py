"""What a higher layer plugs into memberships, which may not import it.

Billing (a layer above) fills these in ``BillingConfig.ready``: whether paid offers can be
sold (a Stripe account that takes payments), what happens when an offer changes (its
Stripe product and price are synced after commit), and a purchase's terms as the
confirmation email states them (what was paid, how often, the next payment), and a quicker way
to buy a popup upsell (one click with a saved card). Memberships asks without knowing who
answers, so every caller of the offer services (the editor, the admin, tasks, commands) gets
the same rules. With nothing registered, paid offers cannot be sold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

    from hubs.models import HubGroup
    from memberships.models import Entitlement, Offer

# Whether paid offers can be sold now.
PaidOfferCheck = Callable[[], bool]
# Called inside the transaction that changed the offer: queue any outside work on commit.
OfferChanged = Callable[["Offer"], None]

# The purchase's terms for its confirmation email: amount_paid, interval_label,
# next_payment_date (words), as far as known; {} for a free claim.
PurchaseTerms = Callable[["Entitlement"], dict[str, str]]

# Where a popup upsell's *Buy now* takes this visitor, when there is a quicker way than the
# offer page (billing: the one-click page, for a member whose card is on file), else None.
BuyNowLink = Callable[["HttpRequest", "Offer", "HubGroup"], "str | None"]

_paid_offer_checks: list[PaidOfferCheck] = []
_offer_changed: list[OfferChanged] = []
_purchase_terms: list[PurchaseTerms] = []
_buy_now_links: list[BuyNowLink] = []


def paid_offer_check_register(check: PaidOfferCheck) -> None:
    if check not in _paid_offer_checks:
        _paid_offer_checks.append(check)


def offer_changed_register(receiver: OfferChanged) -> None:
    if receiver not in _offer_changed:
        _offer_changed.append(receiver)


def purchase_terms_register(provider: PurchaseTerms) -> None:
    if provider not in _purchase_terms:
        _purchase_terms.append(provider)


def purchase_terms(entitlement: Entitlement) -> dict[str, str]:
    terms: dict[str, str] = {}
    for provider in _purchase_terms:
        terms.update(provider(entitlement))
    return terms


def paid_offers_sellable() -> bool:
    """Whether paid offers can be sold now: every registered check agrees, and there is one."""
    return bool(_paid_offer_checks) and all(check() for check in _paid_offer_checks)


def offer_changed(offer: Offer) -> None:
    for receiver in _offer_changed:
        receiver(offer)


def buy_now_link_register(provider: BuyNowLink) -> None:
    if provider not in _buy_now_links:
        _buy_now_links.append(provider)


def buy_now_link(request: HttpRequest, offer: Offer, group: HubGroup) -> str | None:
    """The first quicker way to buy ``offer`` from ``group``'s paywall, or None."""
    for provider in _buy_now_links:
        link = provider(request, offer, group)
        if link:
            return link
    return None
