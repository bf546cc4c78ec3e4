"""A small, lived-in site for the browser tests of layout and accessibility: a creator with a
connected Stripe account, offers (free with a landing page, paid, with resell rights), a member
with a subscription and a one-time purchase, a community with posts, a partner, the member a
partner too with commissions; and the pages of the site, each with the persona it is for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from affiliates.models import Attribution, Commission, Partner, ReferralLink
from billing.models import Payment, StripeAccount, TestPurchase
from billing.services.checkout import checkout_attempt_create
from billing.services.checkout_tests import checkout_test_create
from billing.services.webhooks import webhook_refusal_record
from hubs.models import HubGroup
from memberships.models import Offer
from tests import factories
from tests.affiliates.conftest import partner_account, resell_offer
from tests.billing.test_my_memberships import Subscription, one_time


@dataclass(frozen=True)
class Visit:
    """A page, who it is for ("anonymous", "member" or "owner"), and the status it answers."""

    name: str
    path: str
    who: str
    status: int = 200


@dataclass
class World:
    owner: User
    member: User
    free_offer: Offer
    paid_offer: Offer
    subscription: Subscription
    # A test purchase of the paid offer, and the path of its link.
    test_purchase: TestPurchase
    test_link: str

    @property
    def group(self) -> HubGroup:
        return self.subscription.offer.hub_groups.get()

    def visits(self) -> list[Visit]:
        group = self.group
        hub = group.hubs.get()
        return [
            Visit("login", "/accounts/login/", "anonymous"),
            Visit("offer page", f"/offers/{self.free_offer.slug}/", "anonymous"),
            Visit("checkout", f"/offers/{self.free_offer.slug}/checkout/", "anonymous"),
            Visit("paid checkout", f"/offers/{self.paid_offer.slug}/checkout/", "anonymous"),
            Visit("a test link's checkout", self.test_link, "anonymous"),
            Visit("member home", "/home/", "member"),
            Visit("community", "/community/", "member"),
            Visit("hub page", f"/community/{group.slug}/{hub.slug}/", "member"),
            Visit("a paywall", f"/community/{self.free_offer.hub_groups.get().slug}/", "member", status=403),
            Visit("My memberships", "/account/memberships/", "member"),
            Visit("Become a Partner", "/partners/", "member"),
            Visit("Overview", "/dashboard/", "owner"),
            Visit("Offers list", "/dashboard/offers/", "owner"),
            Visit("offer editor", f"/dashboard/offers/{self.paid_offer.pk}/", "owner"),
            Visit("Test purchase", f"/dashboard/offers/{self.paid_offer.pk}/test-purchase/", "owner"),
            Visit("a test purchase's checklist", f"/dashboard/test-purchases/{self.test_purchase.pk}/", "owner"),
            Visit("Community (dashboard)", "/dashboard/community/", "owner"),
            Visit("a hub group's editor", f"/dashboard/community/groups/{group.pk}/", "owner"),
            Visit("Users", "/dashboard/users/", "owner"),
            Visit("a user", f"/dashboard/users/{self.member.pk}/", "owner"),
            Visit("Sales", "/dashboard/sales/", "owner"),
            Visit("Buyers", "/dashboard/users/buyers/", "owner"),
            Visit("Test purchase", f"/dashboard/offers/{self.paid_offer.pk}/test-purchase/", "owner"),
            Visit("Affiliates", "/dashboard/affiliates/", "owner"),
            Visit("Integrations", "/dashboard/settings/integrations/", "owner"),
            Visit("Stripe events", "/dashboard/settings/integrations/stripe/events/", "owner"),
        ]


@pytest.fixture
def world(owner: User, member: User, stripe_account: Any, settings: Any, tmp_path: Any) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    member.email = "a.rather.long.address.for.a.phone@example.com"
    member.save(update_fields=["email"])
    subscription = Subscription(member, title="The Morning Yoga Circle for Early Risers and Friends")
    one_time(member, title="Inner Circle")
    factories.access_grant(member, factories.group("Team Room"))
    for offer in (subscription.offer,):
        factories.post(offer.hub_groups.get(), owner, body="Welcome! Read https://example.com/" + "a" * 80)
    free_offer = factories.offer(
        "Open House",
        landing_enabled=True,
        landing_headline="Join the community, free",
        landing_body="Meet the other members and follow the **weekly threads**.",
        landing_cta_label="Join for free",
    )
    paid_offer = resell_offer(title="Workshop Pass")
    partner = User.objects.create_user(
        "pat@example.com", "correct-horse-battery", full_name="Pat Partner", email_verified_at=timezone.now()
    )
    partner_account(partner)
    ReferralLink.objects.create(partner=Partner.objects.create(user=partner), offer=paid_offer)
    _member_partner_with_commissions(member, partner, paid_offer, stripe_account)
    test_purchase, test_link = checkout_test_create(offer=paid_offer, by=owner, email="owner+test1@example.com")
    webhook_refusal_record(reason="mismatch", body=b'{"type": "checkout.session.completed"}')
    return World(
        owner=owner,
        member=member,
        free_offer=free_offer,
        paid_offer=paid_offer,
        subscription=subscription,
        test_purchase=test_purchase,
        test_link=test_link,
    )


def _member_partner_with_commissions(member: User, buyer: User, offer: Offer, account: StripeAccount) -> None:
    """The member is a partner too: a sale through their link earned a commission, paid, and
    another was refused by Stripe once, so both ledger pages show their tables and notices."""
    partner_account(member, account_id="acct_1MemberPartner")
    link = ReferralLink.objects.create(partner=Partner.objects.create(user=member), offer=offer)
    for number, (paid, refused) in enumerate([(True, False), (False, True)]):
        attempt = checkout_attempt_create(
            offer=offer, account=account, email=buyer.email, full_name=buyer.full_name, browser_key=""
        )
        payment = Payment.objects.create(
            stripe_object_id=f"pi_ui_{number}",
            kind=Payment.Kind.ONE_TIME,
            stripe_account_id=account.account_id,
            amount=5000,
            currency="usd",
            user=buyer,
            offer=offer,
            attempt=attempt,
            paid_at=timezone.now(),
            application_fee_amount=1000,
        )
        Commission.objects.create(
            payment=payment,
            partner=link.partner,
            attribution=Attribution.objects.create(attempt=attempt, link=link, commission_percent=20),
            currency="usd",
            amount=1000,
            hold_until=timezone.now() + timedelta(days=14 * (not paid)),
            transfer_id="tr_ui" if paid else "",
            transferred=1000 if paid else 0,
            attempts=int(refused),
            last_error="Stripe refused the transfer: the platform's balance is too low." if refused else "",
            next_attempt_at=timezone.now() + timedelta(minutes=10) if refused else None,
        )


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def visitors(world: World, new_page: Callable[[], Any], log_in: Callable[[Any, User], None]) -> Visitors:
    """One browser per persona of ``Visit.who``, logged in as a person does."""
    return Visitors(world, new_page, log_in)


class Visitors:
    def __init__(self, world: World, new_page: Callable[[], Any], log_in: Callable[[Any, User], None]) -> None:
        self.people = {"anonymous": None, "member": world.member, "owner": world.owner}
        self.new_page = new_page
        self.log_in = log_in
        self.pages: dict[tuple[str, str], Any] = {}

    def page(self, who: str, viewport: dict[str, int]) -> Any:
        key = (who, f"{viewport['width']}x{viewport['height']}")
        if key not in self.pages:
            page = self.new_page()
            page.set_viewport_size(viewport)
            user = self.people[who]
            if user is not None:
                self.log_in(page, user)
            self.pages[key] = page
        return self.pages[key]

    def open(self, visit: Visit, viewport: dict[str, int]) -> Any:
        """The page of ``visit`` as its persona sees it, loaded at ``viewport``."""
        page = self.page(visit.who, viewport)
        response = page.goto(visit.path)
        assert response is not None
        assert response.status == visit.status, f"{visit.name} ({visit.path}) answered {response.status}"
        return page
