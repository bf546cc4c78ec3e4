"""The authentication backend: Django's, with every password check rate limited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts import ratelimit
from accounts.models import User, normalize_email

# Set on the request when a password check was refused, so a form can answer 429.
REFUSED_ATTRIBUTE = "password_check_refused"


class RateLimitedModelBackend(ModelBackend):
    """Checks passwords through ``accounts.ratelimit`` whatever form asks: the platform's
    login, the admin's, or any later one that calls ``authenticate``.

    A refused or wrong attempt raises PermissionDenied, which ends ``authenticate`` at once:
    no other backend checks the same password again.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        email = normalize_email(username)
        if not ratelimit.password_check_allowed(request, email=email):
            if request is not None:
                setattr(request, REFUSED_ATTRIBUTE, True)
            raise PermissionDenied
        user = super().authenticate(request, username=email, password=password, **kwargs)
        if user is None:
            ratelimit.password_check_failed(request, email=email)
            raise PermissionDenied
        return user


def password_check_refused(request: HttpRequest) -> bool:
    return bool(getattr(request, REFUSED_ATTRIBUTE, False))
