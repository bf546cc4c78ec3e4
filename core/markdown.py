"""Markdown written by members and creators, rendered to HTML that is safe to show to everyone.

The one renderer of the project: posts, comments and landing pages all go through
``render_markdown``. Every step is linear in the length of the text, because anyone with a
free account can post and a quadratic step lets one request occupy a worker for seconds:

1. ``_cap_containers`` escapes block quote and list markers nested deeper than
   ``MAX_CONTAINER_DEPTH`` on a line, so they read as plain text instead of nesting further
   (the parser would otherwise drop such content, and deep nesting recurses).
2. markdown-it-py parses CommonMark in linear time, and ``maxNesting`` bounds its nesting.
3. ``_cap_html_nesting`` rewrites the result, raw HTML included, into balanced tags at most
   ``MAX_HTML_DEPTH`` deep: deeper tags are dropped (their text stays), any ``<`` that does
   not begin a well-formed tag is escaped, comments are removed. The HTML parser behind nh3
   spends time proportional to the depth of open elements on each tag, so this bounds it.
4. nh3 (the Rust ``ammonia`` sanitizer) keeps only an allow-list of tags, attributes and URL
   schemes. Nothing executable survives: no ``<script>``, no event-handler attributes, no
   ``javascript:`` URLs; links get ``rel="nofollow noopener noreferrer ugc"``.
"""

from __future__ import annotations

import re
import types
import weakref

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it import helpers as markdown_it_helpers
from markdown_it.rules_inline import StateInline

# Deeper quotes and lists than anyone writes on purpose; each list level is two HTML elements.
MAX_CONTAINER_DEPTH = 16
MAX_HTML_DEPTH = 64
# CommonMark's own limit for a reference label; here it bounds the text of any link or image.
MAX_LINK_LABEL = 999

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_parser = MarkdownIt(
    "commonmark",
    # Raw HTML stays allowed, as members have always written it; nh3 decides what survives.
    # Room for MAX_CONTAINER_DEPTH lists (two levels each), a table and some inline markup.
    {"html": True, "breaks": True, "maxNesting": 2 * MAX_CONTAINER_DEPTH + 8},
).enable("table")
# Every URL reaches nh3, which removes the unsafe ones (a link then keeps its text, unlinked).
_parser.validateLink = lambda url: True  # type: ignore[method-assign]


# Steps of link-label scanning a paragraph may spend per character of its text. Ordinary text
# spends about one or two; past the budget, brackets are left as text.
LABEL_SCAN_STEPS_PER_CHARACTER = 8
_label_budgets: weakref.WeakKeyDictionary[StateInline, list[int]] = weakref.WeakKeyDictionary()


def _parse_link_label(state: StateInline, start: int, disable_nested: bool = False) -> int:
    """markdown-it's ``parseLinkLabel`` with bounded work.

    Each ``[`` makes the parser look ahead for its ``]``; unbounded, a run of ``[`` or ``![``
    costs the square of its length. Here a label is at most ``MAX_LINK_LABEL`` characters, and
    all the looking ahead in one paragraph is at most ``LABEL_SCAN_STEPS_PER_CHARACTER`` steps
    per character of it.
    """
    limit = min(state.posMax, start + 1 + MAX_LINK_LABEL)
    if state.src.find("]", start + 1, limit) < 0:
        return -1  # the common failure, found without a character-by-character walk
    # One counter per paragraph, shared with the scans that skipToken starts inside this one.
    budget = _label_budgets.setdefault(state, [LABEL_SCAN_STEPS_PER_CHARACTER * len(state.src) + MAX_LINK_LABEL])
    old_position = state.pos
    state.pos = start + 1
    level = 1
    label_end = -1
    while state.pos < limit and budget[0] > 0:
        budget[0] -= 1
        marker = state.src[state.pos]
        if marker == "]":
            level -= 1
            if level == 0:
                label_end = state.pos
                break
        previous = state.pos
        state.md.inline.skipToken(state)
        if marker == "[":
            if previous == state.pos - 1:
                level += 1  # a plain "[" that is not part of another token
            elif disable_nested:
                break
    state.pos = old_position
    return label_end


_helpers = types.ModuleType("core.markdown.helpers")
_helpers.__dict__.update(vars(markdown_it_helpers))
_helpers.parseLinkLabel = _parse_link_label  # type: ignore[attr-defined]
_parser.helpers = _helpers


def render_markdown(text: str) -> SafeString:
    html = _parser.render(_cap_containers(text))
    clean = nh3.clean(
        _cap_html_nesting(html),
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer ugc",
    )
    return mark_safe(clean.strip())  # sanitised by nh3 just above


