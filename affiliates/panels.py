"""Affiliates' panels on lower layers' pages (``core.composition``), registered in ``AffiliatesConfig.ready``."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.models import User
from affiliates import selectors
from core.composition import Panel


def member_home_partner(*, request: HttpRequest) -> Panel | None:
    """The member home's *Become a Partner* widget: for members (not staff), when at least one
    offer has a partner program."""
    user = request.user
    if not settings.AFFILIATES_ENABLED or not isinstance(user, User) or user.is_staff:
        return None
    offers = list(selectors.resell_offers())
    if not offers:
        return None  # one query on every member home; nothing more without a program
    view = selectors.partner_view(user=user, offers=offers)
    return Panel("affiliates/panels/member_home_partner.html", {"partner_view": view})
