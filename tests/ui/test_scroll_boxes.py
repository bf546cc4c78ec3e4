"""Every table's scrolling box is one a keyboard can reach and a screen reader can name: axe
calls a scrollable region without them serious, and the scan only sees the pages it visits,
so the templates are checked as written."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
BOX = re.compile(r"<div\b[^>]*\bclass=\"table-scroll\"[^>]*>")


def test_every_table_scroll_box_has_a_role_a_name_and_a_tab_stop() -> None:
    boxes = {
        f"{path.relative_to(TEMPLATES)}: {tag}"
        for path in TEMPLATES.rglob("*.html")
        for tag in BOX.findall(path.read_text())
    }
    assert boxes, "no scrolling boxes found: the pattern no longer matches the templates"
    lacking = sorted(
        box for box in boxes if not all(part in box for part in ('role="region"', "aria-label=", 'tabindex="0"'))
    )
    assert lacking == []


TABLE = re.compile(r"<table\b")
BOX_THEN_TABLE = re.compile(r"<div\b[^>]*\bclass=\"table-scroll\"[^>]*>\s*<table\b")


def test_every_table_of_a_page_sits_in_a_scrolling_box() -> None:
    """A wide table must scroll in its own box, never widen a phone's page (emails aside)."""
    loose = []
    for path in TEMPLATES.rglob("*.html"):
        if path.relative_to(TEMPLATES).parts[0] == "emails":
            continue
        text = path.read_text()
        if len(TABLE.findall(text)) != len(BOX_THEN_TABLE.findall(text)):
            loose.append(str(path.relative_to(TEMPLATES)))
    assert sorted(loose) == []