# --- Markdown containers --------------------------------------------------------------------
# A block quote or list marker at the start of a line, after optional indentation.
_CONTAINER_MARKER = re.compile(r"([ \t]*+)(>|[-+*](?=[ \t]|$)|[0-9]{1,9}+[.)](?=[ \t]|$))")
_FENCE = re.compile(r" {0,3}(`{3,}+|~{3,}+)")
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*+\1){2,}+[ \t]*+")


def _cap_containers(text: str) -> str:
    """Escape the first marker that would nest a line deeper than ``MAX_CONTAINER_DEPTH``.

    A line can sit in at most one container per marker on it plus one per two columns of
    indentation (a list item's content is indented at least two columns), so that sum is an
    upper bound on its depth. Fenced code is left alone.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fence = ""
    for number, line in enumerate(lines):
        if fence:
            if line.lstrip(" ").startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
            continue
        if (opening := _FENCE.match(line)) and not (opening.group(1)[0] == "`" and "`" in line[opening.end() :]):
            fence = opening.group(1)
            continue
        if _THEMATIC_BREAK.fullmatch(line):
            continue
        depth = 0
        position = 0
        while marker := _CONTAINER_MARKER.match(line, position):
            depth += len(marker.group(1).expandtabs(4)) // 2 + 1
            if depth > MAX_CONTAINER_DEPTH:
                # A backslash before a marker's punctuation makes it literal text.
                cut = marker.end() - 1
                lines[number] = line[:cut] + "\\" + line[cut:]
                break
            position = marker.end()
    return "\n".join(lines)


# --- HTML nesting ---------------------------------------------------------------------------
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*+)"
    r"((?:[ \t\n\f\r]++[^\s\"'<>/=]++(?:[ \t\n\f\r]*+=[ \t\n\f\r]*+"
    r"(?:\"[^\"<]*+\"|'[^'<]*+'|[^\s\"'=<>`]++))?+)*+)[ \t\n\f\r]*+(/?)>"
)
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip


class _NextOf:
    """Where ``needle`` next occurs in ``text`` from a position on, each search done once."""

    def __init__(self, text: str, needle: str) -> None:
        self.text, self.needle, self.found = text, needle, -2

    def after(self, position: int) -> int:
        if self.found != -1 and self.found < position:
            self.found = self.text.find(self.needle, position)
        return self.found


def _cap_html_nesting(html: str) -> str:
    """Rewrite ``html`` into balanced tags at most ``MAX_HTML_DEPTH`` deep, in one pass.

    Only well-formed tags are kept (attribute values without ``<`` or ``>``); any other ``<``
    becomes ``&lt;``, so the sanitizer meets no tag that this pass has not counted. Comments,
    ``<!...>`` and ``<?...>`` are removed (the sanitizer drops them too). An end tag closes the
    elements left open inside its element; one that matches no open element is dropped.
    """
    out: list[str] = []
    stack: list[str] = []
    dropped = 0  # opening tags dropped for depth whose end tags are still to come
    comment_ends = (_NextOf(html, "-->"), _NextOf(html, "--!>"))
    closing_bracket = _NextOf(html, ">")
    position = 0
    length = len(html)
    while position < length:
        start = html.find("<", position)
        if start < 0:
            out.append(html[position:])
            break
        out.append(html[position:start])
        if html.startswith("<!--", start):
            # An HTML comment ends at the first "-->" or "--!>", even inside "<!-->".
            ends = [end + len(search.needle) for search in comment_ends if (end := search.after(start + 2)) >= 0]
            position = min(ends, default=length)
            continue
        if html.startswith(("<!", "<?"), start):
            end = closing_bracket.after(start)
            position = length if end < 0 else end + 1
            continue
        tag = _TAG.match(html, start)
        if tag is None:
            out.append("&lt;")
            position = start + 1
            continue
        position = tag.end()
        closing, name = tag.group(1), tag.group(2).lower()
        if not closing:
            if name in _VOID:
                out.append(tag.group(0))
            elif len(stack) < MAX_HTML_DEPTH:
                stack.append(name)
                out.append(tag.group(0))
            else:
                dropped += 1
        elif dropped:
            dropped -= 1
        elif name in stack:
            while stack:
                open_name = stack.pop()
                out.append(f"</{open_name}>")
                if open_name == name:
                    break
    out.extend(f"</{name}>" for name in reversed(stack))
    return "".join(out)
