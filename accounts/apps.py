from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import (
            checks,  # noqa: F401  (registers the deploy checks)
            outbox,
            services,
        )

        outbox.email_builder_register("magic_link", services.magic_link_email_build)
