"""Hostile input to every public form and to the Stripe webhook: odd charsets, invalid UTF-8,
NUL bytes, huge and negative numbers, very long fields, wrong content types, nested JSON.
Whatever arrives, the answer is never a server error.

The forms are found, not listed: every URL pattern is requested as an anonymous visitor and
as a member, and the ``<form>``s of each page (action, method, field names) are the
targets. It runs in the ordinary suite, so CI's second pass fuzzes PostgreSQL too (NUL bytes
and long ids behave differently there). Example counts are modest and, under CI=true,
derandomized: see the ``security`` settings profile below.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import pytest
from django.test import Client, TestCase, override_settings
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OfferStripePrice
from memberships.models import Offer
from tests.billing.helpers import ACCOUNT_ID, event, sign
from tests.security.walk import World, build_world, fill, rolled_back, routes

pytestmark = pytest.mark.django_db

settings.register_profile(
    "security",
    max_examples=30,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    database=None,
    # A failure is shrunk to its smallest case, but not explained: that costs minutes.
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile("security")


# --- Finding the forms ------------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    role: str
    page: str
    action: str
    method: str
    fields: tuple[str, ...]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, list[str]]] = []
        self._current: tuple[str, str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = (values.get("action", ""), values.get("method", "get").lower(), [])
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select", "button") and self._current is not None and values.get("name"):
            self._current[2].append(values["name"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def discover_forms(world: World, roles: tuple[str, ...]) -> list[Form]:
    """The forms these roles are shown, one per action and fields (the first role's when
    several see it). Django's admin is left out but for its login page."""
    found: dict[tuple[str, str, tuple[str, ...]], Form] = {}
    pages = [route for route in routes() if not route.route.startswith("admin/") or route.route == "admin/login/"]
    for role in roles:
        client = Client(raise_request_exception=False)
        user = getattr(world, role, None)
        if user is not None:
            client.force_login(user)
        for route in pages:
            page = fill(route, world)
            with rolled_back():
                response = client.get(page)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            parser = _FormParser()
            parser.feed(response.content.decode("utf-8", "replace"))
            for action, method, names in parser.forms:
                target = urlsplit(action).path or page
                fields = tuple(sorted(set(names)))
                key = (method, target, fields)
                found.setdefault(key, Form(role=role, page=page, action=target, method=method, fields=fields))
    return list(found.values())


# --- What hostile input looks like ------------------------------------------------------------
NASTY_TEXT = [
    "",
    "0",
    "-1",
    "-99999999999999999999999",
    "99999999999999999999999",
    str(2**63),
    str(2**63 - 1),
    "1e309",
    "NaN",
    "-0",
    "1.5",
    "٣",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\u202e",
    "<script>alert(1)</script>",
    "{{ buyer_name }}",
    "%s%n",
    "../../etc/passwd",
    "x" * 300,
    "9" * 5000,
    "é" * 20_000,
]
values = st.one_of(
    st.sampled_from(NASTY_TEXT).map(str.encode),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40).map(str.encode),
    st.binary(max_size=40),  # not UTF-8, mostly
)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=nonsense",
    'application/x-www-form-urlencoded; charset="utf-8"',
    "application/x-www-form-urlencoded; charset=",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=fuzz; charset=latin-1",
    "application/json",
    "text/plain; charset=ébé",
    "",
]


def _urlencoded(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode() for k, v in pairs)


def _multipart(pairs: list[tuple[bytes, bytes]], boundary: bytes = b"fuzz") -> bytes:
    parts = []
    for index, (key, value) in enumerate(pairs):
        filename = b'; filename="f%d.png"' % index if index % 3 == 2 else b""
        parts.append(
            b"--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="'
            + key
            + b'"'
            + filename
            + b"\r\n\r\n"
            + value
        )
    return b"\r\n".join(parts) + b"\r\n--" + boundary + b"--\r\n"


NASTY_NUMBERS = ["99999999999999999999999", str(2**63), "-99999999999999999999999", "1e309", "-1", "0"]
styles = {
    "numbers": st.sampled_from(NASTY_NUMBERS).map(str.encode),
    "text": values,
    "binary": st.binary(min_size=1, max_size=40),
    "long": st.integers(min_value=1000, max_value=200_000).map(lambda n: b"\xc3\xa9" * n),
}


