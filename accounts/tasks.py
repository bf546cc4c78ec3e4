from __future__ import annotations

from celery import shared_task

from accounts.models import User
from accounts.services import magic_link_email_send
from core.tasks import ReliableTask


@shared_task(base=ReliableTask)
def send_magic_link_email(user_id: int, next_url: str = "") -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    magic_link_email_send(user=user, next_url=next_url)
