"""Reads of the partner program: the offers open to partners, links that may attribute, counts,
and the commission ledger's figures (summed in SQL, per currency)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, IntegerField, Min, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import User
from affiliates.commissions import ENDED_SUBSCRIPTION_STATUSES
from affiliates.models import Commission, Partner, ReferralLink
from billing.models import CheckoutAttempt, StripeAccount, StripeSubscription
from memberships.models import Offer, format_money


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


# --- The commission ledger's figures -----------------------------------------------------------
# Each commission's share of the totals, summed in SQL. ``pending`` is what is still owed
# (negative while a transfer reversal is on its way), ``paid`` what the partner holds, and
# ``reversed`` what refunds and lost disputes took back: together they are ``earned``.
_PENDING = F("amount") - F("amount_reversed") - F("transferred") + F("transfer_reversed")
_PAID = F("transferred") - F("transfer_reversed")
# Owed and not yet transferred nor frozen: what the next payout will pay.
_AWAITING_PAYOUT = Q(transfer_id="", frozen=False, amount__gt=F("amount_reversed"))


def _ledger_sums() -> dict[str, Any]:
    return {
        "sales": Count("pk"),
        "earned": Sum("amount"),
        "pending": Sum(_PENDING, output_field=IntegerField()),
        "paid": Sum(_PAID, output_field=IntegerField()),
        "reversed": Sum("amount_reversed"),
        "next_payout": Min("hold_until", filter=_AWAITING_PAYOUT),
    }


@dataclass(frozen=True)
class LedgerFigures:
    """A group of commissions in one currency: how many (one per referred payment, renewals
    included), what they earned, and how much of it is pending, paid and reversed."""

    currency: str
    sales: int = 0
    earned: int = 0
    pending: int = 0
    paid: int = 0
    reversed: int = 0
    next_payout: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerFigures:
        return cls(
            currency=row["currency"],
            sales=row["sales"],
            earned=row["earned"] or 0,
            pending=row["pending"] or 0,
            paid=row["paid"] or 0,
            reversed=row["reversed"] or 0,
            next_payout=row["next_payout"],
        )

    @property
    def earned_label(self) -> str:
        return format_money(self.earned, self.currency)

    @property
    def pending_label(self) -> str:
        if self.pending < 0:  # more was paid than is now owed: a transfer reversal is on its way
            return "-" + format_money(-self.pending, self.currency)
        return format_money(self.pending, self.currency)

    @property
    def paid_label(self) -> str:
        return format_money(self.paid, self.currency)

    @property
    def reversed_label(self) -> str:
        return format_money(self.reversed, self.currency)


def _grouped(rows: QuerySet[Commission], *keys: str) -> list[dict[str, Any]]:
    """Ledger sums per ``keys`` and currency, in one query (never summed across currencies)."""
    return list(rows.values(*keys, "currency").annotate(**_ledger_sums()).order_by(*keys, "currency"))


def ledger_totals(rows: QuerySet[Commission] | None = None) -> list[LedgerFigures]:
    """The whole ledger (or ``rows``), one line per currency."""
    return [LedgerFigures.from_row(row) for row in _grouped(Commission.objects.all() if rows is None else rows)]


@dataclass(frozen=True)
class CommissionLine:
    """One commission as a list shows it: its offer, amount, status, what was reversed."""

    commission: Commission

    @property
    def offer(self) -> Offer:
        return self.commission.attribution.link.offer

    @property
    def at(self) -> datetime:
        return self.commission.payment.paid_at or self.commission.created_at

    @property
    def status(self) -> str:
        return str(self.commission.status)

    @property
    def status_label(self) -> str:
        commission = self.commission
        if commission.status == Commission.Status.PENDING:
            return f"Pending until {date_format(timezone.localtime(commission.hold_until), 'M j, Y')}"
        return str(commission.status.label)

    @property
    def partly_reversed(self) -> bool:
        return 0 < self.commission.amount_reversed < self.commission.amount

    @property
    def reversed_label(self) -> str:
        return format_money(self.commission.amount_reversed, self.commission.currency)


def _lines() -> QuerySet[Commission]:
    return Commission.objects.select_related("payment", "attribution__link__offer")


@dataclass(frozen=True)
class LinkLedger:
    """A partner's link with its counts (clicks, checkouts, sales) and its commissions."""

    link: ReferralLink
    figures: list[LedgerFigures]


