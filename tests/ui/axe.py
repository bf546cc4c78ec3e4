"""axe-core (Deque's accessibility engine, vendored in tests/vendor/axe-core/) run in a page.

The engine is evaluated through Playwright's DevTools channel rather than added as a <script>,
so the site's Content-Security-Policy, which refuses scripts without its nonce, stays as it is
for the scan. It is only ever loaded by the tests: nothing serves it to users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")  # the target: none of these on any page

_RUN = """async () => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(" ")),
    }));
}"""


def violations(page: Any) -> list[dict[str, Any]]:
    """Every rule the page breaks, each with its impact and the elements that break it."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(_RUN)
    return found


def blocking(page: Any, name: str) -> list[str]:
    """The page's serious and critical violations, one line each, named after the page."""
    return [
        f"{name}: {v['id']} ({v['impact']}): {v['help']}: {', '.join(v['nodes'][:5])}"
        for v in violations(page)
        if v["impact"] in BLOCKING
    ]
