"""Reads for memberships: the offers a page shows and what an edit would change."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from accounts.models import User
from core.figures import figures_cached
from hubs.models import AccessGrant, HubGroup
from memberships.models import Entitlement, Offer


# --- What memberships gives hubs ------------------------------------------------------------
def purchased_group_ids(*, user_id: int, now: datetime) -> QuerySet[Any]:
    """The access rule's purchase source: groups of offers the user holds an active
    entitlement to (``hubs.slots.ACCESS_SOURCES``; uses ``user_id`` and ``now`` once each)."""
    return Offer.hub_groups.through.objects.filter(
        offer__in=Entitlement.objects.active(now).filter(user_id=user_id).values("offer_id")
    ).values("hubgroup_id")


def upsell_offer_on_sale(*, group: HubGroup) -> Offer | None:
    """The offer a group's popup upsell sells, while it is published and still opens the group
    (the creator may have unpublished it or changed its groups since), in one query."""
    return Offer.objects.published().filter(upsells__group=group, hub_groups=group).first()


def upsell_offer_for(*, group: HubGroup) -> Offer | None:
    """The offer chosen for a group's popup upsell, whatever its state (the group editor)."""
    return Offer.objects.filter(upsells__group=group).first()


def offers_selling(*, group: HubGroup) -> list[str]:
    """Titles of the offers, archived ones aside, that sell ``group``."""
    return list(
        Offer.objects.filter(hub_groups=group)
        .exclude(status=Offer.Status.ARCHIVED)
        .order_by("title")
        .values_list("title", flat=True)
    )


@dataclass(frozen=True)
class Purchase:
    """One entitlement of a user, for the Users page: what it opens and whether it does today."""

    entitlement: Entitlement
    gives_access: bool
    groups: list[HubGroup]


def user_purchases(*, user: User) -> list[Purchase]:
    """Every entitlement of ``user``, live or not, newest first, in three queries."""
    entitlements = (
        Entitlement.objects.filter(user=user)
        .select_related("offer")
        .prefetch_related(Prefetch("offer__hub_groups", queryset=HubGroup.objects.order_by("position", "id")))
        .order_by("-started_at")
    )
    active = set(Entitlement.objects.active(timezone.now()).filter(user=user).values_list("pk", flat=True))
    return [
        Purchase(
            entitlement=entitlement,
            gives_access=entitlement.pk in active,
            groups=list(entitlement.offer.hub_groups.all()),
        )
        for entitlement in entitlements
    ]


def _buyer_counts() -> dict[int, int]:
    rows = Entitlement.objects.buyers().values("offer_id").annotate(buyers=Count("pk")).order_by()
    return {row["offer_id"]: row["buyers"] for row in rows}


def dashboard_offer_list(*, status: Offer.Status | None = None) -> list[Offer]:
    """The offers list: every offer with its ``buyer_count``, in two queries whatever their
    number, and a third for the counts. Counting every entitlement is the costly part, so the
    counts are cached like the dashboard's figures (core/figures.py): a grant, a change or an
    end of an entitlement forgets them, and they are at most ``FIGURES_CACHE_SECONDS`` old."""
    offers = Offer.objects.prefetch_related(
        Prefetch("hub_groups", queryset=HubGroup.objects.only("id", "name", "slug"))
    )
    offers = offers.filter(status=status) if status is not None else offers.exclude(status=Offer.Status.ARCHIVED)
    counts = figures_cached("offer-buyer-counts", _buyer_counts)
    listed = list(offers)
    for offer in listed:
        setattr(offer, "buyer_count", counts.get(offer.pk, 0))  # noqa: B010 - as annotate() would; Offer has no such field
    return listed


@dataclass(frozen=True)
class PublicOffer:
    offer: Offer
    is_preview: bool

    @cached_property
    def groups(self) -> list[HubGroup]:
        """The offer's hub groups, in one query when first needed (the landing page, and the
        checkout page's list of what the membership includes).

        Hidden groups are for staff only: never named on public pages nor used as a landing.
        """
        return list(self.offer.hub_groups.exclude(permission=HubGroup.Permission.HIDDEN))


def offer_for_visitor(*, slug: str, user: User | AnonymousUser) -> PublicOffer:
    """The offer behind a public page, in one query, or 404.

    Unpublished offers are a 404 to everyone but staff, who see them as a preview.
    """
    try:
        offer = Offer.objects.get(slug=slug)
    except Offer.DoesNotExist:
        raise Http404("No such offer.") from None
    is_staff = bool(user.is_authenticated and user.is_staff)
    if not offer.is_published and not is_staff:
        raise Http404("No such offer.")
    return PublicOffer(offer=offer, is_preview=not offer.is_published)


def checkout_cache_key(slug: str) -> str:
    return f"memberships:checkout-page:{slug}"


def community_path(*, groups: list[HubGroup]) -> str:
    """Where a buyer lands: the first hub group the offer grants, else the member home."""
    groups = [group for group in groups if group.permission != HubGroup.Permission.HIDDEN]
    if groups:
        return reverse("hubs:group", kwargs={"group_slug": groups[0].slug})
    return reverse("accounts:home")


@dataclass(frozen=True)
class Destination:
    url: str
    # The creator's own link (outside the community): no login happens on the way there.
    is_custom_link: bool


