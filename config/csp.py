"""The Content-Security-Policy header (django-csp), with what only the running settings know."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL, else the empty string."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, letting forms also reach the offline Stripe sandbox when
    STRIPE_API_BASE points at it: it serves the hosted Checkout, Connect and portal pages
    that Stripe's own origins serve in production. Read per response, since tests point it at
    a sandbox started after the settings were loaded."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        sandbox = origin_of(settings.STRIPE_API_BASE or "")
        if sandbox and parts.config is None:  # a response with its own whole policy keeps it
            update = dict(parts.update or {})
            update["form-action"] = [*update.get("form-action", []), sandbox]
            parts.update = update
        return parts
