"""Writes for memberships: offers and entitlements."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.connection import ConnectionProxy

from accounts import mail, outbox
from accounts.models import OutboxMessage, User
from accounts.services import magic_link_create, user_access_added, user_get_or_create
from core.figures import figures_forget
from core.images import ProcessedImage
from core.slugs import unique_slug
from hubs.models import HubGroup
from memberships import emails, hooks
from memberships.models import Entitlement, EntitlementChange, GroupUpsellOffer, MemberJoin, Offer
from memberships.selectors import checkout_cache_key, community_path

# Rendered pages are cached in this process's memory (see the "local" cache in settings).
cache = ConnectionProxy(caches, "local")


@dataclass(frozen=True)
class OfferFields:
    """Every field of an offer that the editor writes, with the editor's defaults (a free offer).

    The one list of them: the editor's form, the services, duplication and the editor's
    initial values all go by these fields.
    """

    title: str = ""
    description: str = ""
    pricing: Offer.Pricing = Offer.Pricing.FREE
    price_amount: int = 0
    currency: str = "usd"
    interval: Offer.Interval | Literal[""] = ""
    grace_period_days: int = 3
    refund_policy: Offer.RefundPolicy = Offer.RefundPolicy.REVOKE
    renewal_receipts: bool = True
    confirmation_subject: str = ""
    confirmation_body: str = ""
    redirect_enabled: bool = False
    redirect_url: str = ""
    resell_enabled: bool = False
    resell_commission_percent: int | None = None
    resell_description: str = ""
    custom_code: str = ""
    landing_enabled: bool = False
    landing_headline: str = ""
    landing_body: str = ""
    landing_includes: str = ""
    landing_cta_label: str = ""

    def __post_init__(self) -> None:
        # Rows and forms hold choices as plain strings; these hold the members (or refuse).
        object.__setattr__(self, "pricing", Offer.Pricing(self.pricing))
        object.__setattr__(self, "interval", Offer.Interval(self.interval) if self.interval else "")
        object.__setattr__(self, "refund_policy", Offer.RefundPolicy(self.refund_policy))

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(field.name for field in dataclasses.fields(cls))

    @classmethod
    def of(cls, offer: Offer) -> OfferFields:
        """The offer's current values."""
        return cls(**{name: getattr(offer, name) for name in cls.names()})


# --- Images --------------------------------------------------------------------------------------
def offer_image_store(*, image: ProcessedImage, role: str) -> str:
    """Store a re-encoded offer image through the storage API; returns its storage name.

    Called outside any database transaction (on S3 it is a network call). Names are random, so
    an image is never overwritten and pages can cache it for ever.
    """
    name = f"offers/{role}-{uuid.uuid4().hex}.{image.extension}"
    return default_storage.save(name, ContentFile(image.content))


# --- Offers --------------------------------------------------------------------------------------
def _forget_cached_pages(*slugs: str) -> None:
    keys = [checkout_cache_key(slug) for slug in slugs]
    transaction.on_commit(lambda: cache.delete_many(keys))
    figures_forget()  # the dashboard's figures show offers' titles, and Sales lists offers


@transaction.atomic
def offer_create(
    *,
    fields: OfferFields,
    hub_groups: list[HubGroup],
    slug: str = "",
    thumbnail: str = "",
    cover: str = "",
    kind: Offer.Kind = Offer.Kind.MEMBERSHIP,
) -> Offer:
    """Create a draft offer. ``thumbnail``/``cover`` are names from ``offer_image_store``."""
    for attempt in range(5):
        offer = Offer(
            kind=kind, status=Offer.Status.DRAFT, thumbnail=thumbnail, cover=cover, **dataclasses.asdict(fields)
        )
        offer.slug = slug or unique_slug(Offer.objects.all(), fields.title, fallback="offer", max_length=200)
        try:
            with transaction.atomic():
                offer.save()
            break
        except IntegrityError:
            # Another offer took the slug between the check and the insert.
            if slug:
                raise OfferSlugTaken(slug) from None
            if attempt == 4:
                raise
    offer.hub_groups.set(hub_groups)
    hooks.offer_changed(offer)
    return offer