def offer_destination(*, offer: Offer, groups: Iterable[HubGroup]) -> Destination:
    """Where a buyer goes after a free claim or a paid purchase: the offer's custom link when
    enabled, else the community (``community_path``). ``groups`` is read only when needed."""
    if offer.redirect_enabled and offer.redirect_url:
        return Destination(url=offer.redirect_url, is_custom_link=True)
    return Destination(url=community_path(groups=list(groups)), is_custom_link=False)


def offer_buyer_count(*, offer: Offer) -> int:
    return Entitlement.objects.buyers().filter(offer=offer).count()


@dataclass(frozen=True)
class GroupChangeImpact:
    """What saving new hub groups on an offer does to its current buyers."""

    added: list[HubGroup]
    removed: list[HubGroup]
    buyers: int
    # For each removed private group: how many buyers lose it (nothing else gives it to them).
    losing: list[tuple[HubGroup, int]]

    @property
    def changes_access(self) -> bool:
        return bool(self.buyers and (self.added or self.removed))


def group_change_impact(*, offer: Offer, new_groups: Iterable[HubGroup]) -> GroupChangeImpact:
    """How many buyers a change of the offer's hub groups affects (two queries, plus one per
    removed private group)."""
    current = {group.pk: group for group in offer.hub_groups.all()} if offer.pk else {}
    new = {group.pk: group for group in new_groups}
    added = [group for pk, group in new.items() if pk not in current]
    removed = [group for pk, group in current.items() if pk not in new]
    if not offer.pk or not (added or removed):
        return GroupChangeImpact(added=added, removed=removed, buyers=0, losing=[])
    now = timezone.now()
    buyers = Entitlement.objects.buyers(now).filter(offer=offer)
    buyer_count = buyers.count()
    losing: list[tuple[HubGroup, int]] = []
    for group in removed:
        # Public groups stay open to everyone and hidden ones were never open to buyers.
        if not buyer_count or group.permission != HubGroup.Permission.PRIVATE:
            continue
        kept_by_offer = Entitlement.objects.active(now).filter(~Q(offer=offer), offer__hub_groups=group)
        kept_by_grant = AccessGrant.objects.active(now).filter(group=group)
        count = (
            buyers.exclude(user__in=kept_by_offer.values("user_id"))
            .exclude(user__in=kept_by_grant.values("user_id"))
            .count()
        )
        losing.append((group, count))
    return GroupChangeImpact(added=added, removed=removed, buyers=buyer_count, losing=losing)


# --- Entitlements --------------------------------------------------------------------------------
def entitlement_active_for(*, offer: Offer, email: str, user: User | AnonymousUser) -> bool:
    """Whether the buyer (the logged-in user, or the account with this email) already has the offer."""
    who = Q(user__email=email)
    if user.is_authenticated:
        who |= Q(user=user)
    return Entitlement.objects.active().filter(who, offer=offer).exists()


def active_subscriber_count() -> int:
    """Members whose access runs on a subscription."""
    return Entitlement.objects.active().filter(source=Entitlement.Source.SUBSCRIPTION).count()


def _effective_status_filter(status: str, now: datetime) -> Q:
    """Entitlements whose ``Entitlement.effective_status`` at ``now`` is ``status``, in SQL."""
    S = Entitlement.Status
    running = Q(access_until__isnull=True) | Q(access_until__gt=now)
    ran_out = Q(access_until__lte=now)
    if status in (S.ACTIVE, S.PAST_DUE):
        return Q(status=status) & running
    if status == S.EXPIRED:
        return Q(status=S.ACTIVE) & ran_out
    if status == S.SUSPENDED:
        return Q(status=S.SUSPENDED) | (Q(status=S.PAST_DUE) & ran_out)
    return Q(status=status)


def buyers_listed(
    *, offer: Offer | None = None, status: str = "", now: datetime | None = None
) -> QuerySet[Entitlement]:
    """The Users page's buyers: one row per entitlement (free claims included, test purchases
    aside), newest first, with the user and the offer; of one offer or all, in one effective
    status or any."""
    now = now or timezone.now()
    entitlements = Entitlement.objects.filter(is_test=False)
    if offer is not None:
        entitlements = entitlements.filter(offer=offer)
    if status:
        entitlements = entitlements.filter(_effective_status_filter(status, now))
    return entitlements.select_related("user", "offer").order_by("-started_at", "-pk")


BUYERS_CSV_HEADER = ("Name", "Email", "Offer", "Status", "Source", "Started", "Access until", "Renews")
EXPORT_CHUNK = 2000


def buyers_csv_rows(
    *, offer: Offer | None = None, status: str = "", now: datetime | None = None
) -> Iterator[list[str]]:
    """The buyers export's rows, read in chunks (``iterator``): constant memory whatever the count."""
    now = now or timezone.now()
    zone = timezone.get_default_timezone()
    rows = (
        buyers_listed(offer=offer, status=status, now=now)
        .order_by("started_at", "pk")
        .values_list(
            "user__full_name",
            "user__email",
            "offer__title",
            "status",
            "source",
            "started_at",
            "access_until",
            "renews_at",
        )
    )
    sources = dict(Entitlement.Source.choices)

    def moment(value: datetime | None) -> str:
        return value.astimezone(zone).isoformat(timespec="seconds") if value else ""

    for name, email, title, stored, source, started_at, access_until, renews_at in rows.iterator(
        chunk_size=EXPORT_CHUNK
    ):
        shown = Entitlement(status=stored, access_until=access_until).effective_status_label(now)
        yield [
            name,
            email,
            title,
            shown,
            sources.get(source, source),
            moment(started_at),
            moment(access_until),
            moment(renews_at),
        ]
