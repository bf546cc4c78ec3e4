from __future__ import annotations

from celery import shared_task

from accounts.models import User
from accounts.outbox import outbox_send as outbox_message_send
from accounts.services import magic_link_email_send
from core.tasks import ReliableTask


# Nobody waits for its result. A failed send is not retried here: the row goes back to
# pending and the sweep tries it again with growing waits (see accounts/outbox.py).
@shared_task(base=ReliableTask, ignore_result=True)
def outbox_send(message_id: int) -> None:
    """Send one outbox row (queued after the commit that recorded it)."""
    outbox_message_send(message_id=message_id)


@shared_task(base=ReliableTask)
def send_magic_link_email(user_id: int, next_url: str = "") -> None:
    """Kept for tasks queued before login links went through the outbox."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    magic_link_email_send(user=user, next_url=next_url)
