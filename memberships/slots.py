"""The slots of memberships' pages, which higher layers fill in their ``AppConfig.ready``
(see ``core.composition`` and docs/ARCHITECTURE.md, *Composition*)."""

from __future__ import annotations

from core.composition import PanelProvider, Slot

# Buttons in the offer editor's action bar, after memberships' own: provider(request=, offer=).
OFFER_ACTIONS: Slot[PanelProvider] = Slot("memberships.offer_actions")
