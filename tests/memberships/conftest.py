"""Factories for offers, groups, buyers and images."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from core import images
from hubs.models import HubGroup
from memberships import services
from memberships.models import Entitlement, Offer


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    return


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any) -> bytes:
    picture = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    out = io.BytesIO()
    picture.save(out, format=fmt, **save)
    return out.getvalue()


def upload(
    name: str = "thumb.png", content: bytes | None = None, content_type: str = "image/png"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes() if content is None else content, content_type=content_type)


def stored_image(role: str = "thumbnail") -> str:
    data = io.BytesIO(image_bytes(size=(700, 700)))
    processed = images.process_image(data, size=len(data.getvalue()), variant=images.THUMBNAIL)
    return services.offer_image_store(image=processed, role=role)


@pytest.fixture
def make_group(db: None) -> Callable[..., HubGroup]:
    counter = iter(range(1, 100_000))

    def make(name: str = "", permission: str = HubGroup.Permission.PRIVATE) -> HubGroup:
        number = next(counter)
        name = name or f"Group {number}"
        return HubGroup.objects.create(name=name, slug=f"group-{number}", permission=permission)

    return make


@pytest.fixture
def make_offer(db: None, make_group: Callable[..., HubGroup]) -> Callable[..., Offer]:
    def make(
        *, groups: list[HubGroup] | None = None, published: bool = True, thumbnail: bool = True, **fields: Any
    ) -> Offer:
        offer = services.offer_create(
            fields=services.OfferFields(**{"title": "Inner Circle", **fields}),
            hub_groups=groups if groups is not None else [make_group()],
            thumbnail=stored_image() if thumbnail else "",
        )
        if published:
            offer = services.offer_publish(offer=offer)
        return offer

    return make


@pytest.fixture
def make_buyer(db: None) -> Callable[..., User]:
    counter = iter(range(1, 100_000))

    def make(offer: Offer, email: str = "") -> User:
        user = User.objects.create_user(email or f"buyer{next(counter)}@example.com", full_name="Bea Buyer")
        Entitlement.objects.create(user=user, offer=offer, source=Entitlement.Source.FREE)
        return user

    return make


@pytest.fixture(autouse=True)
def _fresh_page_cache() -> None:
    """Cached checkout pages must not leak from one test's database into another's."""
    caches["local"].clear()
    cache.clear()
