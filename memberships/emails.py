"""The offer confirmation email: the creator's wording with placeholders, or a default.

The creator writes plain text with placeholders such as ``{{ buyer_name }}``. Placeholders are
the only thing substituted (the text never goes through the template engine), and in the HTML
part both the creator's text and every value are escaped, so neither a buyer's name nor the
creator's text can inject markup.

After the creator's text the email states the purchase's terms, from optional values that
are not placeholders (the creator cannot move or drop them): ``amount_paid`` (``$25.00``),
``interval_label`` (``Monthly``), ``next_payment_date`` (as the buyer reads it) and
``memberships_url`` (My memberships). A free claim has no terms; each line is shown only when
its value is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.html import escape, linebreaks

PLACEHOLDERS: dict[str, str] = {
    "buyer_name": "the buyer's name",
    "offer_title": "the offer's title",
    "login_link": "a link that logs the buyer in",
    "community_url": "the address of the community",
}
LINK_PLACEHOLDERS = {"login_link", "community_url"}
TERMS = ("amount_paid", "interval_label", "next_payment_date", "memberships_url")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")

DEFAULT_SUBJECT = "You're in: {{ offer_title }}"
DEFAULT_BODY = """Hi {{ buyer_name }},

Thank you for joining {{ offer_title }}. Your access is ready.

Log in to the community with this link (it works once):
{{ login_link }}

Next time, you'll find the community at {{ community_url }}"""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    # The purchase's terms, shown after the text by the templates when not blank (see TERMS).
    amount_paid: str = ""
    interval_label: str = ""
    next_payment_date: str = ""
    memberships_url: str = ""


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER_RE.findall(text) if name not in PLACEHOLDERS})


def render_confirmation(*, subject: str, body: str, values: dict[str, str]) -> RenderedEmail:
    """Fill the placeholders of ``subject`` and ``body`` (blank: the defaults), and carry the
    purchase's terms (``TERMS``) found in ``values`` to the templates."""
    subject = subject.strip() or DEFAULT_SUBJECT
    body = body.strip() or DEFAULT_BODY

    def text_value(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    def html_value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return escape(match.group(0))
        if name in LINK_PLACEHOLDERS:
            return f'<a href="{escape(values[name])}">{escape(values[name])}</a>'
        return str(escape(values[name]))

    rendered_subject = " ".join(PLACEHOLDER_RE.sub(text_value, subject).split())
    text = PLACEHOLDER_RE.sub(text_value, body)
    # Escape the creator's text piece by piece around the placeholders, then paragraphs.
    pieces: list[str] = []
    position = 0
    for match in PLACEHOLDER_RE.finditer(body):
        pieces.append(str(escape(body[position : match.start()])))
        pieces.append(html_value(match))
        position = match.end()
    pieces.append(str(escape(body[position:])))
    html = linebreaks("".join(pieces), autoescape=False)
    terms = {name: values[name] for name in TERMS if values.get(name)}
    return RenderedEmail(subject=rendered_subject, text=text, html=html, **terms)
