from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.models import MagicLink, User


class UserCreationAdminForm(AdminUserCreationForm[User]):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserChangeAdminForm(UserChangeForm[User]):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    add_form = UserCreationAdminForm
    form = UserChangeAdminForm
    ordering = ["email"]
    readonly_fields = ["email_verified_at"]  # set only by the owner using an emailed link
    list_display = ["email", "full_name", "is_staff", "is_active", "email_verified_at", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined", "email_verified_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)


@admin.register(MagicLink)
class MagicLinkAdmin(admin.ModelAdmin[MagicLink]):
    list_display = ["user", "created_at", "used_at"]
    readonly_fields = ["user", "key", "next_url", "created_at", "used_at"]

    def has_add_permission(self, request: object) -> bool:
        # Every field is read-only: an added link would be an empty row (a 500). Links are
        # made by accounts.services.magic_link_create.
        return False
