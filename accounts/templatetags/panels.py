"""``{% panel p %}`` renders a ``core.composition.Panel`` where the page puts it.

The panel's template sees the page's context (the user, the CSRF token, the CSP nonce) plus
the panel's own context, as an ``{% include %}`` would.
"""

from __future__ import annotations

from django import template
from django.template.context import Context
from django.utils.safestring import SafeString

from core.composition import Panel

register = template.Library()


@register.simple_tag(takes_context=True)
def panel(context: Context, panel: Panel) -> SafeString:
    assert context.template is not None
    panel_template = context.template.engine.get_template(panel.template)
    with context.push(**panel.context):
        return panel_template.render(context)
