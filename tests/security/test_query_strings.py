"""Values from the query string reach queries too: a NUL, which PostgreSQL refuses in any
text, must never be a 500 there (SQLite takes it, so both must agree)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_user_search_with_a_nul_is_a_search_without_it(client: Client, owner, member) -> None:
    client.force_login(owner)
    client.raise_request_exception = False
    response = client.get("/dashboard/users/", {"q": "mem\x00ber"})
    assert response.status_code == 200
    assert "member@example.com" in response.content.decode()