class OfferSlugTaken(Exception):
    """Another offer took the address between the form's check and the save."""


@transaction.atomic
def offer_update(
    *,
    offer: Offer,
    hub_groups: list[HubGroup],
    fields: OfferFields | None = None,
    slug: str = "",
    thumbnail: str = "",
    cover: str = "",
    remove_cover: bool = False,
) -> Offer:
    """Save the editor's values (``fields`` None: the offer's stay). New hub groups apply to
    every existing buyer at once, because access is derived from the offer's groups
    (hubs.selectors), never copied per buyer."""
    offer = Offer.objects.select_for_update().get(pk=offer.pk)
    _forget_cached_pages(offer.slug, slug or offer.slug)
    if fields is not None:
        for name, value in dataclasses.asdict(fields).items():
            setattr(offer, name, value)
    if slug:
        offer.slug = slug
    if thumbnail:
        offer.thumbnail = thumbnail
    if cover:
        offer.cover = cover
    elif remove_cover:
        offer.cover = ""
    try:
        with transaction.atomic():
            offer.save()
    except IntegrityError:
        if slug and Offer.objects.filter(slug=slug).exclude(pk=offer.pk).exists():
            raise OfferSlugTaken(slug) from None
        raise
    offer.hub_groups.set(hub_groups)
    hooks.offer_changed(offer)
    return offer


