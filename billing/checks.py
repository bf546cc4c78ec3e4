"""``manage.py check --deploy``: Stripe settings that must never reach production."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def stripe_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    sandbox = settings.SANDBOX_STRIPE_CREDENTIALS
    for number, name in enumerate(("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_CLIENT_ID"), 1):
        value = getattr(settings, name)
        if not value:
            problems.append(
                Warning(f"{name} is not set.", hint="Set it from your Stripe dashboard.", id=f"billing.W00{number}")
            )
        elif value == sandbox[name]:
            problems.append(
                Warning(
                    f"{name} is the offline Stripe sandbox's published value: anyone can use it.",
                    hint="Set the value from your Stripe dashboard.",
                    id=f"billing.W00{number}",
                )
            )
    if settings.STRIPE_API_BASE:
        problems.append(
            Warning(
                "STRIPE_API_BASE is set: the platform talks to the offline sandbox, not to Stripe.",
                hint="Unset STRIPE_API_BASE in production.",
                id="billing.W004",
            )
        )
    return problems
