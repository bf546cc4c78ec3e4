"""What the authorization walk and the fuzz test share: every URL pattern of the project, read
from the resolver, and a small world of real objects to fill their path converters with."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import OutboxMessage, User
from accounts.services import magic_link_create
from affiliates.models import Attribution, Commission, Partner, ReferralLink
from billing.models import (
    OfferStripePrice,
    OneClickPurchase,
    Payment,
    StripeAccount,
    StripeSubscription,
    WebhookEvent,
)
from billing.services.checkout import checkout_attempt_create
from billing.services.checkout_tests import checkout_test_create
from hubs import services as hub_services
from hubs.models import HubGroup
from memberships.models import Entitlement, Offer
from memberships.services import entitlement_grant
from tests.billing.helpers import ACCOUNT_ID

PASSWORD = "correct-horse-battery"
ROLES = ("anonymous", "member", "other_buyer", "staff")


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full route as the resolver writes it, and its parameters."""

    route: str
    params: tuple[str, ...]


def routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                params = tuple(a or b for a, b in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route))
                found.append(Route(route=route, params=params))

    walk(get_resolver().url_patterns, "")
    return found


@dataclass
class World:
    member: User
    other_buyer: User
    staff: User
    offer: Offer
    other_offer: Offer
    group: HubGroup
    objects: dict[str, Any]


