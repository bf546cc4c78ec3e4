from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# Streamed responses (the CSV exports) are views too.
ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def staff_required(view: ViewFunc) -> ViewFunc:
    """Creator dashboard pages: anonymous users go to the login page, members get a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The creator dashboard is for the community's staff.")
        return view(request, *args, **kwargs)

    return cast(ViewFunc, wrapper)
