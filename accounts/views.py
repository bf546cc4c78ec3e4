from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from accounts import ratelimit, services
from accounts.backends import password_check_refused
from accounts.decorators import staff_required
from accounts.forms import (
    EmailLoginForm,
    EmailPasswordResetForm,
    MagicLinkRequestForm,
    RateLimitedPasswordChangeForm,
)
from accounts.models import User
from accounts.slots import DASHBOARD_GETTING_STARTED, DASHBOARD_OVERVIEW, MEMBER_HOME, UNCOUNTED_USERS
from core.composition import panels
from core.figures import figures_cached

# Set on sessions opened through an emailed link (magic link or password reset): proof that
# whoever holds the session reads the account's email.
EMAIL_VERIFIED_SESSION_KEY = "accounts.email_verified"


def root(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    if request.user.is_staff:
        return redirect("accounts:dashboard")
    return redirect("accounts:home")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html", {"panels": panels(MEMBER_HOME, request=request)})


class LoginView(auth_views.LoginView):
    form_class = EmailLoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: EmailLoginForm) -> HttpResponse:  # type: ignore[override]
        if not password_check_refused(self.request):
            return super().form_invalid(form)
        # The password was not checked (accounts.backends): say so, and keep the email.
        email = str(form.data.get("username", "")).strip()
        form = self.form_class(self.request, initial={"username": email})
        context = self.get_context_data(form=form, refused=ratelimit.TOO_MANY)
        return self.render_to_response(context, status=429)


@require_GET
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin has no login of its own: one login page, with one rate limit, for everyone."""
    next_url = services.safe_next_url(request.GET.get("next")) or reverse("admin:index")
    if request.user.is_authenticated and not request.user.is_staff:
        raise PermissionDenied  # sending them on to the admin would bring them straight back here
    return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")


class PasswordResetView(auth_views.PasswordResetView):
    form_class = EmailPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: EmailPasswordResetForm) -> HttpResponse:  # type: ignore[override]
        if not ratelimit.allow_request(self.request, scope="password_reset", email=form.cleaned_data["email"]):
            form.add_error(None, ratelimit.TOO_MANY)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
    post_reset_login = True

    def form_valid(self, form: Any) -> HttpResponse:
        # Before the password is saved and the browser logged in, so that the session it gets
        # carries the account's new session generation.
        services.user_email_verify(user=form.user)
        response = super().form_valid(form)
        self.request.session[EMAIL_VERIFIED_SESSION_KEY] = True  # the reset link proved the address
        return response


def _link_hours() -> int:
    return max(1, settings.MAGIC_LINK_MAX_AGE // 3600)


@require_http_methods(["GET", "POST"])
def magic_link_request(request: HttpRequest) -> HttpResponse:
    form = MagicLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not ratelimit.allow_request(request, scope="login_link", email=form.cleaned_data["email"]):
            form.add_error(None, ratelimit.TOO_MANY)
            return render(request, "accounts/magic_link_request.html", {"form": form}, status=429)
        services.magic_link_request(email=form.cleaned_data["email"], next_url=request.GET.get("next", ""))
        return render(
            request,
            "accounts/magic_link_sent.html",
            {"email": form.cleaned_data["email"], "max_age_hours": _link_hours()},
        )
    return render(request, "accounts/magic_link_request.html", {"form": form})


@require_http_methods(["GET", "POST"])
def magic_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; POST logs in.

    Mail scanners follow links with GET; if GET logged in, a scanner would use up a
    single-use link before the person clicked it.
    """
    try:
        if request.method == "POST":
            check = services.magic_link_consume(token=token)
        else:
            check = services.magic_link_check(token=token)
    except services.MagicLinkError as error:
        return render(
            request,
            "accounts/magic_link_invalid.html",
            {"reason": error.reason, "form": MagicLinkRequestForm(), "max_age_hours": _link_hours()},
            status=400 if error.reason == "invalid" else 410,
        )
    if request.method == "GET":
        return render(request, "accounts/magic_link_confirm.html", {"link_user": check.user})
    # Consuming the link proved the address; the first proof ended the sessions made without it.
    login(request, check.user)
    request.session[EMAIL_VERIFIED_SESSION_KEY] = True
    messages.success(request, "You are logged in.")
    if not check.user.has_usable_password():
        messages.info(request, "Set a password from your account page to log in without email next time.")
    return redirect(check.link.next_url or reverse("accounts:root"))


@login_required
def set_password(request: HttpRequest) -> HttpResponse:
    """Choose or change the password, with proof: the current password, or a session that an
    emailed link opened. A session opened by claiming an offer proves nothing about the address."""
    user = request.user
    assert isinstance(user, User)
    form: RateLimitedPasswordChangeForm | SetPasswordForm[User]
    if user.has_usable_password():
        form = RateLimitedPasswordChangeForm(request, user, request.POST or None)
    elif request.session.get(EMAIL_VERIFIED_SESSION_KEY):
        form = SetPasswordForm(user, request.POST or None)
    else:
        return render(request, "accounts/set_password_confirm_email.html", {"form": MagicLinkRequestForm()})
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)
        messages.success(request, "Your password is saved.")
        return redirect("accounts:home")
    return render(request, "accounts/set_password.html", {"form": form}, status=400 if form.errors else 200)


def _user_counts() -> dict[str, int]:
    counted = User.objects.all()
    for uncounted in UNCOUNTED_USERS:
        counted = counted.exclude(pk__in=uncounted())
    return counted.aggregate(members=Count("pk", filter=Q(is_staff=False)), staff=Count("pk", filter=Q(is_staff=True)))


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = figures_cached("user-counts", _user_counts)
    getting_started = panels(DASHBOARD_GETTING_STARTED, request=request)
    return render(
        request,
        "dashboard/home.html",
        {
            "section": "home",
            "counts": counts,
            "site_url": settings.SITE_URL,
            "panels": panels(DASHBOARD_OVERVIEW, request=request),
            # Shown until every step is done.
            "getting_started": [] if all(step.context.get("done") for step in getting_started) else getting_started,
        },
    )
