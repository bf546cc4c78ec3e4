from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse

from accounts import mail, ratelimit
from accounts.models import User, normalize_email


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. Passwords are case-sensitive.",
    }

    def clean_username(self) -> str:
        return normalize_email(self.cleaned_data["username"])


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class EmailPasswordResetForm(PasswordResetForm):
    """Password reset through our mail module, open to password-less buyers too.

    Buyers get an account without a password when they purchase; a reset link is how they
    choose one, so unlike Django's default this form does not skip unusable passwords.

    The link is built from ``SITE_URL``: Django's own uses the request's Host header, which
    whoever asks for the reset chooses, and the token would then be sent to their server.
    """

    def get_users(self, email: str) -> Iterator[User]:
        yield from User.objects.filter(email=normalize_email(email), is_active=True)

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]})
        context = {key: value for key, value in context.items() if key not in {"domain", "protocol", "site_name"}}
        mail.send_templated(
            to=to_email, name="password_reset", context={**context, "reset_url": settings.SITE_URL + path}
        )


class RateLimitedPasswordChangeForm(PasswordChangeForm):
    """Changing the password checks the current one: through the login's rate limit, like
    every password check, so a session left open cannot be used to guess it."""

    def __init__(self, request: HttpRequest, user: User, *args: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        email = self.user.email
        if not ratelimit.password_check_allowed(self.request, email=email):
            raise ValidationError(ratelimit.TOO_MANY, code="too_many")
        try:
            return str(super().clean_old_password())
        except ValidationError:
            ratelimit.password_check_failed(self.request, email=email)
            raise
