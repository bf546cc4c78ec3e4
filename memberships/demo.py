"""Demo offers for ``make run``: a free membership (published) and a paid draft. Idempotent."""

from __future__ import annotations

import io

from django.conf import settings
from django.urls import reverse
from PIL import Image, ImageDraw

from core import images
from hubs.models import Hub, HubGroup
from memberships import services
from memberships.models import Offer

FREE_SLUG = "demo-free-membership"
PAID_SLUG = "demo-workshop-pass"


def _group(slug: str, name: str, description: str) -> HubGroup:
    # The community demo seeds the same slugs; whichever runs first creates them.
    group, _ = HubGroup.objects.get_or_create(
        slug=slug,
        defaults={"name": name, "description": description, "permission": HubGroup.Permission.PRIVATE},
    )
    Hub.objects.get_or_create(group=group, slug="general", defaults={"name": "General"})
    return group


def _image(color: tuple[int, int, int], size: tuple[int, int], variant: images.Variant) -> str:
    picture = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(picture)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(255, 255, 255))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    processed = images.process_image(data, size=data.tell(), variant=variant)
    return services.offer_image_store(image=processed, role="demo")


def seed() -> list[str]:
    lounge = _group("demo-members-lounge", "Members' Lounge", "Introductions, questions and weekly threads.")
    workshops = _group("demo-workshops", "Workshops", "Recordings and notes of every live workshop.")
    free = Offer.objects.filter(slug=FREE_SLUG).first()
    if free is None:
        free = services.offer_create(
            fields=services.OfferFields(
                title="Community Membership",
                description="Meet the other members, ask questions and follow the weekly threads.",
                landing_enabled=True,
                landing_headline="Join the community, free",
                landing_body="Meet the other members, ask questions and follow the **weekly threads**.",
                landing_cta_label="Join for free",
            ),
            hub_groups=[lounge],
            slug=FREE_SLUG,
            thumbnail=_image((79, 70, 229), (800, 800), images.THUMBNAIL),
            cover=_image((17, 24, 39), (1920, 640), images.COVER),
        )
        services.offer_publish(offer=free)
    if not Offer.objects.filter(slug=PAID_SLUG).exists():
        services.offer_create(
            fields=services.OfferFields(
                title="Workshop Pass",
                description="Every live workshop, with its recording and notes, for as long as you are a member.",
                pricing=Offer.Pricing.RECURRING,
                price_amount=2900,
                interval=Offer.Interval.MONTH,
                # Members can resell it: the partner program has an offer to show.
                resell_enabled=True,
                resell_commission_percent=20,
                resell_description="Share the Workshop Pass with your audience and earn 20% of every payment, "
                "renewals included.",
            ),
            hub_groups=[lounge, workshops],
            slug=PAID_SLUG,
            thumbnail=_image((4, 120, 87), (800, 800), images.THUMBNAIL),
        )
    url = settings.SITE_URL + reverse("memberships:offer_page", kwargs={"slug": FREE_SLUG})
    return [f"Free offer page:     {url}"]
