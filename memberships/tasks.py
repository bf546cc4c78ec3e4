from __future__ import annotations

from celery import shared_task

from config.celery import ReliableTask


@shared_task(base=ReliableTask)
def send_confirmation_email(entitlement_id: int) -> None:
    """The offer's confirmation email to its buyer (the offers work customises its content)."""
    from accounts import mail
    from memberships.models import Entitlement

    entitlement = Entitlement.objects.select_related("user", "offer").filter(pk=entitlement_id).first()
    if entitlement is None:
        return
    mail.send_templated(
        to=entitlement.user.email,
        name="offer_confirmation",
        context={"user": entitlement.user, "offer": entitlement.offer},
    )