@st.composite
def submissions(draw: st.DrawFn, fields: tuple[str, ...]) -> tuple[str, bytes, bool]:
    """A (content type, body, DEBUG) for a form with these fields: every field, or some, in
    one style of hostile value, then a few unknown fields; encoded as a browser would or not."""
    names = [name.encode() for name in fields]
    if names and draw(st.booleans()):
        chosen = names
    else:
        chosen = draw(st.lists(st.sampled_from(names), max_size=len(names) * 2)) if names else []
    style = styles[draw(st.sampled_from(sorted(styles)))]
    pairs = [(name, draw(style)) for name in chosen]
    pairs += [(name, draw(values)) for name in draw(st.lists(st.binary(min_size=1, max_size=12), max_size=2))]
    encoding = draw(st.sampled_from(["urlencoded", "urlencoded", "multipart", "json", "raw"]))
    if encoding == "urlencoded":
        body = _urlencoded(pairs)
    elif encoding == "multipart":
        body = _multipart(pairs)
    elif encoding == "json":
        body = json.dumps({k.decode("latin-1"): v.decode("latin-1") for k, v in pairs}).encode()
    else:
        body = draw(st.binary(max_size=400))
    content_type = draw(st.one_of(st.just(_content_type(encoding)), st.sampled_from(CONTENT_TYPES)))
    return content_type, body, draw(st.booleans())


def explicit_submissions(fields: tuple[str, ...]) -> list[tuple[str, bytes, bool]]:
    """Always tried, on every form: each field set to an id no row can have, a NUL, a long
    text; and a form in Latin-1 with DEBUG on."""
    names = [name.encode() for name in fields] or [b"x"]
    form = "application/x-www-form-urlencoded"
    tried = [
        (form, _urlencoded([(name, value) for name in names]), False)
        for value in (b"99999999999999999999999", str(2**63).encode(), b"\x00", b"x" * 20_000)
    ]
    tried.append(
        ("multipart/form-data; boundary=fuzz", _multipart([(n, b"99999999999999999999999") for n in names]), False)
    )
    tried.append((form + "; charset=latin-1", _urlencoded([(name, b"\xe9") for name in names]), True))
    return tried


def _content_type(encoding: str) -> str:
    return {
        "urlencoded": "application/x-www-form-urlencoded",
        "multipart": "multipart/form-data; boundary=fuzz",
        "json": "application/json",
        "raw": "application/octet-stream",
    }[encoding]


# --- The forms ---------------------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return build_world()


def test_the_forms_are_found_from_the_url_patterns(world) -> None:
    actions = {(form.role, form.action) for form in discover_forms(world, ("anonymous", "member"))}
    assert ("anonymous", "/accounts/login/") in actions
    assert ("anonymous", f"/offers/{world.offer.slug}/checkout/pay/") in actions
    # A creator's test link: its checkout form, which anyone holding the link may post.
    assert ("anonymous", f"/checkout/test/{world.objects['link']}/pay/") in actions
    assert any(role == "member" and action.startswith("/community/") for role, action in actions)
    # Become a Partner: joining a program, the partner's own Stripe account.
    assert ("member", f"/partners/offers/{world.offer.pk}/join/") in actions
    assert ("member", "/partners/stripe/disconnect/") in actions
    staff = {form.action for form in discover_forms(world, ("staff",))}
    assert "/dashboard/offers/new/membership/" in staff
    assert f"/dashboard/community/groups/{world.group.pk}/" in staff
    # The creator's confirmation pages: a refund, and cancelling the member's subscription.
    assert f"/dashboard/payments/{world.objects['payment'].pk}/refund/" in staff
    entitlement = world.objects["subscription_entitlement"]
    assert f"/dashboard/users/{world.member.pk}/memberships/{entitlement.pk}/cancel/" in staff
    # A test purchase: the test buyer's email, and Refund and hide (shown once it is paid).
    assert f"/dashboard/offers/{world.offer.pk}/test-purchase/" in staff
    # The creator's Pause / Remove and Stop commissions buttons for a partner.
    assert f"/dashboard/affiliates/partners/{world.objects['partner'].pk}/status/" in staff
    assert f"/dashboard/affiliates/partners/{world.objects['partner'].pk}/commissions/stop/" in staff


