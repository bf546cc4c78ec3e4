"""The one door for outgoing email.

Every email is three templates, ``templates/emails/<name>_subject.txt``, ``<name>_body.txt``
and ``<name>_body.html``, rendered with the same context and sent as one multipart message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string


def render_email(name: str, context: dict[str, Any]) -> tuple[str, str, str | None]:
    context = {"SITE_NAME": settings.SITE_NAME, "SITE_URL": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
    text = render_to_string(f"emails/{name}_body.txt", context)
    try:
        html: str | None = render_to_string(f"emails/{name}_body.html", context)
    except TemplateDoesNotExist:
        html = None
    return subject, text, html


def send_message(*, to: str, subject: str, text: str, html: str | None = None, reply_to: str | None = None) -> None:
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[reply_to] if reply_to else None,
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def send_templated(*, to: str, name: str, context: dict[str, Any]) -> None:
    subject, text, html = render_email(name, context)
    send_message(to=to, subject=subject, text=text, html=html)
