from __future__ import annotations

import hashlib
import logging
from typing import cast, get_args

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.connection import ConnectionProxy
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import staff_required
from accounts.models import User
from core.composition import panels
from hubs import selectors, services
from hubs.forms import AccessGrantForm, CommentForm, HubForm, HubGroupForm, PostForm
from hubs.models import AccessGrant, Hub, HubGroup, Post
from hubs.slots import PAYWALL, USER_PAGE, USERS_LINKS

# Rendered pages are cached in this process's memory (see the "local" cache in settings).
cache = ConnectionProxy(caches, "local")

logger = logging.getLogger(__name__)

COMMUNITY_CACHE_SECONDS = 60 * 60
POSTS_PER_PAGE = 20
COMMENTS_PER_PAGE = 50
USERS_PER_PAGE = 50


def _member(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _paywall(request: HttpRequest, group: HubGroup) -> HttpResponse:
    """What a user without access sees instead of a private group's content: the group's URL
    upsell, or what higher layers offer for it (``hubs.slots.PAYWALL``: memberships' offer)."""
    upsells = panels(PAYWALL, request=request, group=group)
    return render(request, "hubs/paywall.html", {"group": group, "upsells": upsells}, status=403)


# --- The community (members) ------------------------------------------------------------------
@login_required
def community(request: HttpRequest) -> HttpResponse:
    return render(request, "hubs/community.html", {"groups_html": _community_groups_html(request)})


def _community_groups_html(request: HttpRequest) -> SafeString:
    """The rendered group list, cached for everyone who sees the same groups in the same state.

    The key holds the community stamp (any change to a group or hub) and the set of groups the
    user may enter, so a grant, a purchase or an edit shows at once; it is never per user.
    """
    open_ids = selectors.accessible_group_ids(user=request.user, request=request)
    count, latest = selectors.community_stamp()
    staff = bool(request.user.is_authenticated and request.user.is_staff)
    fingerprint = f"{count}|{latest}|{staff}|{','.join(map(str, sorted(open_ids)))}"
    key = "hubs:community:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    try:
        html: str | None = cache.get(key)
    except Exception:  # a cache outage slows the page down; it must not break it
        logger.warning("community cache unavailable", exc_info=True)
        html = None
    if html is None:
        entries = selectors.community_groups(user=request.user, request=request)
        html = render_to_string("hubs/_community_groups.html", {"entries": entries}, request=None)
        try:
            cache.set(key, html, COMMUNITY_CACHE_SECONDS)
        except Exception:
            logger.warning("community cache unavailable", exc_info=True)
    return mark_safe(html)  # rendered by our own template, escaped there


@login_required
def group_detail(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = selectors.group_for_user_or_404(user=request.user, slug=group_slug)
    if not selectors.can_enter(user=request.user, group=group, request=request):
        return _paywall(request, group)
    hubs = list(selectors.group_hubs(group=group))
    return render(request, "hubs/group.html", {"group": group, "hubs": hubs})


@login_required
@require_http_methods(["GET", "POST"])
def hub_detail(request: HttpRequest, group_slug: str, hub_slug: str) -> HttpResponse:
    hub = selectors.hub_for_user_or_404(user=request.user, group_slug=group_slug, hub_slug=hub_slug)
    if request.method == "POST":
        selectors.require_entry(user=request.user, group=hub.group, request=request)
    elif not selectors.can_enter(user=request.user, group=hub.group, request=request):
        return _paywall(request, hub.group)
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.post_create(hub=hub, author=_member(request), **form.cleaned_data)
        messages.success(request, "Your post is published.")
        return redirect(hub.get_absolute_url())
    page = Paginator(selectors.hub_posts(hub=hub), POSTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "hubs/hub.html",
        {"hub": hub, "group": hub.group, "page_obj": page, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def post_detail(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int) -> HttpResponse:
    hub = selectors.hub_for_user_or_404(user=request.user, group_slug=group_slug, hub_slug=hub_slug)
    if request.method == "POST":
        selectors.require_entry(user=request.user, group=hub.group, request=request)
    elif not selectors.can_enter(user=request.user, group=hub.group, request=request):
        return _paywall(request, hub.group)
    post = selectors.post_in_hub_or_404(hub=hub, pk=post_id)
    form = CommentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        comment = services.comment_create(post=post, author=_member(request), body=form.cleaned_data["body"])
        messages.success(request, "Your comment is published.")
        return redirect(_post_url(hub, post.pk) + f"#comment-{comment.pk}")
    page = Paginator(selectors.post_comments(post=post), COMMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "hubs/post.html",
        {"hub": hub, "group": hub.group, "post": post, "page_obj": page, "form": form},
        status=400 if form.errors else 200,
    )


def _post_url(hub: Hub, post_id: int) -> str:
    return reverse("hubs:post", kwargs={"group_slug": hub.group.slug, "hub_slug": hub.slug, "post_id": post_id})


def _entered_post(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int) -> tuple[Hub, Post]:
    """The post and its hub, in a group the user may enter (404 or 403 otherwise)."""
    hub = selectors.hub_for_user_or_404(user=request.user, group_slug=group_slug, hub_slug=hub_slug)
    selectors.require_entry(user=request.user, group=hub.group, request=request)
    return hub, selectors.post_in_hub_or_404(hub=hub, pk=post_id)


def _require_moderator(request: HttpRequest, *, author_id: int, action: str) -> None:
    if not selectors.can_moderate(user=request.user, author_id=author_id):
        raise PermissionDenied(f"Only the author or the community's staff can {action}.")


@login_required
@require_http_methods(["GET", "POST"])
def post_edit(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int) -> HttpResponse:
    hub, post = _entered_post(request, group_slug, hub_slug, post_id)
    _require_moderator(request, author_id=post.author_id, action="edit this post")
    form = PostForm(request.POST or None, initial={"title": post.title, "body": post.body})
    if request.method == "POST" and form.is_valid():
        services.post_update(post=post, **form.cleaned_data)
        messages.success(request, "The post is saved.")
        return redirect(_post_url(hub, post.pk))
    return render(request, "hubs/post_edit.html", {"hub": hub, "group": hub.group, "post": post, "form": form})


@login_required
@require_POST
def post_delete(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int) -> HttpResponse:
    hub, post = _entered_post(request, group_slug, hub_slug, post_id)
    _require_moderator(request, author_id=post.author_id, action="delete this post")
    services.post_delete(post=post)
    messages.success(request, "The post is deleted.")
    return redirect(hub.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def comment_edit(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int, comment_id: int) -> HttpResponse:
    hub, post = _entered_post(request, group_slug, hub_slug, post_id)
    comment = selectors.comment_in_post_or_404(post=post, pk=comment_id)
    _require_moderator(request, author_id=comment.author_id, action="edit this comment")
    form = CommentForm(request.POST or None, initial={"body": comment.body})
    if request.method == "POST" and form.is_valid():
        services.comment_update(comment=comment, body=form.cleaned_data["body"])
        messages.success(request, "The comment is saved.")
        return redirect(_post_url(hub, post.pk) + f"#comment-{comment.pk}")
    return render(
        request,
        "hubs/comment_edit.html",
        {"hub": hub, "group": hub.group, "post": post, "comment": comment, "form": form},
    )


@login_required
@require_POST
def comment_delete(request: HttpRequest, group_slug: str, hub_slug: str, post_id: int, comment_id: int) -> HttpResponse:
    hub, post = _entered_post(request, group_slug, hub_slug, post_id)
    comment = selectors.comment_in_post_or_404(post=post, pk=comment_id)
    _require_moderator(request, author_id=comment.author_id, action="delete this comment")
    services.comment_delete(comment=comment)
    messages.success(request, "The comment is deleted.")
    return redirect(_post_url(hub, post.pk))


# --- Community page (creator dashboard) -------------------------------------------------------
@staff_required
def dashboard_community(request: HttpRequest) -> HttpResponse:
    groups = HubGroup.objects.prefetch_related("hubs").order_by("position", "id")
    return render(request, "hubs/dashboard/community.html", {"section": "community", "groups": groups})


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_group_create(request: HttpRequest) -> HttpResponse:
    form = HubGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        group = services.hub_group_create(**form.group_data, extras=form.part_data)
        messages.success(request, f"The hub group “{group.name}” is created. Add its first hub below.")
        return redirect("hubs:dashboard_group", pk=group.pk)
    return render(request, "hubs/dashboard/group_form.html", {"section": "community", "form": form, "group": None})


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_group(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(HubGroup, pk=pk)
    form = HubGroupForm(request.POST or None, instance=get_object_or_404(HubGroup, pk=pk))
    if request.method == "POST" and form.is_valid():
        services.hub_group_update(group=group, **form.group_data, extras=form.part_data)
        messages.success(request, "The hub group is saved.")
        return redirect("hubs:dashboard_group", pk=group.pk)
    return render(
        request,
        "hubs/dashboard/group_form.html",
        {
            "section": "community",
            "form": form,
            "group": group,
            "hubs": list(selectors.group_hubs(group=group)),
            "hub_form": HubForm(prefix="hub"),
        },
    )


@staff_required
@require_POST
def dashboard_group_move(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(HubGroup, pk=pk)
    services.hub_group_move(group=group, direction=_direction(request))
    return redirect("hubs:dashboard_community")


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(HubGroup, pk=pk)
    if request.method == "POST":
        try:
            services.hub_group_delete(group=group)
        except services.GroupInUseError as error:
            messages.error(request, str(error))
            return redirect("hubs:dashboard_group", pk=group.pk)
        messages.success(request, f"The hub group “{group.name}” is deleted.")
        return redirect("hubs:dashboard_community")
    selling = selectors.group_in_use_by(group=group)
    counts = {"hubs": group.hubs.count(), "grants": group.access_grants.filter(revoked_at__isnull=True).count()}
    return render(
        request,
        "hubs/dashboard/group_delete.html",
        {"section": "community", "group": group, "selling": selling, "counts": counts},
    )


@staff_required
@require_POST
def dashboard_hub_create(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(HubGroup, pk=pk)
    hub_form = HubForm(request.POST, request.FILES, prefix="hub")
    if hub_form.is_valid():
        hub = services.hub_create(
            group=group,
            name=hub_form.cleaned_data["name"],
            description=hub_form.cleaned_data["description"],
            icon=hub_form.new_icon,
        )
        messages.success(request, f"The hub “{hub.name}” is created.")
        return redirect("hubs:dashboard_group", pk=group.pk)
    return render(
        request,
        "hubs/dashboard/group_form.html",
        {
            "section": "community",
            "form": HubGroupForm(instance=group),
            "group": group,
            "hubs": list(selectors.group_hubs(group=group)),
            "hub_form": hub_form,
        },
        status=400,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_hub(request: HttpRequest, pk: int) -> HttpResponse:
    hub = get_object_or_404(Hub.objects.select_related("group"), pk=pk)
    form = HubForm(request.POST or None, request.FILES or None, instance=get_object_or_404(Hub, pk=pk))
    if request.method == "POST" and form.is_valid():
        services.hub_update(
            hub=hub,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            icon=form.new_icon,
            remove_icon=form.cleaned_data["remove_icon"],
        )
        messages.success(request, "The hub is saved.")
        return redirect("hubs:dashboard_group", pk=hub.group_id)
    return render(request, "hubs/dashboard/hub_form.html", {"section": "community", "hub": hub, "form": form})


@staff_required
@require_POST
def dashboard_hub_move(request: HttpRequest, pk: int) -> HttpResponse:
    hub = get_object_or_404(Hub, pk=pk)
    services.hub_move(hub=hub, direction=_direction(request))
    return redirect("hubs:dashboard_group", pk=hub.group_id)


@staff_required
@require_POST
def dashboard_hub_delete(request: HttpRequest, pk: int) -> HttpResponse:
    hub = get_object_or_404(Hub, pk=pk)
    services.hub_delete(hub=hub)
    messages.success(request, f"The hub “{hub.name}” and its posts are deleted.")
    return redirect("hubs:dashboard_group", pk=hub.group_id)


def _direction(request: HttpRequest) -> services.Direction:
    direction = request.POST.get("direction")
    if direction not in get_args(services.Direction):
        raise Http404("Unknown direction.")
    return cast(services.Direction, direction)


# --- Users page (creator dashboard) -----------------------------------------------------------
@staff_required
def dashboard_users(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    page = Paginator(selectors.users_search(query=query), USERS_PER_PAGE).get_page(request.GET.get("page"))
    links = panels(USERS_LINKS, request=request)
    return render(
        request, "hubs/dashboard/users.html", {"section": "users", "query": query, "page_obj": page, "links": links}
    )


@staff_required
@require_http_methods(["GET", "POST"])
def dashboard_user(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    form = AccessGrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        group = form.cleaned_data["group"]
        services.access_grant_create(
            user=person,
            group=group,
            granted_by=_member(request),
            note=form.cleaned_data["note"],
            expires_at=form.cleaned_data["expires_at"],
        )
        messages.success(request, f"{person.get_full_name()} now has access to “{group.name}”.")
        return redirect("hubs:dashboard_user", pk=person.pk)
    sources = selectors.user_access_sources(user=person)
    sections = panels(USER_PAGE, request=request, person=person)
    return render(
        request,
        "hubs/dashboard/user.html",
        {"section": "users", "person": person, "sources": sources, "panels": sections, "form": form},
        status=400 if form.errors else 200,
    )


@staff_required
@require_POST
def dashboard_grant_revoke(request: HttpRequest, pk: int, grant_id: int) -> HttpResponse:
    grant = get_object_or_404(AccessGrant.objects.select_related("group", "user"), pk=grant_id, user_id=pk)
    services.access_grant_revoke(grant=grant, revoked_by=_member(request))
    messages.success(request, f"Access to “{grant.group.name}” through this grant is revoked.")
    return redirect("hubs:dashboard_user", pk=pk)
