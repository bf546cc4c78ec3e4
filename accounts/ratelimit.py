"""Limits on how often one visitor may make the platform send email or check a password.

Counters live in the shared cache, in fixed windows: simple, and enough to stop a script from
mailing strangers through the login-link, password-reset or free-claim forms, or from guessing
passwords. A cache outage lets requests through rather than locking everyone out.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

TOO_MANY = "Too many attempts from here. Please wait a few minutes and try again."


def client_ip(request: HttpRequest) -> str:
    """The visitor's address, trusting only as many X-Forwarded-For hops as there are proxies."""
    proxies = settings.FORWARDED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR", ""))


def allow(*, scope: str, key: str, limit: int, window: int) -> bool:
    """Count one attempt for ``key``; False once more than ``limit`` were made in the window."""
    digest = hashlib.sha256(key.lower().encode()).hexdigest()[:32]
    bucket = f"ratelimit:{scope}:{digest}:{int(time.time() // window)}"
    try:
        cache.add(bucket, 0, timeout=window)
        count = cache.incr(bucket)
    except ValueError:  # the bucket expired between add and incr: this is its first attempt
        cache.set(bucket, 1, timeout=window)
        count = 1
    except Exception:
        logger.warning("rate limit cache unavailable", exc_info=True)
        return True
    return count <= limit


def allow_request(request: HttpRequest, *, scope: str, email: str = "") -> bool:
    """The usual pair of limits: per address, and per email address when there is one."""
    limits = settings.RATE_LIMITS[scope]
    allowed = allow(scope=f"{scope}:ip", key=client_ip(request), limit=limits["ip"], window=limits["window"])
    if email:
        allowed &= allow(scope=f"{scope}:email", key=email, limit=limits["email"], window=limits["window"])
    return allowed
