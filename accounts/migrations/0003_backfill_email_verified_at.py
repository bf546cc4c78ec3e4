"""Record as proven the accounts whose owner has already shown they read the address.

- A used login link: the email reached its owner, who clicked it (the earliest use counts).
- A usable password: a member can only choose one through an emailed link (the reset link, or
  a session a login link opened), and any other password was set by the site's staff, who
  vouch for the address. Every session such an account has was opened with that password or a
  link: choosing a password ends the sessions made before it.

``last_login`` alone is not proof: a free claim or a purchase logs in the browser that typed
the address, which is exactly the case this field exists to tell apart.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce


def backfill(apps: Any, schema_editor: Any) -> None:
    User = apps.get_model("accounts", "User")
    MagicLink = apps.get_model("accounts", "MagicLink")
    first_use = MagicLink.objects.filter(user=OuterRef("pk"), used_at__isnull=False).order_by("used_at")
    User.objects.filter(email_verified_at__isnull=True, magic_links__used_at__isnull=False).update(
        email_verified_at=Subquery(first_use.values("used_at")[:1])
    )
    User.objects.filter(email_verified_at__isnull=True).exclude(password="").exclude(
        password__startswith=UNUSABLE_PASSWORD_PREFIX
    ).update(email_verified_at=Coalesce("last_login", "date_joined"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_user_email_verified_at")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
