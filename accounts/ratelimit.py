"""Limits on how often one visitor may make the platform send email or check a password.

Counters live in the shared cache, in fixed windows: simple, and enough to stop a script from
mailing strangers through the login-link, password-reset or free-claim forms, or from guessing
passwords. A cache outage lets requests through rather than locking everyone out.

Password checks (every login form, the admin's included, and the current-password field when
a password is changed) go through ``password_check_allowed`` and ``password_check_failed``.
An account that has seen too many wrong passwords is locked only for the addresses that have
been failing: its owner, typing the right password from an address with no failures, still
gets in. A much higher limit locks the account for every address, so a botnet trying one
password per address is still stopped. docs/SECURITY.md explains the trade-off.
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
        header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        forwarded = [part.strip() for part in header.split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR", ""))


def _bucket(scope: str, key: str, window: int) -> str:
    digest = hashlib.sha256(key.lower().encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{int(time.time() // window)}"


def allow(*, scope: str, key: str, limit: int, window: int) -> bool:
    """Count one attempt for ``key``; False once more than ``limit`` were made in the window."""
    bucket = _bucket(scope, key, window)
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


def _count(*, scope: str, key: str, window: int) -> int:
    """How many times ``key`` was counted in the current window, without counting this look."""
    try:
        return int(cache.get(_bucket(scope, key, window)) or 0)
    except Exception:
        logger.warning("rate limit cache unavailable", exc_info=True)
        return 0


def password_check_allowed(request: HttpRequest | None, *, email: str) -> bool:
    """May this visitor have a password checked for ``email`` now? Counts the attempt.

    Refused when the visitor's address made too many attempts (any account), or when the
    account saw too many wrong passwords and this address is one that has been failing, or
    when the account saw so many that it is locked for everyone.
    """
    limits = settings.RATE_LIMITS["login"]
    window = limits["window"]
    ip = client_ip(request) if request is not None else ""
    if ip and not allow(scope="login:ip", key=ip, limit=limits["ip"], window=window):
        return False
    failures = _count(scope="login:email-failed", key=email, window=window)
    if failures >= limits.get("email_all", 10 * limits["email"]):
        return False
    if failures >= limits["email"]:
        return not ip or _count(scope="login:ip-failed", key=ip, window=window) == 0
    return True


def password_check_failed(request: HttpRequest | None, *, email: str) -> None:
    """Record a wrong password for ``email`` from this visitor's address."""
    limits = settings.RATE_LIMITS["login"]
    window = limits["window"]
    allow(scope="login:email-failed", key=email, limit=limits.get("email_all", 10 * limits["email"]), window=window)
    if request is not None:
        allow(scope="login:ip-failed", key=client_ip(request), limit=limits["ip"], window=window)
