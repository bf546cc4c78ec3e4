"""Every URL pattern, as every kind of person, by GET and POST: the exact status each gets
is in access_table.py. The patterns come from the resolver, so a new view is walked at once,
and fails the suite until its row says who may use it."""

from __future__ import annotations

import copy

import pytest
from django.test import Client

from tests.security.access_table import ROLES, ROWS, A
from tests.security.walk import Route, UnfilledParameter, World, build_world, fill, rolled_back, routes

pytestmark = pytest.mark.django_db

ROW_HINT = '"{route}": A(get=(anonymous, member, other_buyer, staff), post=(anonymous, member, other_buyer, staff)),'


def test_every_url_pattern_has_a_row() -> None:
    missing = [route.route for route in routes() if route.route not in ROWS]
    assert not missing, "Add a row to tests/security/access_table.py for each new URL pattern:\n" + "\n".join(
        ROW_HINT.format(route=route) for route in missing
    )


def test_every_row_names_a_url_pattern() -> None:
    known = {route.route for route in routes()}
    assert [route for route in ROWS if route not in known] == [], "rows for patterns that no longer exist"


def observe(world: World, role: str, targets: list[Route]) -> dict[str, A]:
    """The statuses ``role`` gets from each route, each request in a savepoint rolled back
    after it, so a delete or a logout leaves the world as it was for the next."""
    client = Client(raise_request_exception=False)
    user = getattr(world, role, None)
    if user is not None:
        client.force_login(user)
    cookies = copy.deepcopy(client.cookies)
    seen: dict[str, A] = {}
    for route in targets:
        url = fill(route, world)
        statuses = []
        for method in ("get", "post"):
            client.cookies = copy.deepcopy(cookies)
            with rolled_back():
                statuses.append(getattr(client, method)(url).status_code)
        seen[route.route] = A(get=statuses[0], post=statuses[1])  # one status each, not one per role
    return seen


def differences(role: str, seen: dict[str, A], table: dict[str, A]) -> list[str]:
    index = ROLES.index(role)
    found = []
    for route, statuses in seen.items():
        for method in ("get", "post"):
            expected = getattr(table[route], method)[index]
            got = getattr(statuses, method)
            if got != expected:
                found.append(f"{method.upper()} {route} as {role}: expected {expected}, got {got}")
    return found


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_access_in_the_table(role) -> None:
    world = build_world()
    targets = [route for route in routes() if route.route in ROWS]
    seen = observe(world, role, targets)
    problems = differences(role, seen, ROWS)
    assert not problems, "\n".join(problems)


def test_the_walk_notices_a_status_that_differs_and_a_missing_row() -> None:
    world = build_world()
    route = next(r for r in routes() if r.route == "dashboard/offers/")
    seen = observe(world, "member", [route])
    assert differences("member", seen, ROWS) == []
    lenient = {**ROWS, "dashboard/offers/": A(get=(302, 200, 403, 200), post=(302, 403, 403, 200))}
    assert differences("member", seen, lenient) == ["GET dashboard/offers/ as member: expected 200, got 403"]
    with pytest.raises(KeyError):
        differences("member", seen, {})


def test_every_path_parameter_can_be_filled() -> None:
    world = build_world()
    unfilled = []
    for route in routes():
        try:
            fill(route, world)
        except UnfilledParameter as error:
            unfilled.append(f"{route.route}: {error} (teach tests/security/walk.py's fill() about it)")
    assert unfilled == []


def test_a_state_changing_post_without_a_csrf_token_is_refused(django_user_model) -> None:
    """The walk's client skips CSRF checks; a browser's does not."""
    world = build_world()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(world.staff)
    url = f"/dashboard/offers/{world.offer.pk}/archive/"
    assert client.post(url).status_code == 403
    world.offer.refresh_from_db()
    assert world.offer.status == "published"
    client.get(f"/dashboard/offers/{world.offer.pk}/")
    token = client.cookies["csrftoken"].value
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    world.offer.refresh_from_db()
    assert world.offer.status == "archived"


def test_only_the_webhook_takes_a_post_without_a_csrf_token() -> None:
    world = build_world()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(world.staff)
    exempt = []
    for route in routes():
        if route.route.startswith("admin/") or route.route.startswith("^media/"):
            continue
        with rolled_back():
            status = client.post(fill(route, world)).status_code
        if status != 403:
            exempt.append(f"{route.route}: {status}")
    assert exempt == ["stripe/webhook/: 400"]
