"""Small typed readers for the environment.

Every setting that comes from the environment goes through one of these, so a bad value
stops the process at start-up with a message naming the variable, instead of surfacing later
as a confusing error. Each reader also accepts ``<NAME>_FILE``: the path of a file holding the
value (Docker and Kubernetes secrets are mounted that way).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    if name in env:
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {file_name!r}, which cannot be read: {exc}") from exc
    return None


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    return value


def env_optional(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(name, environ)
    return value or None


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), not {value!r}.")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {number}.")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def secret_key(*, debug: bool, environ: Mapping[str, str] | None = None) -> str:
    """The SECRET_KEY; outside DEBUG a missing or weak key stops the process."""
    value = _raw("SECRET_KEY", environ)
    if debug:
        return value or "django-insecure-development-only-key-never-use-in-production"
    if not value:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    if value.startswith("django-insecure") or len(value) < 50 or len(set(value)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY is insecure: use at least 50 random characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(64))").'
        )
    return value


def stripe_credential(
    name: str, sandbox_value: str, *, required: bool, sandbox_allowed: bool, environ: Mapping[str, str] | None = None
) -> str:
    """A Stripe key or secret. Where the sandbox is allowed (DEBUG, STRIPE_SANDBOX_ALLOWED, a
    build step) a missing value falls back to the sandbox's published one; elsewhere a missing
    value, or that published value, stops the process."""
    value = env_optional(name, environ=environ)
    if sandbox_allowed:
        return value or sandbox_value
    if value == sandbox_value:
        raise ImproperlyConfigured(
            f"{name} is the offline Stripe sandbox's published value, which anyone can use: set the value "
            "from your Stripe dashboard (or STRIPE_SANDBOX_ALLOWED=1 for a test deployment on the sandbox)."
        )
    if not value:
        if required:
            raise ImproperlyConfigured(
                f"{name} is required when DEBUG is off: set it from your Stripe dashboard (see the README's "
                "production section)."
            )
        return ""
    return value
