"""The slots of accounts' pages, which higher layers fill in their ``AppConfig.ready``.

Each slot holds panel providers (``core.composition``) called with the keyword arguments
named here; each returns a ``Panel`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from core.composition import PanelProvider, Slot

# The member home, under the welcome: provider(request=).
MEMBER_HOME: Slot[PanelProvider] = Slot("accounts.member_home")

# The dashboard Overview, sections below the counts: provider(request=).
DASHBOARD_OVERVIEW: Slot[PanelProvider] = Slot("accounts.dashboard_overview")

# The dashboard Overview's "Getting started" list: provider(request=), each panel one <li>
# whose context says whether the step is ``done``; the list is left out once every step is.
DASHBOARD_GETTING_STARTED: Slot[PanelProvider] = Slot("accounts.dashboard_getting_started")

# Accounts the Overview does not count as members (billing: the test buyers that creators'
# test purchases made): source() returns a one-column queryset of user ids, ``.values("pk")``.
UNCOUNTED_USERS: Slot[Callable[[], QuerySet[Any]]] = Slot("accounts.uncounted_users")
