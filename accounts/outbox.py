"""The outbox: side effects that committed changes require (emails, Stripe writes), recorded
with the change and carried out after it, so that neither a crash nor a broker outage between
the commit and the send loses one.

A service records a row in its own transaction (``outbox_email_record``,
``outbox_action_record``), under a key naming the change, so recording it twice is a no-op.
After commit the task ``accounts.tasks.outbox_send`` sends it; if that task is lost, the
sweep (``outbox_sweep``, run by the periodic sweep and by ``manage.py sweep_events``) sends
it. Email cannot be made idempotent, so a send claims the row first (pending -> sending) and
marks it sent after: a process that dies in between leaves a row ``sending``, which is sent
once more, logged as possibly duplicated, and then left to a person.

Emails are built when they are sent, from the ids in the payload, by a builder that the app
owning the email registers here by name (``email_builder_register``, in ``AppConfig.ready``):
accounts sits below the apps whose emails it sends.

Stripe writes (refunds, cancellations) are carried out the same way by a performer that the
owning app registers by name (``action_register``). Unlike an email they are idempotent: the
performer passes Stripe an idempotency key made from the row's key, the same on every try, so
a row orphaned mid-call is simply performed again and a failed call goes back to pending with
the same waits. A performer raises ``PermanentFailure`` for an error no retry can fix (the
charge is already refunded): the row is failed at once, for a person. Performers run outside
any database transaction, as Stripe calls must: ``outbox_send`` refuses to run one inside.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import mail
from accounts.models import OUTBOX_STUCK_SENDING_AFTER, OutboxMessage
from core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

SEND_TASK = "accounts.tasks.outbox_send"
# How long a pending row is left to its own task before the sweep sends it.
SWEEP_AFTER = timedelta(minutes=2)
# A send that failed (the SMTP server down) is tried again by the sweep, with waits doubling
# from two minutes to an hour: about eight hours in all, then the row is failed and waits for
# a person's Retry on the Stripe events page.
MAX_ATTEMPTS = 12
LONGEST_WAIT = timedelta(hours=1)


def _retry_wait(attempts: int) -> timedelta:
    return min(SWEEP_AFTER * (1 << max(0, attempts - 1)), LONGEST_WAIT)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str | None = None


# Builds the email from a row's payload when it is sent; None when there is nothing to send
# any more (the account was deleted, say).
EmailBuilder = Callable[[dict[str, Any]], Email | None]
_email_builders: dict[str, EmailBuilder] = {}


def email_builder_register(name: str, builder: EmailBuilder) -> None:
    _email_builders[name] = builder


def templated_email(*, to: str, name: str, context: dict[str, Any]) -> Email:
    """An email of the templates ``emails/<name>_*`` (see ``accounts.mail``), for builders."""
    subject, text, html = mail.render_email(name, context)
    return Email(to=to, subject=subject, text=text, html=html)


class PermanentFailure(Exception):
    """Raised by a performer for an error that retrying cannot fix ("This charge has already
    been refunded"): the row is failed at once with ``message``, which a person reads on the
    Stripe events page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Carries out a Stripe write from a row's payload, passing Stripe the idempotency key it is
# given; returns a short result to keep on the row (the refund's id, say), or None.
Performer = Callable[[dict[str, Any], str], str | None]
_performers: dict[str, Performer] = {}


def action_register(name: str, performer: Performer) -> None:
    _performers[name] = performer


def idempotency_key(key: str) -> str:
    """The Stripe idempotency key of the row whose key is ``key``: the same on every try, at
    most 255 characters (Stripe's limit), so a retried call is done once."""
    derived = f"outbox:{key}"
    if len(derived) <= 255:
        return derived
    return f"outbox:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def outbox_email_record(*, key: str, email: str, **ids: Any) -> OutboxMessage:
    """Record, in the caller's transaction, that the email ``email`` (a registered builder's
    name) must be sent with ``ids``, and queue its sending after commit.

    The unique key decides: recording the same key again (a replayed event, a race) finds the
    first row and queues nothing. A broker outage at commit leaves the row to the sweep.
    """
    if email not in _email_builders:
        raise LookupError(f"no email builder is registered as {email!r}")
    message, created = OutboxMessage.objects.get_or_create(
        key=key, defaults={"kind": OutboxMessage.Kind.EMAIL, "payload": {"email": email, **ids}}
    )
    if created:
        enqueue_on_commit(SEND_TASK, message.pk, robust=True)
    return message


def outbox_action_record(*, key: str, action: str, **ids: Any) -> OutboxMessage:
    """Record, in the caller's transaction, that the Stripe write ``action`` (a registered
    performer's name) must be done with ``ids``, and queue it after commit.

    As for emails, the unique key decides: the same key again (a double submit, a replayed
    event) finds the first row and queues nothing; a broker outage leaves the row to the sweep.
    """
    if action not in _performers:
        raise LookupError(f"no outbox action is registered as {action!r}")
    message, created = OutboxMessage.objects.get_or_create(
        key=key, defaults={"kind": OutboxMessage.Kind.STRIPE, "payload": {"action": action, **ids}}
    )
    if created:
        enqueue_on_commit(SEND_TASK, message.pk, robust=True)
    return message


def outbox_status(key: str) -> OutboxMessage | None:
    """The row recorded under ``key`` (its status, result and last error say how a requested
    write went), or None when nothing was recorded."""
    return OutboxMessage.objects.filter(key=key).first()


def _in_transaction() -> bool:
    """Whether a database transaction is open; the blocks a test case wraps every test in do
    not count (as for ``durable=True``)."""
    return any(
        not getattr(block, "_from_testcase", False)
        for connection in connections.all(initialized_only=True)
        for block in connection.atomic_blocks
    )


def _claim(message_id: int, now: datetime) -> OutboxMessage | None:
    """Take the row for one send with one conditional UPDATE: a pending row, or a row whose
    sender died mid-send (sending for too long): an email only if it was not already sent
    again once, a Stripe write until its last try."""
    pending = OutboxMessage.objects.filter(pk=message_id, status=OutboxMessage.Status.PENDING).update(
        status=OutboxMessage.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not pending:
        orphans = OutboxMessage.objects.filter(
            pk=message_id, status=OutboxMessage.Status.SENDING, claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER
        )
        if orphans.filter(kind=OutboxMessage.Kind.EMAIL, possibly_duplicated=False).update(
            claimed_at=now, attempts=F("attempts") + 1, possibly_duplicated=True
        ):
            logger.warning(
                "outbox row %s was left sending by a process that died: sending it once more, possibly duplicated",
                message_id,
            )
        elif orphans.filter(kind=OutboxMessage.Kind.STRIPE, attempts__lt=MAX_ATTEMPTS).update(
            claimed_at=now, attempts=F("attempts") + 1
        ):
            logger.info(
                "outbox row %s was left mid-call by a process that died: calling Stripe again with the same key",
                message_id,
            )
        else:
            return None
    return OutboxMessage.objects.get(pk=message_id)


def outbox_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send one row if it is still to be sent; returns the row's status afterwards ("sent",
    "pending" again after a failure that will be retried, "failed"), or "skipped" when another
    process has it or it was sent already.

    Not atomic on purpose: the claim is committed before the send, and the mark after it.
    """
    now = now or timezone.now()
    if _in_transaction() and OutboxMessage.objects.filter(pk=message_id, kind=OutboxMessage.Kind.STRIPE).exists():
        raise RuntimeError(
            f"outbox row {message_id} is a Stripe write: send it outside any database transaction "
            "(queue it on commit), so that its claim is committed and Stripe is not called inside one"
        )
    message = _claim(message_id, now)
    if message is None:
        return "skipped"
    if message.kind == OutboxMessage.Kind.STRIPE:
        return _perform(message)
    try:
        email = _email_builders[message.payload["email"]](message.payload)
        if email is not None:
            mail.send_message(to=email.to, subject=email.subject, text=email.text, html=email.html)
    except Exception as exc:
        failed = message.attempts >= MAX_ATTEMPTS
        status = OutboxMessage.Status.FAILED if failed else OutboxMessage.Status.PENDING
        # The email most likely never left (the SMTP server refused or was unreachable).
        OutboxMessage.objects.filter(pk=message.pk).update(status=status, last_error=repr(exc)[:4000])
        logger.warning("outbox row %s (%s) was not sent: %r", message.pk, message.key, exc)
        return status
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return OutboxMessage.Status.SENT


def _perform(message: OutboxMessage) -> str:
    """Carry out a claimed Stripe write with its row's idempotency key and record how it went."""
    try:
        result = _performers[message.payload["action"]](message.payload, idempotency_key(message.key))
    except PermanentFailure as exc:
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxMessage.Status.FAILED, last_error=exc.message[:4000]
        )
        logger.warning("outbox row %s (%s) failed for good: %s", message.pk, message.key, exc.message)
        return OutboxMessage.Status.FAILED
    except Exception as exc:
        failed = message.attempts >= MAX_ATTEMPTS
        status = OutboxMessage.Status.FAILED if failed else OutboxMessage.Status.PENDING
        OutboxMessage.objects.filter(pk=message.pk).update(status=status, last_error=repr(exc)[:4000])
        logger.warning("outbox row %s (%s) was not done: %r", message.pk, message.key, exc)
        return status
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.SENT, sent_at=timezone.now(), last_error="", result=(result or "")[:255]
    )
    return OutboxMessage.Status.SENT


