"""Reads of the partner program: the offers open to partners, links that may attribute, counts."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import User
from affiliates.models import Partner, ReferralLink
from billing.models import CheckoutAttempt, StripeAccount
from memberships.models import Offer


def resell_offers() -> QuerySet[Offer]:
    """Every published paid offer with resell rights on: the programs a member may join."""
    return (
        Offer.objects.published()
        .filter(resell_enabled=True)
        .exclude(pricing=Offer.Pricing.FREE)
        .order_by("title", "pk")
    )


def links_with_counts() -> QuerySet[ReferralLink]:
    """Links annotated with ``click_count``, ``checkout_count`` (checkouts started through the
    link) and ``sale_count`` (those paid)."""
    return ReferralLink.objects.select_related("offer").annotate(
        click_count=Count("clicks", distinct=True),
        checkout_count=Count("attributions", distinct=True),
        sale_count=Count(
            "attributions", filter=Q(attributions__attempt__status=CheckoutAttempt.Status.PAID), distinct=True
        ),
    )


def link_live(*, code: str) -> ReferralLink | None:
    """The link with this code if it may attribute now: its partner is active and its offer is
    published with resell rights on. None for anything else (unknown, paused, removed, off)."""
    if not code or len(code) > ReferralLink._meta.get_field("code").max_length:  # type: ignore[operator]
        return None
    return (
        ReferralLink.objects.select_related("partner__user", "offer")
        .filter(
            code=code,
            partner__status=Partner.Status.ACTIVE,
            offer__status=Offer.Status.PUBLISHED,
            offer__resell_enabled=True,
        )
        .exclude(offer__pricing=Offer.Pricing.FREE)
        .first()
    )


def partner_stripe_account(*, user: User) -> StripeAccount | None:
    return StripeAccount.objects.partner_of(user.pk).first()


@dataclass(frozen=True)
class Program:
    """One offer's program as a member sees it: their link (with counts) once they joined."""

    offer: Offer
    link: ReferralLink | None


@dataclass(frozen=True)
class PartnerView:
    """What the *Become a Partner* widget and page show a member."""

    programs: list[Program]
    partner: Partner | None
    email_proven: bool
    stripe_account: StripeAccount | None

    @property
    def can_join(self) -> bool:
        return (
            self.email_proven
            and self.stripe_account is not None
            and (self.partner is None or self.partner.status == Partner.Status.ACTIVE)
        )


def partner_view(*, user: User, offers: list[Offer] | None = None) -> PartnerView:
    """What a member sees of the programs (``offers``: ``resell_offers()`` already read)."""
    offers = list(resell_offers()) if offers is None else offers
    partner = Partner.objects.filter(user=user).first()
    links: dict[int, ReferralLink] = {}
    if partner is not None:
        links = {link.offer_id: link for link in links_with_counts().filter(partner=partner)}
    return PartnerView(
        programs=[Program(offer=offer, link=links.get(offer.pk)) for offer in offers],
        partner=partner,
        email_proven=user.email_verified_at is not None,
        stripe_account=partner_stripe_account(user=user),
    )


def partners_for_creator() -> QuerySet[Partner]:
    """Every partner with their links and each link's counts, for the creator's Affiliates page."""
    return (
        Partner.objects.select_related("user")
        .prefetch_related(Prefetch("links", queryset=links_with_counts().order_by("offer__title", "pk")))
        .order_by("-joined_at", "pk")
    )
