"""Community fixtures: groups of each permission, each with a hub and a post."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone

from accounts.models import User
from hubs import services
from hubs.models import AccessGrant, Hub, HubGroup, Post
from tests import factories


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The community home caches its group list: each test gets an empty cache of its own.

    (Not ``cache.clear()``: with REDIS_URL that would flush the Celery broker's database too.)
    """
    monkeypatch.setattr("hubs.views.cache", LocMemCache(f"hubs-test-{uuid.uuid4()}", {}))


@pytest.fixture
def public_group(db: None) -> HubGroup:
    return factories.group("Open Lounge", HubGroup.Permission.PUBLIC)


@pytest.fixture
def private_group(db: None) -> HubGroup:
    return factories.group("Inner Circle", HubGroup.Permission.PRIVATE)


@pytest.fixture
def hidden_group(db: None) -> HubGroup:
    return factories.group("Team Room", HubGroup.Permission.HIDDEN)


def first_hub(group: HubGroup) -> Hub:
    return group.hubs.order_by("position", "id").first()  # type: ignore[return-value]


def add_post(group: HubGroup, author: User, body: str = "A secret recipe for members") -> Post:
    return services.post_create(hub=first_hub(group), author=author, title="", body=body)


def grant(user: User, group: HubGroup, *, expired: bool = False, revoked: bool = False) -> AccessGrant:
    made = services.access_grant_create(user=user, group=group, granted_by=None, note="test")
    if expired:
        AccessGrant.objects.filter(pk=made.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    if revoked:
        services.access_grant_revoke(grant=made, revoked_by=None)
    return made
