"""Rows for the tests: hub groups and their posts and grants, offers, buyers, a connected Stripe
account, checkout attempts.

Each factory saves a row with the ORM and returns it, with defaults that make a valid graph:
a group has a hub, a published offer sells a group and has a thumbnail, a buyer holds an
entitlement. Keyword arguments override the defaults. Only rows whose bookkeeping a service
keeps (a post's rendered body, an access grant's history, a checkout attempt's price snapshot)
are made through that service.

The personas (``owner``, ``member``, ``outsider``) are fixtures in ``tests/conftest.py``; the
``stripe_account`` fixture there connects an account through ``stripe_account`` below.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from accounts.models import User
from billing.models import CheckoutAttempt, OfferStripePrice, StripeAccount
from core import images
from core.slugs import unique_slug
from hubs import services as hub_services
from hubs.models import AccessGrant, Hub, HubGroup, Post
from memberships import services as membership_services
from memberships.models import Entitlement, Offer

# The Stripe account id the signed test events carry (tests/billing/helpers.py).
ACCOUNT_ID = "acct_1CreatorTest000"

# Numbers for default names and addresses, unique within a test run.
_numbers = itertools.count(1)


# --- Images --------------------------------------------------------------------------------------
def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    picture = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    out = io.BytesIO()
    picture.save(out, format=fmt, **save)
    return out.getvalue()


def stored_image(role: str = "thumbnail") -> str:
    """An offer image re-encoded and stored as an upload is; returns its storage name."""
    data = io.BytesIO(image_bytes(size=(700, 700)))
    processed = images.process_image(data, size=len(data.getvalue()), variant=images.THUMBNAIL)
    return membership_services.offer_image_store(image=processed, role=role)


# --- Community -----------------------------------------------------------------------------------
def group(name: str = "", permission: str = HubGroup.Permission.PRIVATE, *, hub: str = "General") -> HubGroup:
    """A hub group after the existing ones, with one hub named ``hub`` (``""``: no hub)."""
    name = name or f"Group {next(_numbers)}"
    last = HubGroup.objects.order_by("-position").values_list("position", flat=True).first()
    made = HubGroup.objects.create(
        name=name,
        slug=unique_slug(HubGroup.objects.all(), name, fallback="group", max_length=140),
        description=f"About {name}.",
        permission=permission,
        position=0 if last is None else last + 1,
    )
    if hub:
        Hub.objects.create(group=made, name=hub, slug=slugify(hub) or "hub")
    return made


def post(group: HubGroup, author: User, body: str = "A secret recipe for members") -> Post:
    """A post in the group's first hub, its body rendered by the service as the editor's is."""
    hub = group.hubs.order_by("position", "id").first()
    assert hub is not None, f"{group} has no hub"
    return hub_services.post_create(hub=hub, author=author, title="", body=body)


def access_grant(user: User, group: HubGroup, *, expired: bool = False, revoked: bool = False) -> AccessGrant:
    """A staff grant of ``group`` to ``user`` with its history row (through the service),
    optionally expired a minute ago or revoked."""
    made = hub_services.access_grant_create(user=user, group=group, granted_by=None, note="test")
    if expired:
        AccessGrant.objects.filter(pk=made.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    if revoked:
        hub_services.access_grant_revoke(grant=made, revoked_by=None)
    return made


# --- Memberships ---------------------------------------------------------------------------------
def offer(
    title: str = "Inner Circle",
    *,
    groups: Sequence[HubGroup] | None = None,
    status: str = Offer.Status.PUBLISHED,
    thumbnail: bool = True,
    slug: str = "",
    **fields: Any,
) -> Offer:
    """An offer (free unless ``fields`` say otherwise) selling ``groups``, by default a new group
    of its own, at a free address made from its title."""
    made = Offer.objects.create(
        title=title,
        slug=slug or unique_slug(Offer.objects.all(), title, fallback="offer", max_length=200),
        status=status,
        thumbnail=stored_image() if thumbnail else "",
        **fields,
    )
    made.hub_groups.set([group()] if groups is None else groups)
    return made


def paid_offer(*, recurring: bool = False, amount: int = 5000, **fields: Any) -> Offer:
    """A published paid offer (one-time, or monthly when ``recurring``) already synced to Stripe."""
    made = offer(
        pricing=Offer.Pricing.RECURRING if recurring else Offer.Pricing.ONE_TIME,
        interval=Offer.Interval.MONTH if recurring else "",
        price_amount=amount,
        currency="usd",
        **fields,
    )
    OfferStripePrice.objects.create(offer=made, product_id="prod_test", price_id="price_test")
    return made


def buyer(offer: Offer, email: str = "") -> User:
    """A user who claimed ``offer`` for free and has not logged in since."""
    user = User.objects.create_user(email or f"buyer{next(_numbers)}@example.com", full_name="Bea Buyer")
    Entitlement.objects.create(user=user, offer=offer, source=Entitlement.Source.FREE)
    return user


# --- Billing -------------------------------------------------------------------------------------
def stripe_account(*, charges_enabled: bool = True, account_id: str = ACCOUNT_ID) -> StripeAccount:
    """The creator's connected Stripe account; by default it takes payments."""
    return StripeAccount.objects.create(
        account_id=account_id, charges_enabled=charges_enabled, payouts_enabled=charges_enabled
    )


def checkout_attempt(offer: Offer, *, email: str = "buyer@example.com", browser_key: str = "key") -> CheckoutAttempt:
    """A buyer's checkout attempt on the connected account, priced as the service snapshots it."""
    from billing.services.checkout import checkout_attempt_create

    account = StripeAccount.objects.creator().get()
    return checkout_attempt_create(
        offer=offer, account=account, email=email, full_name="Bea Buyer", browser_key=browser_key
    )
