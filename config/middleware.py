from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class HealthCheckMiddleware:
    """Answer ``/healthz`` before anything else looks at the request.

    Load balancers and the container's health check call it by IP address, which is not one of
    ALLOWED_HOSTS, and over plain HTTP, which production redirects: neither must fail it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return HttpResponse("ok", content_type="text/plain")
        return self.get_response(request)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


class RequestLimitMiddleware:
    """Refuse a request body over its cap, by its Content-Length, before anything reads it.

    Every body may be up to REQUEST_BODY_MAX_BYTES (the webhook too: Stripe's events are far
    smaller); staff image uploads, under REQUEST_BODY_UPLOAD_PATHS, up to
    REQUEST_BODY_MAX_BYTES_UPLOADS, and only when the session is staff's. The larger cap is
    not given by the path alone because the CSRF check parses a form body before the view's
    own staff check runs, and anyone can get a CSRF cookie.

    So this runs after the session and authentication middleware, which only attach lazy
    objects, and before the CSRF check and the view, the first to read the body (a test
    pins this). The user is loaded only for a large body sent to an upload path. A body
    without a Content-Length (chunked) is never read: Django reads CONTENT_LENGTH bytes,
    none when it is missing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("CONTENT_LENGTH") or "0"
        if not header.isascii() or not header.isdigit():
            return HttpResponse(
                "Bad request: the Content-Length header is not a number.\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        length = int(header)
        if length > settings.REQUEST_BODY_MAX_BYTES:
            cap = self._cap(request)
            if length > cap:
                return HttpResponse(
                    f"Request too large: this page accepts at most {_megabytes(cap)}, and this request "
                    f"is {_megabytes(length)}. Send a smaller file or less text.\n",
                    status=413,
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)

    def _cap(self, request: HttpRequest) -> int:
        """The cap for this request, once its body is known to be over the small one."""
        if request.path.startswith(tuple(settings.REQUEST_BODY_UPLOAD_PATHS)):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and user.is_staff:
                return settings.REQUEST_BODY_MAX_BYTES_UPLOADS
        return settings.REQUEST_BODY_MAX_BYTES