def test_no_public_form_answers_hostile_input_with_a_server_error(world) -> None:
    _fuzz_forms(world, ("anonymous", "member"), PROFILE)


def test_no_staff_form_answers_hostile_input_with_a_server_error(world) -> None:
    """The creator's own forms: a mistake there is not an attack, but still never a 500."""
    _fuzz_forms(world, ("staff",), settings(PROFILE, max_examples=10))


def _fuzz_forms(world: World, roles: tuple[str, ...], profile: settings) -> None:
    failures: list[str] = []
    for form in discover_forms(world, roles):
        client = Client(raise_request_exception=False)
        user = getattr(world, form.role, None)
        if user is not None:
            client.force_login(user)
        try:
            _fuzz_form(form, client, copy.deepcopy(client.cookies), profile)
        except AssertionError as error:
            failures.append(str(error))
    assert failures == []


def _fuzz_form(form: Form, client: Client, cookies: Any, profile: settings) -> None:
    def check(submission: tuple[str, bytes, bool]) -> None:
        content_type, body, debug = submission
        client.cookies = copy.deepcopy(cookies)  # each request as the role, whatever the last did
        with override_settings(DEBUG=debug), rolled_back():
            if form.method == "post":
                response = client.generic("POST", form.action, body, content_type=content_type)
            else:
                query = body.decode("latin-1") if content_type.startswith("application/x-www") else ""
                response = client.generic("GET", form.action, QUERY_STRING=query)
        assert response.status_code < 500, (form.role, form.method, form.action, content_type, body[:300], debug)

    test = given(submission=submissions(form.fields))(check)
    for submission in explicit_submissions(form.fields):
        test = example(submission=submission)(test)
    profile(test)()


# --- One click with a saved card ----------------------------------------------------------------
@pytest.fixture
def saved_card(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """The member paid on the creator's account before (the world's attempt, now paid, names
    their Stripe customer), and Stripe holds their card: an upsell they do not own has its
    one-click page, whose charge Stripe declines. Returns the page's path."""
    Offer.objects.create(
        title="Upsell",
        slug="upsell",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.ONE_TIME,
        price_amount=1500,
        currency="usd",
    )
    OfferStripePrice.objects.create(offer=Offer.objects.get(slug="upsell"), product_id="prod_up", price_id="price_up")
    CheckoutAttempt.objects.filter(pk=world.objects["checkoutattempt"].pk).update(
        status=CheckoutAttempt.Status.PAID, user=world.member, stripe_customer_id="cus_walk"
    )
    price = gateway.Price(price_id="price_up", active=True, amount=1500, currency="usd", recurring=None)
    card = gateway.SavedCard("pm_walk", "cus_walk", "visa", "4242", 12, 2034)

    def declined(**kwargs: Any) -> Any:
        raise gateway.StripeCardDeclined("declined", code="card_declined")

    monkeypatch.setattr(gateway, "price_retrieve", lambda **kwargs: price)
    monkeypatch.setattr(gateway, "customer_cards", lambda **kwargs: [card])
    monkeypatch.setattr(gateway, "payment_intent_charge_saved_card", declined)
    monkeypatch.setattr(gateway, "subscription_create_on_saved_card", declined)
    return "/offers/upsell/buy-now/"


def test_the_one_click_confirmation_never_answers_hostile_input_with_a_server_error(world, saved_card) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world.member)
    page = client.get(saved_card)
    assert page.status_code == 200
    parser = _FormParser()
    parser.feed(page.content.decode())
    forms = [
        Form(role="member", page=saved_card, action=urlsplit(action).path or saved_card, method=method, fields=names)
        for action, method, fields in parser.forms
        for names in [tuple(sorted(set(fields)))]
    ]
    assert (saved_card, ("amount", "csrfmiddlewaretoken", "group", "request_key")) in [
        (form.action, form.fields) for form in forms if form.method == "post"
    ]
    # A well-formed confirmation reaches Stripe (which declines), a hostile group does not.
    charged = client.post(saved_card, {"request_key": str(uuid.uuid4()), "amount": "1500", "group": ""})
    assert (charged.status_code, charged["Location"][:9]) == (302, "/buy-now/")
    hostile = client.post(saved_card, {"request_key": str(uuid.uuid4()), "amount": "1500", "group": "a\x00b"})
    assert (hostile.status_code, hostile["Location"]) == (302, saved_card)
    for form in forms:
        _fuzz_form(form, client, copy.deepcopy(client.cookies), PROFILE)


