"""``manage.py check --deploy``: the site's public address."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def site_url_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Emailed login links and Stripe's return addresses are built from SITE_URL.
    if not settings.SITE_URL.startswith("https://"):
        return [
            Warning(
                f"SITE_URL ({settings.SITE_URL}) is not an https:// address: emailed login links and Stripe's "
                "return addresses would travel in the clear.",
                hint="Set SITE_URL to the site's public https:// address.",
                id="accounts.W001",
            )
        ]
    return []
