from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from core.markdown import render_markdown

register = template.Library()


@register.filter
def partner_markdown(text: str) -> SafeString:
    """The creator's program description: plain text or Markdown, sanitised by core.markdown."""
    return render_markdown(text or "")