# --- The webhook -------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
nasty_json = st.sampled_from(
    [
        10**20,
        -(10**20),
        2**63,
        -1,
        True,
        1.5,
        "x" * 300,
        "\x00",
        "\ud800",
        "",
        [],
        {},
        {"id": {"id": "x"}},
        {"object": "x"},
        {"object": {"id": 7}},
    ]
)
EVENT_TYPES = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "payment_intent.succeeded",
    "account.updated",
    "account.application.deauthorized",
    "customer.created",
]


@st.composite
def webhook_bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["event", "mutated", "mutated", "mutated", "nested", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=300))
    if shape == "nested":
        depth = draw(st.integers(min_value=1, max_value=5000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return b'{"id": "evt_n", "type": "x", "data": ' + opener * depth + b"1" + closer * depth + b"}"
    payload: dict[str, Any] = event(draw(st.sampled_from(EVENT_TYPES)), {"id": "cs_fuzz"}, account=ACCOUNT_ID)
    if shape == "mutated":
        for key in draw(st.lists(st.sampled_from(["id", "type", "created", "account", "data", "livemode"]))):
            payload[key] = draw(st.one_of(nasty_json, json_values))
        payload["data"] = draw(st.one_of(st.just(payload["data"]), st.fixed_dictionaries({"object": json_values})))
    try:
        return json.dumps(payload).encode()
    except UnicodeEncodeError:
        return json.dumps(payload, ensure_ascii=True).encode()


@pytest.fixture
def quiet_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe answers every read with a bare object of the asked id: processing runs its own
    logic on hostile events without calling out."""
    readers = {
        "checkout_session_retrieve": gateway.CheckoutSession.from_stripe,
        "invoice_retrieve": gateway.Invoice.from_stripe,
        "subscription_retrieve": gateway.Subscription.from_stripe,
        "payment_intent_retrieve": gateway.PaymentIntent.from_stripe,
    }
    for name, read in readers.items():
        monkeypatch.setattr(
            gateway, name, lambda read=read, **kwargs: read({"id": str(next(iter(kwargs.values()), ""))})
        )
    status = gateway.AccountStatus(
        account_id=ACCOUNT_ID,
        livemode=False,
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        display_name="Fuzz",
        requirements_due=(),
    )
    monkeypatch.setattr(gateway, "account_retrieve", lambda **kwargs: status)
    monkeypatch.setattr(gateway, "account_access_revoked", lambda **kwargs: False)  # a forged deauthorization


def test_the_webhook_never_answers_hostile_input_with_a_server_error(world, quiet_stripe) -> None:
    client = Client(raise_request_exception=False)

    @settings(PROFILE, max_examples=100)
    @example(body=b"{}", signed=False, header="t=1,v1=\xe9", debug=False)
    @example(
        body=json.dumps({**event("customer.created", {"id": "cus_1"}), "created": 10**20}).encode(),
        signed=True,
        header="",
        debug=False,
    )
    @example(
        body=b'{"id": "evt_1", "type": "x", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        signed=True,
        header="",
        debug=False,
    )
    @given(
        body=webhook_bodies(),
        signed=st.sampled_from([True, True, True, False]),  # mostly past the signature
        header=st.text(st.characters(max_codepoint=255), max_size=30),
        debug=st.booleans(),
    )
    def check(body: bytes, signed: bool, header: str, debug: bool) -> None:
        signature = sign(body) if signed else header
        with override_settings(DEBUG=debug), rolled_back():
            # Processing runs as it would after commit; an error there is raised here.
            with TestCase.captureOnCommitCallbacks() as callbacks:
                response = client.post(
                    "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
                )
            assert response.status_code < 500, (body[:300], signature)
            assert response.status_code in (200, 400), response.status_code
            for callback in callbacks:
                callback()

    check()