class OfferNotPublishable(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class PublishProblem:
    field: str  # the editor's field it is about
    message: str  # in the creator's words

    def __str__(self) -> str:
        return self.message


def offer_publish_problems(
    *,
    offer: Offer,
    hub_groups: Iterable[HubGroup] | None = None,
    pricing: Offer.Pricing | None = None,
    published: bool = False,
) -> list[PublishProblem]:
    """The publish rules, in one place: what stands between an offer and publishing (empty:
    nothing). The editor asks about the values it is about to save on an offer that is
    ``published`` already (``hub_groups``, ``pricing``); otherwise the offer's own are checked.

    Whether paid offers can be sold (a Stripe account) is asked of billing through ``hooks``.
    """
    problems = []
    has_groups = offer.hub_groups.exists() if hub_groups is None else bool(list(hub_groups))
    if not has_groups:
        problems.append(
            PublishProblem(
                "hub_groups",
                "A published offer needs at least one hub group. Unpublish it first to remove them all."
                if published
                else "Choose at least one hub group under Community permissions.",
            )
        )
    if not offer.thumbnail:
        problems.append(PublishProblem("thumbnail", "Upload a thumbnail."))
    if (pricing or offer.pricing) != Offer.Pricing.FREE and not hooks.paid_offers_sellable():
        problems.append(
            PublishProblem(
                "pricing",
                "Connect a Stripe account (Settings > Integrations) before making a published offer paid, "
                "or unpublish it first."
                if published
                else "Connect a Stripe account (Settings > Integrations) before publishing a paid offer, "
                "or make it free.",
            )
        )
    return problems


@transaction.atomic
def offer_publish(*, offer: Offer) -> Offer:
    offer = Offer.objects.select_for_update().get(pk=offer.pk)
    problems = offer_publish_problems(offer=offer)
    if problems:
        raise OfferNotPublishable([problem.message for problem in problems])
    offer.status = Offer.Status.PUBLISHED
    offer.save(update_fields=["status", "updated_at"])
    _forget_cached_pages(offer.slug)
    hooks.offer_changed(offer)
    return offer


def _offer_withdraw(offer: Offer, status: Offer.Status) -> Offer:
    Offer.objects.filter(pk=offer.pk).update(status=status, updated_at=timezone.now())
    offer.refresh_from_db()
    _forget_cached_pages(offer.slug)
    return offer


@transaction.atomic
def offer_unpublish(*, offer: Offer) -> Offer:
    """Back to draft: the public pages answer 404; buyers keep their access."""
    return _offer_withdraw(offer, Offer.Status.DRAFT)


@transaction.atomic
def offer_archive(*, offer: Offer) -> Offer:
    """Hide an offer from the list and the public; buyers keep their access."""
    return _offer_withdraw(offer, Offer.Status.ARCHIVED)


@transaction.atomic
def offer_duplicate(*, offer: Offer) -> Offer:
    """A draft copy with the same settings and groups, its own address and no Stripe ids."""
    return offer_create(
        fields=replace(OfferFields.of(offer), title=f"Copy of {offer.title}"[:200]),
        hub_groups=list(offer.hub_groups.all()),
        thumbnail=offer.thumbnail.name or "",
        cover=offer.cover.name or "",
        kind=Offer.Kind(offer.kind),
    )


# --- Upsells ------------------------------------------------------------------------------------
@transaction.atomic
def group_upsell_offer_set(*, group: HubGroup, offer: Offer | None) -> None:
    """Choose the offer a group's popup upsell sells (None: none). Whether it may be chosen is
    the group editor's check (``memberships.panels.UpsellOfferPart``); the paywall shows it
    only while it is published and sells the group."""
    if offer is None:
        GroupUpsellOffer.objects.filter(group=group).delete()
    else:
        GroupUpsellOffer.objects.update_or_create(group=group, defaults={"offer": offer})


# --- Entitlements -------------------------------------------------------------------------------
@transaction.atomic
def entitlement_grant(
    *,
    user: User,
    offer: Offer,
    source: Entitlement.Source,
    access_until: datetime | None = None,
    new_account: bool = False,
) -> tuple[Entitlement, bool]:
    """Give ``user`` the offer (a free claim, a purchase, a subscription start or renewal).

    Idempotent and race-safe: the (user, offer) unique key decides, so any number of
    concurrent calls make one entitlement and exactly one of them reports ``granted`` (which
    sends the confirmation email). Calling it for an entitlement that had ended starts it again
    and counts as a new grant.

    A grant to an account whose email is unproven ends the account's sessions
    (``user_access_added``), unless the same claim or purchase just made the account
    (``new_account``): then no session exists yet, and that browser may be logged in.
    """
    entitlement, created = Entitlement.objects.get_or_create(
        user=user,
        offer=offer,
        defaults={"source": source, "status": Entitlement.Status.ACTIVE, "access_until": access_until},
    )
    granted = created
    if not created:
        # Lock the row so that a concurrent grant and a revoke cannot interleave.
        entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
        was_active = entitlement.status in Entitlement.ACCESS_STATUSES and (
            entitlement.access_until is None or entitlement.access_until > timezone.now()
        )
        entitlement.status = Entitlement.Status.ACTIVE
        entitlement.access_until = access_until
        entitlement.ended_at = None
        if not was_active:
            entitlement.source = source
            entitlement.started_at = timezone.now()
            granted = True
        entitlement.save(update_fields=["status", "access_until", "ended_at", "source", "started_at", "updated_at"])
    figures_forget()
    if created and not entitlement.is_test:
        member_joined(user_id=user.pk, at=entitlement.started_at)
    if granted and not new_account:
        user_access_added(user=user)
    if granted:
        # One email per grant, recorded with it: a replayed event or a racing duplicate finds
        # the same key, and a broker outage at commit leaves the row to the sweep.
        grant = int(entitlement.started_at.timestamp() * 1_000_000)
        outbox.outbox_email_record(
            key=f"confirmation:{entitlement.pk}:{grant}", email="offer_confirmation", entitlement=entitlement.pk
        )
    return entitlement, granted


def member_joined(*, user_id: int, at: datetime) -> None:
    """Note that ``user_id`` was a member at ``at`` (an entitlement started, a first payment):
    their ``MemberJoin`` is created, or moved earlier, never later. Race-free: the insert
    ignores an existing row and the update only ever lowers it."""
    MemberJoin.objects.bulk_create([MemberJoin(user_id=user_id, joined_at=at)], ignore_conflicts=True)
    MemberJoin.objects.filter(user_id=user_id, joined_at__gt=at).update(joined_at=at)
    figures_forget()


# Stripe renews a subscription at the period's end but charges its invoice up to about an hour
# later; the leeway keeps a paying member's access from blinking out in between.
RENEWAL_LEEWAY = timedelta(hours=2)


@transaction.atomic
def entitlement_extend(
    *, user: User, offer: Offer, period_end: datetime | None, new_account: bool = False
) -> tuple[Entitlement, bool]:
    """Grant or extend a subscription's access to the paid period's end plus ``RENEWAL_LEEWAY``.

    Periods may be reported out of order: an older one never shortens access. Without a
    period end the access has no end until the subscription's end is recorded.
    """
    access_until = (period_end + RENEWAL_LEEWAY) if period_end else None
    current = Entitlement.objects.filter(user=user, offer=offer).first()
    if access_until and current and current.access_until and current.access_until > access_until:
        access_until = current.access_until
    return entitlement_grant(
        user=user,
        offer=offer,
        source=Entitlement.Source.SUBSCRIPTION,
        access_until=access_until,
        new_account=new_account,
    )


@transaction.atomic
def entitlement_end(*, entitlement: Entitlement, status: Entitlement.Status) -> Entitlement:
    """Take access away (refund, dispute, cancellation at its end, suspension)."""
    entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
    entitlement.status = status
    entitlement.ended_at = timezone.now()
    entitlement.save(update_fields=["status", "ended_at", "updated_at"])
    figures_forget()
    return entitlement


@dataclass(frozen=True)
class EntitlementState:
    """What a paid entitlement should be, as billing computes it from Stripe's objects."""

    status: Entitlement.Status
    source: Entitlement.Source
    backed_by: str
    access_until: datetime | None = None
    renews_at: datetime | None = None
    cancel_at_period_end: bool = False
    # Backed by a creator's test purchase (left out of buyer counts).
    is_test: bool = False

    def gives_access(self, now: datetime) -> bool:
        return self.status in Entitlement.ACCESS_STATUSES and (self.access_until is None or self.access_until > now)


# Why access was taken away, as the revocation email says it (``access_revoked``'s reason).
REVOCATION_REASONS: dict[str, str] = {
    Entitlement.Status.REFUNDED: "refund",
    Entitlement.Status.DISPUTED: "disputed",
    Entitlement.Status.DISPUTE_LOST: "dispute_lost",
    Entitlement.Status.CANCELED: "canceled",
    Entitlement.Status.PAST_DUE: "payment_failed",
}


@dataclass(frozen=True)
class Applied:
    entitlement: Entitlement
    changed: bool
    granted: bool  # the state gives access that the entitlement did not give before
    revoked: bool  # the entitlement gave access and the state takes it away


@transaction.atomic
def entitlement_apply(
    *,
    user: User,
    offer: Offer,
    state: EntitlementState,
    reason: str,
    event_id: str = "",
    by: User | None = None,
    new_account: bool = False,
    now: datetime | None = None,
) -> Applied:
    """Bring the (user, offer) entitlement to ``state``, recording what changed and sending the
    emails the change calls for, each under a key of its own so that a replay sends nothing.

    Idempotent: the same state again changes nothing and records nothing. A state with a new
    backing that gives access is a purchase: it (re)starts the entitlement and sends the
    confirmation email, once per purchase. Access coming back sends ``access_restored``;
    access taken away for a refund, a dispute or a cancellation sends ``access_revoked``.
    """
    now = now or timezone.now()
    entitlement, created = Entitlement.objects.get_or_create(
        user=user,
        offer=offer,
        defaults={
            "source": state.source,
            "status": state.status,
            "access_until": state.access_until,
            "backed_by": state.backed_by,
            "renews_at": state.renews_at,
            "cancel_at_period_end": state.cancel_at_period_end,
            "is_test": state.is_test,
            "started_at": now,
        },
    )
    before_status = "" if created else entitlement.status
    before_until = None if created else entitlement.access_until
    was_test = entitlement.is_test
    had_access = False
    if not created:
        entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
        had_access = entitlement.has_access(now)
        unchanged = (
            entitlement.status == state.status
            and entitlement.access_until == state.access_until
            and entitlement.backed_by == state.backed_by
            and entitlement.renews_at == state.renews_at
            and entitlement.cancel_at_period_end == state.cancel_at_period_end
            and entitlement.is_test == state.is_test
        )
        if unchanged:
            return Applied(entitlement, changed=False, granted=False, revoked=False)
        if state.gives_access(now) and not had_access and entitlement.backed_by != state.backed_by:
            entitlement.started_at = now  # a new purchase restarts the entitlement
        entitlement.status = state.status
        entitlement.source = state.source
        entitlement.access_until = state.access_until
        entitlement.backed_by = state.backed_by
        entitlement.renews_at = state.renews_at
        entitlement.cancel_at_period_end = state.cancel_at_period_end
        entitlement.is_test = state.is_test
        if state.gives_access(now):
            entitlement.ended_at = None
        elif had_access or entitlement.ended_at is None:
            entitlement.ended_at = now
        entitlement.save()
    gives_access = state.gives_access(now)
    if created and not gives_access:
        entitlement.ended_at = now
        entitlement.save(update_fields=["ended_at"])
    figures_forget()
    if not entitlement.is_test and (created or was_test):
        # A test purchase is no membership: one that becomes real (bought for real) joins now.
        member_joined(user_id=user.pk, at=entitlement.started_at if created else now)
    change = EntitlementChange.objects.create(
        entitlement=entitlement,
        at=now,
        status_before=before_status,
        status_after=state.status,
        access_until_before=before_until,
        access_until_after=state.access_until,
        reason=reason[:300],
        event_id=event_id[:255],
        by=by,
    )
    granted = gives_access and not had_access
    revoked = had_access and not gives_access
    purchase_key = f"confirmation:{entitlement.pk}:{state.backed_by}"
    if gives_access and not OutboxMessage.objects.filter(key=purchase_key).exists():
        # The first grant under this backing is the purchase: its confirmation, once.
        outbox.outbox_email_record(key=purchase_key, email="offer_confirmation", entitlement=entitlement.pk)
    elif granted:
        outbox.outbox_email_record(
            key=f"restored:{entitlement.pk}:{change.pk}", email="access_restored", entitlement=entitlement.pk
        )
    if revoked and state.status in REVOCATION_REASONS:
        outbox.outbox_email_record(
            key=f"revoked:{entitlement.pk}:{change.pk}",
            email="access_revoked",
            entitlement=entitlement.pk,
            reason=REVOCATION_REASONS[state.status],
        )
    if granted and not new_account:
        user_access_added(user=user)
    return Applied(entitlement, changed=True, granted=granted, revoked=revoked)


@transaction.atomic
def entitlement_note(
    *, entitlement: Entitlement, reason: str, by: User | None = None, event_id: str = "", request_key: str = ""
) -> bool:
    """Record in the entitlement's history something that did not change it (a partial refund,
    a cancellation requested and not yet confirmed by Stripe). With a ``request_key`` the same
    request is noted once (the database's unique key decides): returns False for a repeat."""
    try:
        with transaction.atomic():
            EntitlementChange.objects.create(
                entitlement=entitlement,
                status_before=entitlement.status,
                status_after=entitlement.status,
                access_until_before=entitlement.access_until,
                access_until_after=entitlement.access_until,
                reason=reason[:300],
                event_id=event_id[:255],
                by=by,
                request_key=request_key[:64],
            )
    except IntegrityError:
        return False
    return True


class OfferNotClaimable(Exception):
    pass


@dataclass(frozen=True)
class FreeClaim:
    user: User
    entitlement: Entitlement
    granted: bool
    # True when this claim made the account: only then may the claiming browser be logged in.
    new_account: bool
    # True when the claim ended the account's sessions (an unproven account got something new),
    # the claiming browser's own session included.
    sessions_ended: bool = False


@transaction.atomic
def offer_claim_free(*, offer: Offer, email: str, full_name: str = "") -> FreeClaim:
    """A free offer claimed with an email address: the account is found or made, then granted.

    Claiming again is harmless: one entitlement, one confirmation email.
    """
    offer = Offer.objects.get(pk=offer.pk)
    if not offer.is_free or not offer.is_published:
        raise OfferNotClaimable("This offer cannot be claimed for free.")
    user, created = user_get_or_create(email=email, full_name=full_name)
    if not user.is_active:
        raise OfferNotClaimable("The account with this email address is closed.")
    generation = user.session_generation
    entitlement, granted = entitlement_grant(
        user=user, offer=offer, source=Entitlement.Source.FREE, new_account=created
    )
    return FreeClaim(
        user=user,
        entitlement=entitlement,
        granted=granted,
        new_account=created,
        sessions_ended=user.session_generation != generation,  # user_sessions_end updates ``user``
    )


# --- Confirmation email ---------------------------------------------------------------------------
def confirmation_email_build(payload: dict[str, Any]) -> outbox.Email | None:
    """The outbox's builder of ``offer_confirmation`` rows (registered in ``MembershipsConfig``)."""
    entitlement = Entitlement.objects.select_related("user", "offer").filter(pk=payload["entitlement"]).first()
    if entitlement is None:
        return None
    return confirmation_email(entitlement=entitlement)


def confirmation_email_send(*, entitlement: Entitlement) -> None:
    email = confirmation_email(entitlement=entitlement)
    mail.send_message(to=email.to, subject=email.subject, text=email.text, html=email.html)


def confirmation_email(*, entitlement: Entitlement, login_link: str | None = None) -> outbox.Email:
    """The offer's confirmation email to its buyer, with a fresh single-use login link (or, for
    a copy shown to staff, ``login_link`` in its place, so that no working link is made)."""
    offer = entitlement.offer
    user = entitlement.user
    path = community_path(groups=list(offer.hub_groups.all()))
    values = {
        "buyer_name": user.full_name or user.email,
        "offer_title": offer.title,
        "login_link": login_link if login_link is not None else magic_link_create(user=user, next_url=path),
        "community_url": settings.SITE_URL + path,
    }
    if entitlement.source != Entitlement.Source.FREE:
        # What was paid, how often and when next, from billing (memberships.hooks).
        values.update(hooks.purchase_terms(entitlement))
        values["memberships_url"] = settings.SITE_URL + reverse("billing:my_memberships")
    rendered = emails.render_confirmation(
        subject=offer.confirmation_subject, body=offer.confirmation_body, values=values
    )
    return outbox.templated_email(to=user.email, name="offer_confirmation", context=rendered.__dict__)


def confirmation_email_send_test(*, to: User, offer_title: str, subject: str, body: str) -> None:
    """The editor's *Send me a test*: the current wording, filled with the creator's details."""
    values = {
        "buyer_name": to.full_name or to.email,
        "offer_title": offer_title or "Your offer",
        "login_link": settings.SITE_URL + reverse("accounts:login"),
        "community_url": settings.SITE_URL + reverse("accounts:home"),
    }
    rendered = emails.render_confirmation(subject=subject, body=body, values=values)
    context = {**rendered.__dict__, "subject": f"[Test] {rendered.subject}"}
    mail.send_templated(to=to.email, name="offer_confirmation", context=context)
