from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

# Django's own salt, so that a session made before ``session_generation`` existed stays valid.
_SESSION_HASH_SALT = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"


def normalize_email(email: str) -> str:
    """One spelling per address: emails are matched case-insensitively everywhere."""
    return email.strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        # The operator typed this address at the server's console: trusted as proven, so a
        # stranger claiming a free offer with it cannot end the operator's sessions.
        extra.setdefault("email_verified_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person: a creator (``is_staff``) or a member. The email address is the login."""

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        "creator / staff", default=False, help_text="Staff users work in the creator dashboard."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # When the owner of the address proved it by using an emailed link (login, password reset).
    # Until then the account may have been made by anyone who typed the address into a form.
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Raised by ``accounts.services.user_sessions_end``: part of every session's auth hash, so
    # raising it ends every session of the account, whether or not it has a password.
    session_generation = models.PositiveIntegerField(default=0)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_session_auth_hash(self) -> str:
        return self._session_auth_hash(secret=None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_auth_hash(secret=secret)

    def _session_auth_hash(self, *, secret: str | bytes | None) -> str:
        # Django ties a session to the password hash; the generation ties it to the last time
        # every session was ended too. Generation 0 gives Django's own hash.
        value = f"{self.password}:{self.session_generation}" if self.session_generation else self.password
        return salted_hmac(_SESSION_HASH_SALT, value, secret=secret, algorithm="sha256").hexdigest()

    def get_full_name(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        """The name other members see: never the email address."""
        return self.full_name or "Member"

    def get_short_name(self) -> str:
        return (self.full_name.split(" ")[0] if self.full_name else "") or self.email


class MagicLink(models.Model):
    """A single-use login link sent by email.

    The URL carries a signed, timestamped token (tampering and expiry are caught by the
    signature); this row makes it single-use: consuming it is one conditional UPDATE, so two
    clicks racing each other cannot both log in.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="magic_links")
    key = models.CharField(max_length=64, unique=True)
    next_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"Magic link for {self.user} ({'used' if self.used_at else 'unused'})"


class OutboxQuerySet(models.QuerySet["OutboxMessage"]):
    def stuck(self, *, now: datetime) -> OutboxQuerySet:
        """Rows a person should look at: pending for more than a few minutes, failed, or sending
        for longer than any send takes (its process died)."""
        return self.filter(
            models.Q(status=OutboxMessage.Status.PENDING, created_at__lt=now - OUTBOX_STUCK_PENDING_AFTER)
            | models.Q(status=OutboxMessage.Status.FAILED)
            | models.Q(status=OutboxMessage.Status.SENDING, claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER)
        ).order_by("created_at")


# A pending row this old has missed its task and at least one sweep.
OUTBOX_STUCK_PENDING_AFTER = timedelta(minutes=5)
# Longer than any send can take, since a task is killed at CELERY_TASK_TIME_LIMIT: a row still
# sending a minute after that was claimed by a process that died, before or after the email left.
OUTBOX_STUCK_SENDING_AFTER = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


class OutboxMessage(models.Model):
    """A side effect that a committed change requires (an email, or a Stripe write such as a
    refund), written in the change's own transaction and carried out after it by a task, or by
    the sweep if that task was lost.

    ``key`` says which change asked for it (``confirmation:<entitlement>:<grant>``), so
    recording it again is a no-op. ``payload`` holds ids, not a rendered message: the email is
    built when it is sent, so a login link is made then and never stored in readable form.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        STRIPE = "stripe", "Stripe write"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.EMAIL)
    key = models.CharField(max_length=200, unique=True)
    # For an email: {"email": <the registered builder's name>, ...the ids it builds from}; for a
    # Stripe write: {"action": <the registered performer's name>, ...the ids it acts on}.
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Set when a send found the row claimed by a process that died: the email may have left twice.
    possibly_duplicated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # What a Stripe write returned (the refund's id, say); blank for emails.
    result = models.CharField(max_length=255, blank=True)

    objects = OutboxQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.status})"
