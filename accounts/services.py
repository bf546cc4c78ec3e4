"""Writes for accounts: users and magic links."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import mail, outbox
from accounts.models import MagicLink, User, normalize_email
from core.figures import figures_forget

_MAGIC_SALT = "accounts.magic-link"


@transaction.atomic
def user_get_or_create(*, email: str, full_name: str = "") -> tuple[User, bool]:
    """Find the account for an email address, or create a password-less one.

    The unique index on the email decides races: two concurrent calls get the same row.
    """
    user, created = User.objects.get_or_create(
        email=normalize_email(email), defaults={"full_name": full_name.strip()[:150]}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        figures_forget()  # the Overview counts members
    return user, created


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def safe_next_url(next_url: str | None) -> str:
    """Only same-site paths may follow a login."""
    if (
        next_url
        and url_has_allowed_host_and_scheme(next_url, allowed_hosts=None)
        and next_url.startswith("/")
        and "\x00" not in next_url  # PostgreSQL cannot store it: the link would never be sent
    ):
        return next_url
    return ""


@transaction.atomic
def magic_link_create(*, user: User, next_url: str = "") -> str:
    """Make a new single-use login link for ``user``; returns its absolute URL."""
    key = secrets.token_urlsafe(32)
    MagicLink.objects.create(user=user, key=_hash(key), next_url=safe_next_url(next_url))
    token = signing.TimestampSigner(salt=_MAGIC_SALT).sign(key)
    return settings.SITE_URL + reverse("accounts:magic_link", kwargs={"token": token})


class MagicLinkError(Exception):
    def __init__(self, reason: Literal["invalid", "expired", "used"]) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MagicLinkCheck:
    link: MagicLink
    user: User


def magic_link_check(*, token: str) -> MagicLinkCheck:
    """Validate a link without using it up (the page a click lands on)."""
    try:
        key = signing.TimestampSigner(salt=_MAGIC_SALT).unsign(token, max_age=settings.MAGIC_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise MagicLinkError("expired") from None
    except signing.BadSignature:
        raise MagicLinkError("invalid") from None
    link = MagicLink.objects.select_related("user").filter(key=_hash(key)).first()
    if link is None or not link.user.is_active:
        raise MagicLinkError("invalid")
    if link.used_at is not None:
        raise MagicLinkError("used")
    return MagicLinkCheck(link=link, user=link.user)


@transaction.atomic
def magic_link_consume(*, token: str) -> MagicLinkCheck:
    """Use a link up, which proves the address. Exactly one of any number of concurrent calls
    succeeds."""
    check = magic_link_check(token=token)
    used = MagicLink.objects.filter(pk=check.link.pk, used_at__isnull=True).update(used_at=timezone.now())
    if used != 1:
        raise MagicLinkError("used")
    user_email_verify(user=check.user)
    return check


@transaction.atomic
def user_sessions_end(*, user: User) -> None:
    """Log ``user`` out everywhere, whether or not the account has a password.

    Every session's auth hash includes ``session_generation`` (see ``User``), so raising it
    ends every session made before; ``user`` is updated to match, so that a login that follows
    opens a valid session.
    """
    User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    user.refresh_from_db(fields=["session_generation"])


@transaction.atomic
def user_email_verify(*, user: User) -> None:
    """The address's owner used an emailed link (to log in, or to choose a password).

    The first proof also ends every session made before it: those were opened by a browser
    that typed the address into a claim or purchase form, or by a password nobody proved the
    address for. Later proofs keep the owner's other sessions.
    """
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.email_verified_at is None:
        User.objects.filter(pk=user.pk).update(
            email_verified_at=timezone.now(), session_generation=F("session_generation") + 1
        )
    user.refresh_from_db(fields=["email_verified_at", "session_generation"])


@transaction.atomic
def user_access_added(*, user: User) -> bool:
    """Something new was attached to ``user``: a purchase, a free claim, a manual grant.

    While the address is unproven, any browser logged into the account got there by typing
    the address into a form, and what was just added may have been paid for by the address's
    real owner. So every session of an unproven account ends; the owner enters through the
    emailed link. Part of the caller's transaction: a grant that rolls back ends nothing.
    Returns whether sessions were ended.
    """
    locked = User.objects.select_for_update().only("pk", "email_verified_at").get(pk=user.pk)
    if locked.email_verified_at is not None:
        return False
    user_sessions_end(user=user)
    return True


@transaction.atomic
def magic_link_request(*, email: str, next_url: str = "") -> None:
    """Email a login link to ``email`` if an account has it (the login-link page, a repeated
    free claim), through the outbox: the page says an email is on its way, so it must not be
    lost to a broker outage.

    Says nothing about whether the account exists: the caller shows the same message either
    way, so the form cannot be used to find out who is a member.
    """
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        return
    # Every request is an email of its own: the key only has to be unique.
    outbox.outbox_email_record(
        key=f"login-link:{user.pk}:{uuid.uuid4().hex}",
        email="magic_link",
        user=user.pk,
        next_url=safe_next_url(next_url),
    )


def magic_link_email(*, user: User, next_url: str = "") -> outbox.Email:
    """The login-link email, with a link made now (so it is never stored readable)."""
    url = magic_link_create(user=user, next_url=next_url)
    return outbox.templated_email(
        to=user.email,
        name="magic_link",
        context={"user": user, "login_url": url, "max_age_hours": settings.MAGIC_LINK_MAX_AGE // 3600},
    )


def magic_link_email_build(payload: dict[str, Any]) -> outbox.Email | None:
    """The outbox's builder of ``magic_link`` rows: nothing for a closed or deleted account."""
    user = User.objects.filter(pk=payload["user"], is_active=True).first()
    if user is None:
        return None
    return magic_link_email(user=user, next_url=payload.get("next_url", ""))


def magic_link_email_send(*, user: User, next_url: str = "") -> None:
    email = magic_link_email(user=user, next_url=next_url)
    mail.send_message(to=email.to, subject=email.subject, text=email.text, html=email.html)
