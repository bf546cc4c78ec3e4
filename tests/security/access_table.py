"""The expected access to every URL pattern of the project, checked by
test_authorization_walk.py for four people and two methods.

One row per pattern, keyed by its route as the resolver writes it (the full route, with its
converters). Each row gives the exact status, for GET and for POST (an empty form, CSRF
token accepted), in the order of ROLES:

    anonymous    not logged in
    member       bought ``offer``, which opens the private group the paths name
    other_buyer  bought another offer, which opens another group: none of the member's
    staff        the creator (staff and superuser, as seed_demo makes it)

A new URL pattern fails the suite until its row is here: one line, e.g.
    "dashboard/offers/<id:pk>/custom-code/": STAFF_PAGE,
Path parameters are filled with real objects by tests/security/walk.py (``fill``).
"""

from __future__ import annotations

from typing import NamedTuple

ROLES = ("anonymous", "member", "other_buyer", "staff")
Statuses = tuple[int, int, int, int]


class A(NamedTuple):
    """Expected statuses for GET and POST, one per role in ROLES."""

    get: Statuses
    post: Statuses


# Shapes that many rows share.
PUBLIC = A(get=(200, 200, 200, 200), post=(200, 200, 200, 200))  # anyone; POST shows the form's errors
LOGGED_IN = A(get=(302, 200, 200, 200), post=(302, 200, 200, 200))  # login, then anyone
STAFF_PAGE = A(get=(302, 403, 403, 200), post=(302, 403, 403, 200))  # dashboard page: login, then staff only
STAFF_READ = A(get=(302, 403, 403, 200), post=(302, 403, 403, 405))  # dashboard page or export: GET only
STAFF_FORM = A(get=(302, 403, 403, 200), post=(302, 403, 403, 400))  # dashboard form: errors on an empty POST
STAFF_ACTION = A(get=(302, 403, 403, 405), post=(302, 403, 403, 302))  # dashboard button: POST only
IN_GROUP = A(get=(302, 200, 403, 200), post=(302, 200, 403, 200))  # the member's private group
AUTHORS_ACTION = A(get=(302, 405, 405, 405), post=(302, 302, 403, 302))  # the member's own post: POST only
MEMBER_ACTION = A(get=(302, 405, 405, 403), post=(302, 302, 302, 403))  # a partner's button: POST only
REDIRECT = A(get=(302, 302, 302, 302), post=(302, 302, 302, 302))
ADMIN_PAGE = A(get=(302, 302, 302, 200), post=(302, 302, 302, 200))  # Django admin: staff login, then pages
ADMIN_VIEW_ONLY = A(get=(302, 302, 302, 200), post=(302, 302, 302, 403))  # admin model that cannot be changed
ADMIN_REFUSED = A(get=(302, 302, 302, 403), post=(302, 302, 302, 403))  # admin action the model does not allow