@dataclass(frozen=True)
class PartnerLedger:
    """What a partner sees of their commissions on Become a Partner."""

    links: list[LinkLedger]
    totals: list[LedgerFigures]
    recent: list[CommissionLine]

    @property
    def next_payout(self) -> datetime | None:
        """When the next payout is due: the end of the earliest hold of what is owed."""
        return min((f.next_payout for f in self.totals if f.next_payout is not None), default=None)

    @property
    def waiting(self) -> bool:
        """Something is owed to the partner and not yet paid."""
        return any(figures.pending > 0 for figures in self.totals)


RECENT_COMMISSIONS = 20


def partner_ledger(*, partner: Partner) -> PartnerLedger:
    """The partner's commissions: per link (every link of theirs, with its counts, whether its
    program is still open or not), their totals per currency and their latest commissions.
    Four queries whatever the rows."""
    rows = Commission.objects.filter(partner=partner)
    by_link: dict[int, list[LedgerFigures]] = {}
    for row in _grouped(rows, "attribution__link_id"):
        by_link.setdefault(row["attribution__link_id"], []).append(LedgerFigures.from_row(row))
    links = links_with_counts().filter(partner=partner).order_by("offer__title", "pk")
    recent = (
        _lines()
        .filter(partner=partner)
        .order_by(F("payment__paid_at").desc(nulls_last=True), "-created_at", "-pk")[:RECENT_COMMISSIONS]
    )
    return PartnerLedger(
        links=[
            LinkLedger(link=link, figures=by_link.get(link.pk) or [LedgerFigures(currency=link.offer.currency)])
            for link in links
        ],
        totals=ledger_totals(rows),
        recent=[CommissionLine(commission) for commission in recent],
    )


@dataclass(frozen=True)
class PartnerRow:
    """A partner on the creator's Affiliates page: their links, their commissions per
    currency, and the transfers to them that Stripe refused."""

    partner: Partner
    figures: list[LedgerFigures]
    refused: list[CommissionLine]


@dataclass(frozen=True)
class OfferLedger:
    offer_id: int
    title: str
    figures: LedgerFigures


@dataclass(frozen=True)
class CreatorLedger:
    """The creator's Affiliates page: every partner, every offer, and the totals per currency."""

    partners: list[PartnerRow]
    offers: list[OfferLedger]
    totals: list[LedgerFigures]

    @property
    def refused_count(self) -> int:
        return sum(len(row.refused) for row in self.partners)


def transfers_refused() -> QuerySet[Commission]:
    """Commissions whose last transfer Stripe refused, still owed (tried again later)."""
    return (
        _lines()
        .filter(transfer_id="", attempts__gt=0, amount__gt=F("amount_reversed"))
        .exclude(last_error="")
        .order_by("next_attempt_at", "pk")
    )


def creator_ledger() -> CreatorLedger:
    """Everything the creator's Affiliates page shows, in a fixed number of queries."""
    per_partner: dict[int, list[LedgerFigures]] = {}
    for row in _grouped(Commission.objects.all(), "partner_id"):
        per_partner.setdefault(row["partner_id"], []).append(LedgerFigures.from_row(row))
    refused: dict[int, list[CommissionLine]] = {}
    for commission in transfers_refused():
        refused.setdefault(commission.partner_id, []).append(CommissionLine(commission))
    offers = [
        OfferLedger(
            offer_id=row["attribution__link__offer_id"],
            title=row["attribution__link__offer__title"],
            figures=LedgerFigures.from_row(row),
        )
        for row in _grouped(Commission.objects.all(), "attribution__link__offer__title", "attribution__link__offer_id")
    ]
    return CreatorLedger(
        partners=[
            PartnerRow(partner=partner, figures=per_partner.get(partner.pk, []), refused=refused.get(partner.pk, []))
            for partner in partners_for_creator()
        ],
        offers=offers,
        totals=ledger_totals(),
    )


def referred_subscriptions_live(*, partner: Partner) -> int:
    """How many subscriptions the partner referred Stripe may still charge (and so still pay
    a commission on): what Stop commissions changes."""
    return (
        StripeSubscription.objects.filter(attempt__attribution__link__partner=partner)
        .exclude(status__in=ENDED_SUBSCRIPTION_STATUSES)
        .count()
    )
