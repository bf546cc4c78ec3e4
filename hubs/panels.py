"""What hubs adds to accounts' pages (registered in ``HubsConfig.ready``)."""

from __future__ import annotations

from django.http import HttpRequest

from core.composition import Panel
from hubs import selectors
from hubs.models import HubGroup


def member_home_communities(*, request: HttpRequest) -> Panel:
    """The member home's "Your communities": the groups the member has entered."""
    communities = selectors.groups_entered_by(user=request.user, request=request)
    return Panel("hubs/panels/member_home_communities.html", {"communities": communities})


def getting_started(*, request: HttpRequest) -> Panel:
    """The Overview's step "create a hub group", done once one exists."""
    return Panel("hubs/panels/getting_started.html", {"done": HubGroup.objects.exists()})
