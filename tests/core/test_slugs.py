from __future__ import annotations

import pytest

from core.slugs import unique_slug
from hubs.models import HubGroup


@pytest.mark.django_db
def test_a_taken_slug_gets_the_next_free_number_and_an_empty_one_the_fallback() -> None:
    groups = HubGroup.objects.all()
    assert unique_slug(groups, "Inner Circle", fallback="group", max_length=120) == "inner-circle"
    first = HubGroup.objects.create(name="Inner Circle", slug="inner-circle")
    HubGroup.objects.create(name="Inner Circle", slug="inner-circle-2")
    assert unique_slug(groups, "Inner  Circle!", fallback="group", max_length=120) == "inner-circle-3"
    assert unique_slug(groups, "Inner Circle", fallback="group", max_length=120, exclude_pk=first.pk) == "inner-circle"
    assert unique_slug(groups, "★★", fallback="group", max_length=120) == "group"
    assert unique_slug(groups, "a" * 300, fallback="group", max_length=120) == "a" * 120