@transaction.atomic
def outbox_retry(*, message: OutboxMessage, now: datetime | None = None) -> bool:
    """A person's Retry: make a failed, pending or orphaned row pending and queue its send.
    A row sent, or still being sent, is left as it is: returns False. An orphaned email may
    go out twice; a Stripe write is done once, through its idempotency key."""
    now = now or timezone.now()
    queued = (
        OutboxMessage.objects.filter(pk=message.pk)
        .filter(
            Q(status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED])
            | Q(status=OutboxMessage.Status.SENDING, claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER)
        )
        .update(status=OutboxMessage.Status.PENDING)
    )
    if queued:
        if message.status == OutboxMessage.Status.SENDING and message.kind == OutboxMessage.Kind.EMAIL:
            logger.warning("outbox row %s was left sending: retried by staff, possibly duplicated", message.pk)
            OutboxMessage.objects.filter(pk=message.pk).update(possibly_duplicated=True)
        enqueue_on_commit(SEND_TASK, message.pk, robust=True)
    return bool(queued)


@dataclass(frozen=True)
class OutboxSweep:
    sent: int = 0
    failed: int = 0  # tried and not sent (still pending, or failed for good)
    given_up: int = 0  # an email orphaned a second time, a Stripe write on its last try: left failed

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.failed} not sent, {self.given_up} given up"


