"""The slots of accounts' pages, which higher layers fill in their ``AppConfig.ready``.

Each slot holds panel providers (``core.composition``) called with the keyword arguments
named here; each returns a ``Panel`` or ``None``.
"""

from __future__ import annotations

from core.composition import PanelProvider, Slot

# The member home, under the welcome: provider(request=).
MEMBER_HOME: Slot[PanelProvider] = Slot("accounts.member_home")

# The dashboard Overview, sections below the counts: provider(request=).
DASHBOARD_OVERVIEW: Slot[PanelProvider] = Slot("accounts.dashboard_overview")

# The dashboard Overview's "Getting started" list: provider(request=), each panel one <li>.
DASHBOARD_GETTING_STARTED: Slot[PanelProvider] = Slot("accounts.dashboard_getting_started")
