"""Demo community for ``make run``: a public, a private and a hidden group with hubs and posts."""

from __future__ import annotations

from accounts.demo import CREATOR_EMAIL, MEMBER_EMAIL
from accounts.models import User
from hubs import services
from hubs.models import Hub, HubGroup, Post

PUBLIC, PRIVATE, HIDDEN = HubGroup.Permission.PUBLIC, HubGroup.Permission.PRIVATE, HubGroup.Permission.HIDDEN
GROUPS = [
    ("Welcome", "welcome", PUBLIC, "Say hello and find your way around.", ["Introductions", "Announcements"]),
    ("Inner Circle", "inner-circle", PRIVATE, "Weekly deep dives for members.", ["Deep dives", "Q&A"]),
    ("Team Room", "team-room", HIDDEN, "Where the team prepares what's next.", ["Planning"]),
]
# A hub's first posts (author, title, body), seeded while it has none and the creator exists.
POSTS = [
    (
        "welcome",
        "introductions",
        [
            (
                CREATOR_EMAIL,
                "Welcome to the community",
                "Glad you're here! Tell us **who you are** and what you'd like to learn.",
            ),
            (MEMBER_EMAIL, "", "Hi all, I'm Morgan. Excited to join!"),
        ],
    ),
    (
        "inner-circle",
        "deep-dives",
        [(CREATOR_EMAIL, "This week: building habits", "1. Start small\n2. Keep a streak\n3. Review on Sundays")],
    ),
]


def seed() -> list[str]:
    creator = User.objects.filter(email=CREATOR_EMAIL).first()
    member = User.objects.filter(email=MEMBER_EMAIL).first()
    for position, (name, slug, permission, description, hub_names) in enumerate(GROUPS):
        group, _ = HubGroup.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "permission": permission, "description": description, "position": position},
        )
        for hub_position, hub_name in enumerate(hub_names):
            hub_slug = hub_name.lower().replace("&", "and").replace(" ", "-")
            Hub.objects.get_or_create(group=group, slug=hub_slug, defaults={"name": hub_name, "position": hub_position})
    authors = {CREATOR_EMAIL: creator, MEMBER_EMAIL: member}
    for group_slug, hub_slug, posts in POSTS:
        hub = Hub.objects.get(group__slug=group_slug, slug=hub_slug)
        if creator is None or Post.objects.filter(hub=hub).exists():
            continue
        for email, title, body in posts:
            author = authors[email]
            if author is not None:
                services.post_create(hub=hub, author=author, title=title, body=body)
    return ["Community:           /community/ (Welcome is public; Inner Circle is private; Team Room is hidden)"]
