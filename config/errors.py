"""How error pages read the request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views import debug


class ExceptionReporter(debug.ExceptionReporter):
    """Django's debug page and error report, for a request whose body cannot be parsed too.

    Django refuses some bodies (a form in a charset other than UTF-8, a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE) by raising from ``request.POST`` without remembering that it
    failed, unlike a broken multipart body. The report reads ``request.POST`` and
    ``request.FILES`` to show them, raised again, and so did every middleware's exception
    handler around it: with DEBUG on, the 400 became a 500. Here the request remembers the
    failure as an empty body, as Django itself does for multipart, so the report shows the
    first error with its own status.
    """

    def __init__(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is not None:
            try:
                request.POST  # noqa: B018 - parsed here so that a failure is caught once
            except Exception:
                request._mark_post_parse_error()  # type: ignore[attr-defined]
        super().__init__(request, *args, **kwargs)
