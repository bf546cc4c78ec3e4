"""What assistive technology follows from one element to another (a field's label and its
help text, a button and what it opens, a link to a place on the page) names an element that
is on the page: a reference to nothing is silently dropped, and its words are never read."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.ui.conftest import World

pytestmark = pytest.mark.django_db

IDS = re.compile(r'\sid="([^"]+)"')
REFERENCES = re.compile(r'\s(aria-describedby|aria-labelledby|aria-controls|for)="([^"]+)"')
FRAGMENTS = re.compile(r'\shref="#([^"]+)"')


def dangling(html: str) -> list[str]:
    ids = set(IDS.findall(html))
    found = [f'{attribute}="{target}"' for attribute, value in REFERENCES.findall(html) for target in value.split()]
    found += [f'href="#{target}"' for target in FRAGMENTS.findall(html)]
    return [reference for reference in found if reference.split('"')[1].lstrip("#") not in ids]


def test_every_reference_on_the_main_pages_names_an_element_of_the_page(world: World) -> None:
    people = {"anonymous": None, "member": world.member, "owner": world.owner}
    problems = []
    for visit in world.visits():
        client = Client()
        user = people[visit.who]
        if user is not None:
            client.force_login(user)
        response = client.get(visit.path, follow=True)
        assert response.status_code == visit.status, visit.name
        problems += [f"{visit.name}: {reference}" for reference in dangling(response.content.decode())]
    assert problems == [], "references to elements that are not on the page:\n" + "\n".join(problems)


def test_a_dangling_reference_is_found() -> None:
    html = '<input id="id_title" aria-describedby="id_title_helptext"><label for="id_title">Title</label>'
    assert dangling(html) == ['aria-describedby="id_title_helptext"']
