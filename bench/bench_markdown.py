"""The worst Markdown render at each form's longest text, over known pathological inputs.

Anyone can get an account through a free claim and post, so the slowest text a form
accepts bounds how long one request can hold a worker. Each figure is the whole pipeline
(``core.markdown.render_markdown``: caps, parser, nesting pass and nh3), the best of three
runs of the slowest input class, whose name is given in the note.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.harness import Figure, bench_data_dir, django_setup


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda length: (unit * (length // len(unit) + 1))[:length]


INPUTS: dict[str, Callable[[int], str]] = {
    "bracket runs": lambda length: "[" * (length // 2) + "]" * (length - length // 2),
    "image-bracket runs": _repeat("!["),
    "unclosed nested brackets": _repeat("[[]"),
    "unclosed nested image brackets": _repeat("![[]"),
    "emphasis runs": _repeat("*a_"),
    "nested emphasis": lambda length: ("*_" * (length // 4) + "a" + "_*" * length)[:length],
    "deep list nesting": _repeat("- "),
    "deep quote nesting": _repeat("> "),
    "long link chains": _repeat("[a](https://example.com/)"),
    "unclosed link destinations": _repeat("[a]("),
    "entities": _repeat("&"),
    "line breaks": _repeat("a\n"),
    "raw nested lists": _repeat("<ul><li>"),
    "raw nested quotes": _repeat("<blockquote>"),
    "raw unclosed tags": _repeat("<b t=1>"),
}


def _seconds(render: Callable[[str], str], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        render(text)
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[Figure]:
    with bench_data_dir() as data_dir:
        django_setup(data_dir)
        from django import forms

        from core.markdown import render_markdown
        from hubs.forms import CommentForm, PostForm
        from memberships.forms import OfferForm

        def longest(form: type[forms.Form], name: str) -> int:
            field = form.base_fields[name]
            assert isinstance(field, forms.CharField)
            assert field.max_length
            return field.max_length

        figures = []
        for label, length in (
            ("post body", longest(PostForm, "body")),
            ("comment body", longest(CommentForm, "body")),
            ("landing page text", longest(OfferForm, "landing_body")),
        ):
            times = {name: _seconds(render_markdown, make(length)) for name, make in INPUTS.items()}
            worst = max(times, key=times.__getitem__)
            figures.append(
                Figure(
                    name=f"worst Markdown render, {label} of {length:,} characters",
                    value=times[worst],
                    unit="s",
                    comparison="<=",
                    target=0.5,
                    note=f"({worst})",
                )
            )
    return figures