# fmt: off
ROWS: dict[str, A] = {
    # The site
    "": REDIRECT,
    "home/": LOGGED_IN,
    "dashboard/": STAFF_PAGE,
    "accounts/login/": A(get=(200, 302, 302, 302), post=(200, 302, 302, 302)),
    "accounts/logout/": A(get=(405, 405, 405, 405), post=(302, 302, 302, 302)),
    "accounts/login-link/": PUBLIC,
    "accounts/login-link/<str:token>/": A(get=(200, 200, 200, 200), post=(302, 302, 302, 302)),
    "accounts/password/": LOGGED_IN,
    "accounts/password-reset/": PUBLIC,
    "accounts/password-reset/sent/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "accounts/password-reset/<uidb64>/<token>/": REDIRECT,
    "accounts/password-reset/complete/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "community/": LOGGED_IN,
    "community/<slug:group_slug>/": IN_GROUP,
    "community/<slug:group_slug>/<slug:hub_slug>/": IN_GROUP,
    "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/": IN_GROUP,
    "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/edit/": IN_GROUP,
    "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/delete/": AUTHORS_ACTION,
    "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/comments/<id:comment_id>/edit/": IN_GROUP,
    "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/comments/<id:comment_id>/delete/": AUTHORS_ACTION,
    "dashboard/community/": STAFF_PAGE,
    "dashboard/community/groups/new/": STAFF_PAGE,
    "dashboard/community/groups/<id:pk>/": STAFF_PAGE,
    "dashboard/community/groups/<id:pk>/move/": A(get=(302, 403, 403, 405), post=(302, 403, 403, 404)),
    "dashboard/community/groups/<id:pk>/delete/": A(get=(302, 403, 403, 200), post=(302, 403, 403, 302)),
    "dashboard/community/groups/<id:pk>/hubs/new/": A(get=(302, 403, 403, 405), post=(302, 403, 403, 400)),
    "dashboard/community/hubs/<id:pk>/": STAFF_PAGE,
    "dashboard/community/hubs/<id:pk>/move/": A(get=(302, 403, 403, 405), post=(302, 403, 403, 404)),
    "dashboard/community/hubs/<id:pk>/delete/": STAFF_ACTION,
    "dashboard/users/": STAFF_PAGE,
    "dashboard/users/<id:pk>/": STAFF_PAGE,
    "dashboard/users/buyers/": STAFF_READ,
    "dashboard/users/buyers/export.csv": STAFF_READ,
    "dashboard/users/<id:pk>/grants/<id:grant_id>/revoke/": STAFF_ACTION,
    # Confirmation pages: an empty form is refused with its errors.
    "dashboard/users/<id:pk>/memberships/<id:entitlement_id>/cancel/": STAFF_FORM,
    "dashboard/offers/": STAFF_PAGE,
    "dashboard/offers/new/": STAFF_PAGE,
    "dashboard/offers/new/<slug:kind>/": STAFF_PAGE,
    "dashboard/offers/<id:pk>/": STAFF_PAGE,
    "dashboard/offers/<id:pk>/publish/": STAFF_ACTION,
    "dashboard/offers/<id:pk>/unpublish/": STAFF_ACTION,
    "dashboard/offers/<id:pk>/archive/": STAFF_ACTION,
    "dashboard/offers/<id:pk>/duplicate/": STAFF_ACTION,
    "offers/<slug:slug>/": REDIRECT,
    "offers/<slug:slug>/checkout/": PUBLIC,
    # The offer's custom code, framed by its checkout page; drafts only as a preview for staff.
    "offers/<slug:slug>/custom-code/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "dashboard/sales/": STAFF_READ,
    "dashboard/sales/export.csv": STAFF_READ,
    "dashboard/payments/<id:pk>/refund/": STAFF_FORM,
    "dashboard/settings/integrations/": STAFF_PAGE,
    "dashboard/settings/integrations/stripe/connect/": STAFF_ACTION,
    "dashboard/settings/integrations/stripe/return/": A(get=(302, 403, 403, 302), post=(302, 403, 403, 405)),
    "dashboard/settings/integrations/stripe/refresh/": STAFF_ACTION,
    # The world has a subscriber, so disconnecting asks for a confirmation first.
    "dashboard/settings/integrations/stripe/disconnect/": A(get=(302, 403, 403, 405), post=(302, 403, 403, 409)),
    "dashboard/settings/integrations/stripe/events/": STAFF_PAGE,
    "dashboard/settings/integrations/stripe/events/<id:pk>/retry/": STAFF_ACTION,
    "dashboard/settings/integrations/outbox/<id:pk>/retry/": STAFF_ACTION,
    # The buyer's own memberships; the billing link opens Stripe's portal for the owner only
    # (the world's member has no Stripe customer for it, so it comes back to My memberships).
    "account/memberships/": A(get=(302, 200, 200, 200), post=(302, 405, 405, 405)),
    "account/memberships/<id:pk>/billing/": A(get=(302, 302, 404, 404), post=(302, 405, 405, 405)),
    "stripe/webhook/": A(get=(405, 405, 405, 405), post=(400, 400, 400, 400)),
    "offers/<slug:slug>/checkout/pay/": A(get=(405, 405, 405, 405), post=(400, 400, 400, 400)),
    # One click with a saved card: the member owns the offer (so back to it), the others have
    # no card on file (so to its checkout); a bad or empty form goes back to the page.
    "offers/<slug:slug>/buy-now/": REDIRECT,
    # A one-click purchase's result, for its member only: the world's was declined (so to checkout).
    "buy-now/<uuid:key>/": A(get=(302, 302, 404, 404), post=(302, 405, 405, 405)),
    "checkout/<uuid:attempt_id>/return/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "checkout/<uuid:attempt_id>/status/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "checkout/<uuid:attempt_id>/complete/": A(get=(302, 302, 302, 302), post=(405, 405, 405, 405)),
    "checkout/<uuid:attempt_id>/cancel/": A(get=(302, 302, 302, 302), post=(405, 405, 405, 405)),
    # Test purchases: the creator makes a signed single-use link and follows its checklist; the
    # link's pages are anyone's who holds it (the creator opens it in a private window).
    "dashboard/offers/<id:pk>/test-purchase/": STAFF_FORM,
    "dashboard/test-purchases/<id:pk>/": A(get=(302, 403, 403, 200), post=(302, 403, 403, 405)),
    "dashboard/test-purchases/<id:pk>/status/": A(get=(302, 403, 403, 200), post=(302, 403, 403, 405)),
    "dashboard/test-purchases/<id:pk>/email/": A(get=(302, 403, 403, 200), post=(302, 403, 403, 405)),
    "dashboard/test-purchases/<id:pk>/close/": STAFF_ACTION,
    "checkout/test/<str:link>/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "checkout/test/<str:link>/pay/": A(get=(405, 405, 405, 405), post=(400, 400, 400, 400)),
    "checkout/test/<str:link>/custom-code/": A(get=(200, 200, 200, 200), post=(405, 405, 405, 405)),
    "dashboard/affiliates/": A(get=(302, 403, 403, 200), post=(302, 403, 403, 405)),
    "dashboard/affiliates/partners/<id:pk>/status/": STAFF_ACTION,
    # Stop commissions: a press without the confirmation shows what it does and asks.
    "dashboard/affiliates/partners/<id:pk>/commissions/stop/": A(get=(302, 403, 403, 405), post=(302, 403, 403, 409)),
    # Become a Partner: members only (staff do not resell the community's offers).
    "partners/": A(get=(302, 200, 200, 403), post=(302, 405, 405, 403)),
    "partners/offers/<id:pk>/join/": MEMBER_ACTION,
    "partners/confirm-email/": MEMBER_ACTION,
    "partners/stripe/connect/": MEMBER_ACTION,
    "partners/stripe/return/": A(get=(302, 302, 302, 403), post=(302, 405, 405, 403)),
    "partners/stripe/disconnect/": MEMBER_ACTION,
    "favicon.ico": A(get=(301, 301, 301, 301), post=(405, 405, 405, 405)),
    "^media/(?P<path>.*)$": A(get=(404, 404, 404, 404), post=(404, 404, 404, 404)),
    # Django admin (its own login; model pages as each ModelAdmin allows)
    "admin/": ADMIN_PAGE,
    # The admin has no login form of its own: it sends people to the platform's login page.
    "admin/login/": A(get=(302, 403, 403, 302), post=(405, 405, 405, 405)),
    "admin/logout/": A(get=(302, 302, 302, 405), post=(302, 302, 302, 302)),
    "admin/password_change/": ADMIN_PAGE,
    "admin/password_change/done/": A(get=(302, 302, 302, 200), post=(302, 302, 302, 405)),
    "admin/autocomplete/": A(get=(302, 302, 302, 403), post=(302, 302, 302, 405)),
    "admin/jsi18n/": A(get=(302, 302, 302, 200), post=(302, 302, 302, 405)),
    "admin/r/<path:content_type_id>/<path:object_id>/": REDIRECT,
    "admin/auth/group/": ADMIN_PAGE,
    "admin/auth/group/add/": ADMIN_PAGE,
    "admin/auth/group/<path:object_id>/history/": ADMIN_PAGE,
    "admin/auth/group/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/auth/group/<path:object_id>/change/": ADMIN_PAGE,
    "admin/auth/group/<path:object_id>/": REDIRECT,
    "admin/accounts/user/<id>/password/": ADMIN_PAGE,
    "admin/accounts/user/": ADMIN_PAGE,
    "admin/accounts/user/add/": ADMIN_PAGE,
    "admin/accounts/user/<path:object_id>/history/": ADMIN_PAGE,
    "admin/accounts/user/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/accounts/user/<path:object_id>/change/": ADMIN_PAGE,
    "admin/accounts/user/<path:object_id>/": REDIRECT,
    "admin/accounts/magiclink/": ADMIN_PAGE,
    "admin/accounts/magiclink/add/": ADMIN_REFUSED,
    "admin/accounts/magiclink/<path:object_id>/history/": ADMIN_PAGE,
    "admin/accounts/magiclink/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/accounts/magiclink/<path:object_id>/change/": A(get=(302, 302, 302, 200), post=(302, 302, 302, 302)),
    "admin/accounts/magiclink/<path:object_id>/": REDIRECT,
    "admin/hubs/hubgroup/": ADMIN_PAGE,
    "admin/hubs/hubgroup/add/": ADMIN_PAGE,
    "admin/hubs/hubgroup/<path:object_id>/history/": ADMIN_PAGE,
    "admin/hubs/hubgroup/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/hubs/hubgroup/<path:object_id>/change/": ADMIN_PAGE,
    "admin/hubs/hubgroup/<path:object_id>/": REDIRECT,
    "admin/hubs/post/": ADMIN_PAGE,
    "admin/hubs/post/add/": ADMIN_PAGE,
    "admin/hubs/post/<path:object_id>/history/": ADMIN_PAGE,
    "admin/hubs/post/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/hubs/post/<path:object_id>/change/": ADMIN_PAGE,
    "admin/hubs/post/<path:object_id>/": REDIRECT,
    "admin/hubs/comment/": ADMIN_PAGE,
    "admin/hubs/comment/add/": ADMIN_PAGE,
    "admin/hubs/comment/<path:object_id>/history/": ADMIN_PAGE,
    "admin/hubs/comment/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/hubs/comment/<path:object_id>/change/": ADMIN_PAGE,
    "admin/hubs/comment/<path:object_id>/": REDIRECT,
    "admin/hubs/accessgrant/": ADMIN_PAGE,
    "admin/hubs/accessgrant/add/": ADMIN_REFUSED,
    "admin/hubs/accessgrant/<path:object_id>/history/": ADMIN_PAGE,
    "admin/hubs/accessgrant/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/hubs/accessgrant/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/hubs/accessgrant/<path:object_id>/": REDIRECT,
    "admin/hubs/accessgrantevent/": ADMIN_PAGE,
    "admin/hubs/accessgrantevent/add/": ADMIN_REFUSED,
    "admin/hubs/accessgrantevent/<path:object_id>/history/": ADMIN_PAGE,
    "admin/hubs/accessgrantevent/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/hubs/accessgrantevent/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/hubs/accessgrantevent/<path:object_id>/": REDIRECT,
    "admin/memberships/offer/": ADMIN_PAGE,
    "admin/memberships/offer/add/": ADMIN_REFUSED,
    "admin/memberships/offer/<path:object_id>/history/": ADMIN_PAGE,
    "admin/memberships/offer/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/memberships/offer/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/memberships/offer/<path:object_id>/": REDIRECT,
    "admin/memberships/entitlement/": ADMIN_PAGE,
    "admin/memberships/entitlement/add/": ADMIN_REFUSED,
    "admin/memberships/entitlement/<path:object_id>/history/": ADMIN_PAGE,
    "admin/memberships/entitlement/<path:object_id>/delete/": ADMIN_PAGE,
    "admin/memberships/entitlement/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/memberships/entitlement/<path:object_id>/": REDIRECT,
    "admin/billing/stripeaccount/": ADMIN_PAGE,
    "admin/billing/stripeaccount/add/": ADMIN_REFUSED,
    "admin/billing/stripeaccount/<path:object_id>/history/": ADMIN_PAGE,
    "admin/billing/stripeaccount/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/billing/stripeaccount/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/billing/stripeaccount/<path:object_id>/": REDIRECT,
    "admin/billing/checkoutattempt/": ADMIN_PAGE,
    "admin/billing/checkoutattempt/add/": ADMIN_REFUSED,
    "admin/billing/checkoutattempt/<path:object_id>/history/": ADMIN_PAGE,
    "admin/billing/checkoutattempt/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/billing/checkoutattempt/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/billing/checkoutattempt/<path:object_id>/": REDIRECT,
    "admin/billing/oneclickpurchase/": ADMIN_PAGE,
    "admin/billing/oneclickpurchase/add/": ADMIN_REFUSED,
    "admin/billing/oneclickpurchase/<path:object_id>/history/": ADMIN_PAGE,
    "admin/billing/oneclickpurchase/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/billing/oneclickpurchase/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/billing/oneclickpurchase/<path:object_id>/": REDIRECT,
    "admin/billing/webhookevent/": ADMIN_PAGE,
    "admin/billing/webhookevent/add/": ADMIN_REFUSED,
    "admin/billing/webhookevent/<path:object_id>/history/": ADMIN_PAGE,
    "admin/billing/webhookevent/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/billing/webhookevent/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/billing/webhookevent/<path:object_id>/": REDIRECT,
    "admin/billing/payment/": ADMIN_PAGE,
    "admin/billing/payment/add/": ADMIN_REFUSED,
    "admin/billing/payment/<path:object_id>/history/": ADMIN_PAGE,
    "admin/billing/payment/<path:object_id>/delete/": ADMIN_REFUSED,
    "admin/billing/payment/<path:object_id>/change/": ADMIN_VIEW_ONLY,
    "admin/billing/payment/<path:object_id>/": REDIRECT,
    "admin/^(?P<app_label>auth|accounts|hubs|memberships|billing)/$": ADMIN_PAGE,
    "admin/(?P<url>.*)$": A(get=(302, 302, 302, 404), post=(302, 302, 302, 404)),
}
# fmt: on