def outbox_sweep(*, now: datetime | None = None, limit: int = 200) -> OutboxSweep:
    """Send rows that their task never sent: pending after ``SWEEP_AFTER`` (its task lost, or
    a failed send resting), and rows orphaned mid-send: an email once (orphaned again after
    that one retry, it is marked failed and left to a person), a Stripe write until its last
    try. Stripe writes are performed here too, so the sweep must run outside a transaction.

    Sends here rather than queueing: the sweep also runs from ``manage.py sweep_events``,
    which works while the broker is down.
    """
    now = now or timezone.now()
    given_up = OutboxMessage.objects.filter(
        status=OutboxMessage.Status.SENDING,
        claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER,
        possibly_duplicated=True,
    ).update(
        status=OutboxMessage.Status.FAILED,
        last_error="The process sending it died twice; it may have been sent. Not retried automatically.",
    ) + OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.STRIPE,
        status=OutboxMessage.Status.SENDING,
        claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER,
        attempts__gte=MAX_ATTEMPTS,
    ).update(
        status=OutboxMessage.Status.FAILED,
        last_error="The process sending it to Stripe stopped on every try. Not retried automatically.",
    )
    candidates = OutboxMessage.objects.filter(
        Q(status=OutboxMessage.Status.PENDING, created_at__lt=now - SWEEP_AFTER)
        & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - SWEEP_AFTER))
        | Q(status=OutboxMessage.Status.SENDING, claimed_at__lt=now - OUTBOX_STUCK_SENDING_AFTER)
    ).order_by("created_at")
    due = [
        pk
        for pk, status, attempts, claimed_at in candidates.values_list("pk", "status", "attempts", "claimed_at")[
            : limit * 2
        ]
        if status == OutboxMessage.Status.SENDING or claimed_at is None or claimed_at <= now - _retry_wait(attempts)
    ][:limit]
    sent = failed = 0
    for message_id in due:
        status = outbox_send(message_id=message_id, now=now)
        if status == OutboxMessage.Status.SENT:
            sent += 1
        elif status != "skipped":
            failed += 1
    return OutboxSweep(sent=sent, failed=failed, given_up=given_up)
