"""Markdown written by the creator, rendered to HTML that can carry no script."""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "a", "p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "h2", "h3", "h4", "hr", "img",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}


def markdown_to_html(text: str) -> SafeString:
    html = markdown.markdown(text, extensions=["sane_lists"], output_format="html")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # sanitised by nh3 just above
