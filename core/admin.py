"""What the apps' admins share."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

_M = TypeVar("_M", bound=models.Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    """For rows that services write: the admin lists and shows them, but adding or editing one
    here would skip the service's rules and side effects. Deleting is refused too unless
    ``deletable`` (history and Stripe's records are never deleted by hand)."""

    deletable = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)
