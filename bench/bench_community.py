"""The community home of a member who sees 200 hub groups, against the minimal view."""

from __future__ import annotations

from bench.harness import Figure, bench_data_dir, django_setup, gunicorn, ratio_of, session_headers

GROUPS = 200
HUBS_PER_GROUP = 3


def _prepare() -> int:
    from accounts.models import User
    from hubs import services
    from hubs.models import Hub, HubGroup

    member = User.objects.create_user("bench-member@example.com", "bench-password", full_name="Bench Member")
    permissions = [HubGroup.Permission.PUBLIC, HubGroup.Permission.PRIVATE]
    groups = HubGroup.objects.bulk_create(
        HubGroup(
            name=f"Group {n}",
            slug=f"group-{n}",
            description=f"What group {n} is about, in a sentence or two.",
            permission=permissions[n % 2],
            position=n,
        )
        for n in range(GROUPS)
    )
    Hub.objects.bulk_create(
        Hub(group=group, name=f"Hub {h}", slug=f"hub-{h}", position=h)
        for group in groups
        for h in range(HUBS_PER_GROUP)
    )
    # The member holds grants to half of the private groups: the page mixes open and locked.
    for group in groups[1::4]:
        services.access_grant_create(user=member, group=group, granted_by=None, note="bench")
    return member.pk


def run() -> list[Figure]:
    with bench_data_dir() as data_dir:
        django_setup(data_dir)
        headers = session_headers(_prepare())
        with gunicorn(data_dir) as address:
            ratio = ratio_of(address, "/community/", headers=headers)
    return [
        Figure(
            name=f"community home, member with {GROUPS} groups (rps vs minimal view)",
            value=ratio,
            unit="x",
            comparison=">=",
            target=0.6,
        )
    ]
