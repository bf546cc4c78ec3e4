"""The one Markdown renderer: safe output, readable text past the nesting caps, linear time.

The timing tests compare ratios, never absolute times, so they hold on a slow or busy
machine: text ten times longer must cost less than thirty times as much (linear work costs
about ten times, quadratic work a hundred).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from core.markdown import MAX_CONTAINER_DEPTH, MAX_HTML_DEPTH, render_markdown

# The longest text any form accepts (a post body and a landing page's text).
LONGEST = 20_000


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda length: (unit * (length // len(unit) + 1))[:length]


PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "bracket runs": lambda length: "[" * (length // 2) + "]" * (length - length // 2),
    "image-bracket runs": _repeat("!["),
    "unclosed nested brackets": _repeat("[[]"),
    "unclosed nested image brackets": _repeat("![[]"),
    "emphasis runs": _repeat("*a_"),
    "nested emphasis": lambda length: ("*_" * (length // 4) + "a" + "_*" * length)[:length],
    "deep list nesting": _repeat("- "),
    "deep quote nesting": _repeat("> "),
    "long link chains": _repeat("[a](https://example.com/)"),
    "long reference chains": lambda length: "[a]: /u\n\n" + _repeat("[a]")(length - 9),
    "raw nested lists": _repeat("<ul><li>"),
    "raw nested quotes": _repeat("<blockquote>"),
}


def _seconds(text: str) -> float:
    """The best of a few timings of rendering ``text``, each long enough to measure.

    CPU time of this process, not wall time: other processes on a loaded machine then cost
    the measurement nothing."""
    start = time.process_time()
    render_markdown(text)
    once = time.process_time() - start
    number = max(1, int(0.02 / max(once, 1e-6)))
    best = once
    for _ in range(3):
        start = time.process_time()
        for _ in range(number):
            render_markdown(text)
        best = min(best, (time.process_time() - start) / number)
    return best


@pytest.mark.parametrize("make", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_ten_times_longer_pathological_text_costs_less_than_thirty_times_as_much(
    make: Callable[[int], str],
) -> None:
    short, long = make(LONGEST // 10), make(LONGEST)
    assert len(long) == LONGEST
    # Linear rendering costs about 10x and quadratic about 100x, so one noisy measurement can
    # be told from a quadratic renderer by measuring again: the best of three rounds counts.
    ratios = []
    for _ in range(3):
        ratios.append(_seconds(long) / _seconds(short))
        if ratios[-1] < 30:
            break
    assert min(ratios) < 30, f"rendering 10x more text cost {min(ratios):.0f}x the time"


def _depth(html: str) -> int:
    depth = deepest = 0
    for closing, name in re.findall(r"<(/?)([a-z0-9]+)[^>]*>", html):
        if name in {"br", "hr", "img"}:
            continue
        depth += -1 if closing else 1
        deepest = max(deepest, depth)
    return deepest


def test_quotes_nested_past_the_cap_still_show_their_text() -> None:
    html = render_markdown("> " * 500 + "the deepest thought")
    assert "the deepest thought" in html
    assert html.count("<blockquote>") == MAX_CONTAINER_DEPTH


def test_lists_nested_past_the_cap_still_show_their_text() -> None:
    html = render_markdown("- " * 5000 + "the last item")
    assert "the last item" in html
    assert html.count("<ul>") == MAX_CONTAINER_DEPTH


def test_lists_nested_by_indentation_past_the_cap_still_show_their_text() -> None:
    html = render_markdown("".join("  " * level + f"- item {level}\n" for level in range(40)))
    assert "item 39" in html
    assert _depth(html) <= 2 * MAX_CONTAINER_DEPTH + 1


def test_raw_html_nested_past_the_cap_keeps_its_text_and_the_cap() -> None:
    html = render_markdown("<ul><li>" * 2000 + "inside" + "</li></ul>" * 2000 + "\n\nafter")
    assert "inside" in html
    assert "<p>after</p>" in html
    assert _depth(html) <= MAX_HTML_DEPTH
    quotes = render_markdown("<blockquote>" * 2000 + "quoted")
    assert "quoted" in quotes
    assert _depth(quotes) <= MAX_HTML_DEPTH


def test_moderate_nesting_renders_as_written() -> None:
    html = render_markdown("> quote\n>\n> - item\n>   - nested item\n\n1. first\n2. second")
    assert "<blockquote>" in html
    assert html.count("<ul>") == 2
    assert "<li>nested item</li>" in html
    assert "<ol>" in html


def test_a_long_row_of_dashes_is_still_a_rule_and_fenced_code_is_untouched() -> None:
    assert render_markdown("- " * 30) == "<hr>"
    code = "```\n" + "> " * 40 + "\n```"
    assert "&gt; " * 39 in render_markdown(code)
    assert "\\" not in render_markdown(code)


def test_markdown_and_safe_html_render() -> None:
    html = render_markdown("**Bold** and *soft*\nnext line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<sup>2</sup>")
    assert "<strong>Bold</strong> and <em>soft</em><br>" in html
    assert "<table>" in html
    assert "<td>1</td>" in html
    assert "<sup>2</sup>" in html


def test_links_are_marked_as_user_content() -> None:
    html = render_markdown("[a link](https://example.com)")
    assert html == '<p><a href="https://example.com" rel="nofollow noopener noreferrer ugc">a link</a></p>'


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        ("<script>alert('pwned')</script>Hello", "<script"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ("[click me](javascript:alert(1))", "javascript:"),
        ("![pic](javascript:alert(1))", "javascript:"),
        ('<a href="JaVaScRiPt:alert(1)">click</a>', "avascript:"),
        ("<svg><script>alert(1)</script></svg>", "alert(1)"),
        ('<iframe src="https://evil.example"></iframe>', "<iframe"),
        ('<p style="background:url(javascript:alert(1))">x</p>', "style="),
        ('<a href="x" title="<script>">y</a><img src=x onerror=alert(1)//', "onerror="),
        ("<!--><script>alert(1)</script>-->", "<script"),
        ("<ul><li>" * 100 + "<script>alert(1)</script>", "<script"),
    ],
)
def test_markup_renders_inert(markdown: str, forbidden: str) -> None:
    assert forbidden.lower() not in render_markdown(markdown).lower()


def test_a_less_than_sign_that_opens_no_tag_is_text() -> None:
    assert render_markdown("x < y and a<b") == "<p>x &lt; y and a&lt;b</p>"
