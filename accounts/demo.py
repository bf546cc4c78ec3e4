"""Demo logins for ``make run``. Every app's ``demo.seed()`` is idempotent."""

from __future__ import annotations

from accounts.models import User
from accounts.services import user_get_or_create

CREATOR_EMAIL = "creator@example.com"
CREATOR_PASSWORD = "creator-demo-pass"
MEMBER_EMAIL = "member@example.com"
MEMBER_PASSWORD = "member-demo-pass"


def seed() -> list[str]:
    creator, _ = user_get_or_create(email=CREATOR_EMAIL, full_name="Casey Creator")
    _ensure(creator, password=CREATOR_PASSWORD, staff=True)
    member, _ = user_get_or_create(email=MEMBER_EMAIL, full_name="Morgan Member")
    _ensure(member, password=MEMBER_PASSWORD, staff=False)
    return [
        f"Creator (dashboard): {CREATOR_EMAIL} / {CREATOR_PASSWORD}",
        f"Member:              {MEMBER_EMAIL} / {MEMBER_PASSWORD}",
    ]


def _ensure(user: User, *, password: str, staff: bool) -> None:
    changed = []
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if user.is_staff != staff or user.is_superuser != staff:
        user.is_staff = user.is_superuser = staff
        changed += ["is_staff", "is_superuser"]
    if user.email_verified_at is None:
        user.email_verified_at = user.date_joined  # demo logins stand for owners who proved their address
        changed.append("email_verified_at")
    if changed:
        user.save(update_fields=changed)
