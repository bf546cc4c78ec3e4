"""Community fixtures: a hub group of each permission (each with a hub), and its first hub."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache.backends.locmem import LocMemCache

from hubs.models import Hub, HubGroup
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
