"""With the shared cache (Redis) down, people still log in, browse and log out: sessions fall
back to the database instead of answering 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD


class DownCache(BaseCache):
    """A cache whose server cannot be reached, as Redis while it restarts."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _down(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Error 111 connecting to the cache. Connection refused.")

    add = get = set = touch = delete = has_key = incr = clear = _down

    def __contains__(self, key: object) -> bool:
        return bool(self._down())


@pytest.fixture
def cache_down(settings) -> None:
    # Changing CACHES makes Django build the caches anew (its setting_changed handler).
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": f"{__name__}.DownCache"}}
    with pytest.raises(ConnectionError):
        caches["default"].get("anything")


def test_a_member_logs_in_browses_and_logs_out_while_the_cache_is_down(
    client: Client, member: User, cache_down: None
) -> None:
    response = client.post(reverse("accounts:login"), {"username": member.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).status_code == 200
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("accounts:home")).status_code == 302  # logged out: sent to login


def test_a_free_claim_logs_the_new_buyer_in_while_the_cache_is_down(client: Client, db: None, cache_down: None) -> None:
    from tests import factories

    offer = factories.offer("Open Circle")
    response = client.post(
        reverse("billing:checkout", kwargs={"slug": offer.slug}), {"email": "new@example.com", "full_name": "Nia"}
    )
    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).status_code == 200