def build_world() -> World:
    """The member bought ``offer``, which opens ``group`` (a private group with a hub, a post
    and a comment by the member); the other buyer bought ``other_offer``, which opens another
    private group. Staff is the creator (staff and superuser, as ``seed_demo`` makes it)."""
    member = User.objects.create_user("member@example.com", PASSWORD, full_name="Mia Member")
    other_buyer = User.objects.create_user("other@example.com", PASSWORD, full_name="Oscar Other")
    staff = User.objects.create_user(
        "owner@example.com", PASSWORD, full_name="Olive Owner", is_staff=True, is_superuser=True
    )
    private = HubGroup.Permission.PRIVATE
    group = hub_services.hub_group_create(name="Inner Circle", permission=private, description="")
    other_group = hub_services.hub_group_create(name="Others", permission=private, description="")
    granted_group = hub_services.hub_group_create(name="Granted", permission=private, description="")
    hub = hub_services.hub_create(group=group, name="General")
    post = hub_services.post_create(hub=hub, author=member, title="Hello", body="A post by the member.")
    comment = hub_services.comment_create(post=post, author=member, body="A comment by the member.")
    account = StripeAccount.objects.create(account_id=ACCOUNT_ID, charges_enabled=True, payouts_enabled=True)
    offer = Offer.objects.create(
        title="Inner Circle",
        slug="inner-circle",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.ONE_TIME,
        price_amount=5000,
        currency="usd",
    )
    OfferStripePrice.objects.create(offer=offer, product_id="prod_walk", price_id="price_walk")
    # The offer has a partner program: the other buyer is a partner with a link to it; the
    # member proved their email and connected a Stripe account, so they may join it.
    Offer.objects.filter(pk=offer.pk).update(
        resell_enabled=True, resell_commission_percent=20, resell_description="Share it with **friends**."
    )
    partner = Partner.objects.create(user=other_buyer)
    link = ReferralLink.objects.create(partner=partner, offer=offer)
    User.objects.filter(pk=member.pk).update(email_verified_at=timezone.now())
    member.refresh_from_db()
    StripeAccount.objects.create(
        purpose=StripeAccount.Purpose.PARTNER, owner=member, account_id="acct_walk_partner", charges_enabled=True
    )
    offer.hub_groups.set([group])
    other_offer = Offer.objects.create(title="Others", slug="others", status=Offer.Status.PUBLISHED)
    other_offer.hub_groups.set([other_group])
    entitlement, _ = entitlement_grant(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    entitlement_grant(user=other_buyer, offer=other_offer, source=Entitlement.Source.FREE)
    grant = hub_services.access_grant_create(user=member, group=granted_group, granted_by=staff, note="walk")
    attempt = checkout_attempt_create(
        offer=offer, account=account, email=member.email, full_name=member.full_name, browser_key="walk"
    )
    # A one-click purchase of the member's whose saved card was declined.
    one_click = OneClickPurchase.objects.create(
        key=uuid.uuid4(),
        user=member,
        offer=offer,
        attempt=checkout_attempt_create(
            offer=offer, account=account, email=member.email, full_name=member.full_name, browser_key=""
        ),
        status=OneClickPurchase.Status.DECLINED,
        card_label="Visa •••• 0341",
        error="Your card was declined.",
    )
    event = WebhookEvent.objects.create(
        event_id="evt_walk", type="customer.created", payload={"id": "evt_walk"}, status=WebhookEvent.Status.FAILED
    )
    payment = Payment.objects.create(
        stripe_object_id="pi_walk",
        kind=Payment.Kind.ONE_TIME,
        stripe_account_id=account.account_id,
        amount=5000,
        currency="usd",
        user=member,
        offer=offer,
        attempt=attempt,
    )
    # The member's purchase came through the partner's link: its commission is pending, and
    # Stripe refused its transfer once, so both ledger pages show every part of it.
    Commission.objects.create(
        payment=payment,
        partner=partner,
        attribution=Attribution.objects.create(attempt=attempt, link=link, commission_percent=20),
        currency="usd",
        amount=1000,
        hold_until=timezone.now() - timedelta(days=1),
        attempts=1,
        last_error="Stripe refused the transfer: the platform's balance is too low.",
        next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    # The member also subscribes to a monthly offer (opening no group), ten days into its
    # period: the creator's Cancel page has a subscription to cancel.
    now = timezone.now()
    monthly = Offer.objects.create(
        title="Monthly",
        slug="monthly",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.RECURRING,
        interval=Offer.Interval.MONTH,
        price_amount=2500,
        currency="usd",
    )
    period_start, period_end = now - timedelta(days=10), now + timedelta(days=20)
    StripeSubscription.objects.create(
        subscription_id="sub_walk",
        stripe_account_id=account.account_id,
        customer_id="cus_walk",
        user=member,
        offer=monthly,
        status="active",
        current_period_start=period_start,
        current_period_end=period_end,
        created=period_start,
        synced_at=now,
    )
    Payment.objects.create(
        stripe_object_id="in_walk",
        kind=Payment.Kind.INVOICE,
        stripe_account_id=account.account_id,
        amount=2500,
        currency="usd",
        user=member,
        offer=monthly,
        payment_intent_id="pi_walk_sub",
        stripe_subscription_id="sub_walk",
        period_start=period_start,
        period_end=period_end,
        paid_at=period_start,
    )
    subscription_entitlement = Entitlement.objects.create(
        user=member,
        offer=monthly,
        source=Entitlement.Source.SUBSCRIPTION,
        backed_by="sub_walk",
        access_until=period_end,
        renews_at=period_end,
        started_at=period_start,
    )
    # Someone who asked for a password reset: logging the roles in leaves the link valid.
    forgetful = User.objects.create_user("forgetful@example.com", PASSWORD, full_name="Fay Forgetful")
    auth_group = Group.objects.create(name="Editors")
    token = magic_link_create(user=member).rstrip("/").rsplit("/", 1)[-1]
    # The creator made a test link for the offer, not used yet.
    test_purchase, test_link_path = checkout_test_create(offer=offer, by=staff, email="owner+test1@example.com")

    objects: dict[str, Any] = {
        "hubgroup": group,
        "hub": hub,
        "post": post,
        "comment": comment,
        "accessgrant": grant,
        "accessgrantevent": grant.events.first(),
        "offer": offer,
        "partner": partner,
        "entitlement": entitlement,
        "stripeaccount": account,
        "checkoutattempt": attempt,
        "oneclickpurchase": one_click,
        "webhookevent": event,
        "outboxmessage": OutboxMessage.objects.get(key__startswith=f"confirmation:{entitlement.pk}:"),
        "payment": payment,
        "subscription_entitlement": subscription_entitlement,
        "user": member,
        "group": auth_group,
        "magiclink": member.magic_links.first(),
        "token": token,
        "testpurchase": test_purchase,
        "link": test_link_path.rstrip("/").rsplit("/", 1)[-1],
        "uidb64": urlsafe_base64_encode(force_bytes(forgetful.pk)),
        "reset_token": default_token_generator.make_token(forgetful),
    }
    return World(
        member=member,
        other_buyer=other_buyer,
        staff=staff,
        offer=offer,
        other_offer=other_offer,
        group=group,
        objects=objects,
    )


class UnfilledParameter(LookupError):
    pass


# Which object a dashboard <id:pk> names, by the route's beginning.
PK_BY_PREFIX = {
    "dashboard/community/groups/": "hubgroup",
    "dashboard/community/hubs/": "hub",
    "dashboard/users/": "user",
    "dashboard/payments/": "payment",
    "dashboard/offers/": "offer",
    "account/memberships/": "entitlement",
    "dashboard/settings/integrations/stripe/events/": "webhookevent",
    "dashboard/settings/integrations/outbox/": "outboxmessage",
    "dashboard/affiliates/partners/": "partner",
    "dashboard/test-purchases/": "testpurchase",
    "partners/offers/": "offer",
}


def fill(route: Route, world: World) -> str:
    """A concrete URL for ``route``, naming real objects of ``world``."""
    o = world.objects
    admin_model = re.match(r"admin/(\w+)/(\w+)/", route.route)
    values: dict[str, str] = {}
    for name in route.params:
        if name == "pk":
            prefix = next((p for p in PK_BY_PREFIX if route.route.startswith(p)), None)
            if prefix is None:
                raise UnfilledParameter(name)
            values[name] = str(o[PK_BY_PREFIX[prefix]].pk)
        elif name == "object_id" and admin_model:
            model = admin_model.group(2)
            if model not in o or o[model] is None:
                raise UnfilledParameter(f"{name} of {model}")
            values[name] = str(o[model].pk)
        elif name == "object_id":  # admin/r/<content_type_id>/<object_id>/
            values[name] = str(world.group.pk)
        elif name == "content_type_id":
            values[name] = str(ContentType.objects.get_for_model(HubGroup).pk)
        elif name == "id" and admin_model:
            values[name] = str(world.member.pk)
        elif name == "app_label":
            values[name] = "hubs"
        elif name in ("url", "path"):
            values[name] = "nothing-here"
        elif name == "group_slug":
            values[name] = world.group.slug
        elif name == "hub_slug":
            values[name] = o["hub"].slug
        elif name == "post_id":
            values[name] = str(o["post"].pk)
        elif name == "comment_id":
            values[name] = str(o["comment"].pk)
        elif name == "entitlement_id":
            values[name] = str(o["subscription_entitlement"].pk)
        elif name == "grant_id":
            values[name] = str(o["accessgrant"].pk)
        elif name == "slug":
            values[name] = world.offer.slug
        elif name == "kind":
            values[name] = "membership"
        elif name == "attempt_id":
            values[name] = str(o["checkoutattempt"].pk)
        elif name == "key":
            values[name] = str(o["oneclickpurchase"].key)
        elif name == "token" and "password-reset" in route.route:
            values[name] = o["reset_token"]
        elif name == "token":
            values[name] = o["token"]
        elif name == "uidb64":
            values[name] = o["uidb64"]
        elif name == "link":
            values[name] = o["link"]
        else:
            raise UnfilledParameter(name)
    return "/" + _substitute(route.route, values)


def _substitute(route: str, values: dict[str, str]) -> str:
    if route.startswith("^") or "(?P<" in route:
        # A regular-expression pattern: fill its groups, drop its anchors.
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], route)
        return text.replace("^", "").replace("$", "")
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


@contextmanager
def rolled_back() -> Iterator[None]:
    """One request's writes, undone afterwards so that every request meets the same world.

    The block is the test's own, like the one a test case wraps each test in, so the gateway's
    refusal to call Stripe inside a transaction does not count it (as Django's durable check
    does not count the test case's).
    """
    block = transaction.atomic()
    block._from_testcase = True
    with block:
        yield
        transaction.set_rollback(True)
