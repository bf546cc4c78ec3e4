from __future__ import annotations

from celery import shared_task

from accounts.models import User
from core.tasks import ReliableTask
from memberships.models import Entitlement
from memberships.services import confirmation_email_send, confirmation_email_send_test


@shared_task(base=ReliableTask)
def send_confirmation_email(entitlement_id: int) -> None:
    """Kept for tasks queued before confirmation emails went through the outbox."""
    entitlement = Entitlement.objects.select_related("user", "offer").filter(pk=entitlement_id).first()
    if entitlement is None:
        return
    confirmation_email_send(entitlement=entitlement)


@shared_task(base=ReliableTask)
def send_test_confirmation_email(user_id: int, offer_title: str, subject: str, body: str) -> None:
    """The editor's *Send me a test* button, with the wording as it stands in the form."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    confirmation_email_send_test(to=user, offer_title=offer_title, subject=subject, body=body)
