"""Offers: the checkout page under gunicorn, and a new hub group reaching 100,000 buyers.

(a) The checkout page of a published free offer (thumbnail, cover, groups), requests per second
    as a ratio to the minimal view in the same run.
(b) Adding a hub group to an offer with 100,000 buyers through the editor's service: the time
    from the start of the save until every buyer has access, checked by the access rule itself
    (one counting query over all buyers, plus the per-user helper for sample buyers).
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

from bench.harness import Figure, bench_data_dir, django_setup, gunicorn, ratio_of

if TYPE_CHECKING:
    from memberships.services import OfferFields

BUYERS = 100_000


def _image(variant_name: str) -> str:
    from PIL import Image

    from core import images
    from memberships import services

    picture = Image.new("RGB", (1600, 900), (79, 70, 229))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    variant = getattr(images, variant_name)
    return services.offer_image_store(image=images.process_image(data, size=data.tell(), variant=variant), role="bench")


def _fields(title: str) -> OfferFields:
    from memberships.services import OfferFields

    return OfferFields(title=title)


def _checkout_offer() -> str:
    from hubs.models import HubGroup
    from memberships import services

    groups = [HubGroup.objects.create(name=f"Group {n}", slug=f"bench-group-{n}") for n in range(5)]
    offer = services.offer_create(
        fields=_fields("Bench Membership"), hub_groups=groups, thumbnail=_image("THUMBNAIL"), cover=_image("COVER")
    )
    services.offer_publish(offer=offer)
    for n in range(20):  # other offers must not matter
        services.offer_create(fields=_fields(f"Other {n}"), hub_groups=groups[:2])
    return offer.slug


def _group_reaches_buyers() -> tuple[Figure, Figure]:
    from django.db import connection

    from accounts.models import User
    from hubs.models import HubGroup
    from hubs.selectors import accessible_group_ids
    from memberships import selectors, services
    from memberships.models import Entitlement, Offer

    lounge = HubGroup.objects.create(name="Lounge", slug="bench-lounge")
    offer = services.offer_create(fields=_fields("Big Membership"), hub_groups=[lounge])
    users = [User(email=f"buyer{n}@example.com", password="!") for n in range(BUYERS)]
    User.objects.bulk_create(users, batch_size=5000)
    user_ids = list(User.objects.filter(email__startswith="buyer").values_list("pk", flat=True))
    Entitlement.objects.bulk_create(
        [Entitlement(user_id=pk, offer=offer, source=Entitlement.Source.FREE) for pk in user_ids], batch_size=5000
    )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    workshops = HubGroup.objects.create(name="Workshops", slug="bench-workshops")
    samples = [User.objects.get(pk=pk) for pk in (user_ids[0], user_ids[len(user_ids) // 2], user_ids[-1])]
    assert not any(workshops.pk in accessible_group_ids(user=user) for user in samples)

    started = time.perf_counter()
    impact = selectors.group_change_impact(offer=offer, new_groups=[lounge, workshops])
    notice_seconds = time.perf_counter() - started

    started = time.perf_counter()
    services.offer_update(offer=offer, hub_groups=[lounge, workshops])
    with_access = (
        Entitlement.objects.active()
        .filter(offer__in=Offer.objects.filter(hub_groups=workshops))
        .values("user_id")
        .distinct()
        .count()
    )
    sampled = all(workshops.pk in accessible_group_ids(user=user) for user in samples)
    seconds = time.perf_counter() - started

    if impact.buyers != BUYERS or with_access != BUYERS or not sampled:
        raise RuntimeError(f"not every buyer has access: {impact.buyers=}, {with_access=}, {sampled=}")
    return (
        Figure(
            name="offers: new hub group reaches 100,000 buyers",
            value=seconds,
            unit="s",
            comparison="<=",
            target=1.0,
        ),
        Figure(
            name="offers: editor's buyers notice for 100,000 buyers",
            value=notice_seconds,
            unit="s",
            comparison="<=",
            target=1.0,
        ),
    )


def run() -> list[Figure]:
    with bench_data_dir() as data_dir:
        django_setup(data_dir)
        slug = _checkout_offer()
        with gunicorn(data_dir) as address:
            ratio = ratio_of(address, f"/offers/{slug}/checkout/")
        figures = [
            Figure(name="offers: checkout page vs minimal view", value=ratio, unit="x", comparison=">=", target=0.7)
        ]
        figures += _group_reaches_buyers()
        return figures
