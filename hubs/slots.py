"""The slots of hubs' pages and rules, which higher layers fill in their ``AppConfig.ready``.

hubs knows nothing above it: what memberships sells, or what else uses a group, comes in
through these (see ``core.composition`` and docs/ARCHITECTURE.md, *Composition*).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from django import forms
from django.db.models import QuerySet

from core.composition import PanelProvider, Slot
from hubs.models import HubGroup

# The access rule's sources besides manual grants (memberships: purchases). Each is called as
# source(user_id=, now=) and returns a one-column queryset of group ids, ``.values(...)``,
# that uses ``user_id`` and ``now`` once each: the rule is compiled to SQL once per database.
AccessSource = Callable[..., QuerySet[Any]]
ACCESS_SOURCES: Slot[AccessSource] = Slot("hubs.access_sources")

# What a user without access is offered on a private group's paywall: provider(request=, group=).
PAYWALL: Slot[PanelProvider] = Slot("hubs.paywall")

# Links beside the Users screen's search (memberships: buyers and their memberships): provider(request=).
USERS_LINKS: Slot[PanelProvider] = Slot("hubs.users_links")

# Sections of a user's page on the Users screen, after "Access today": provider(request=, person=).
USER_PAGE: Slot[PanelProvider] = Slot("hubs.user_page")

# What still uses a group, so that it cannot be deleted: check(group=) -> names, in words.
GROUP_IN_USE: Slot[Callable[..., list[str]]] = Slot("hubs.group_in_use")


class GroupEditorPart(Protocol):
    """A higher layer's fields in the hub group editor (memberships: the popup's offer)."""

    # Where the fields are shown: "popup" (with the popup upsell's fields).
    section: str

    def fields(self, *, group: HubGroup | None) -> dict[str, forms.Field]:
        """The fields to add, their initial values those of ``group`` (None: a new group)."""
        ...

    def clean(self, *, form: forms.BaseForm, group: HubGroup | None, data: dict[str, Any]) -> None:
        """Check the part's values against the rest of ``data``; errors go to ``form.add_error``."""
        ...

    def save(self, *, group: HubGroup, data: Mapping[str, Any]) -> None:
        """Write the part's values; runs in the group's save transaction, after the group."""
        ...


GROUP_EDITOR: Slot[GroupEditorPart] = Slot("hubs.group_editor")
