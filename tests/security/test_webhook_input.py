"""Hostile input at the Stripe webhook: a refusal (4xx) or an event recorded as failed with a
readable error, never a server error. Anyone can reach the endpoint; only a correctly signed
body gets past the signature, but Stripe's own payloads must not be trusted for their shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, TestCase, override_settings

from billing.models import WebhookEvent
from tests import factories
from tests.billing.helpers import ACCOUNT_ID, event, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def _post(client: Client, body: bytes, signature: str | None = None) -> int:
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    with override_settings(DEBUG=False), TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/stripe/webhook/", data=body, content_type="application/json", **headers)
    return response.status_code


def _signed(client: Client, body: bytes) -> int:
    return _post(client, body, sign(body))


def test_a_signature_header_with_a_non_ascii_byte_is_refused(client) -> None:
    assert _post(client, b"{}", "t=1,v1=\xe9") == 400
    assert _post(client, b"{}", "t=\xe9,v1=abc") == 400


def test_an_event_created_at_an_impossible_moment_is_refused(client) -> None:
    for created in (10**20, -(10**20), 2**63, "yesterday", True, 1.5):
        payload = {**event("customer.created", {"id": "cus_1"}), "created": created}
        assert _signed(client, json.dumps(payload).encode()) == 400, created
    assert not WebhookEvent.objects.exists()


def test_deeply_nested_json_is_refused(client) -> None:
    for depth in (100, 100_000):
        body = b'{"id": "evt_1", "type": "x", "data": ' + b"[" * depth + b"]" * depth + b"}"
        assert _signed(client, body) == 400, depth
    assert not WebhookEvent.objects.exists()


def test_values_no_database_can_store_are_refused(client) -> None:
    bad: list[dict[str, Any]] = [
        {"id": "evt_" + "x" * 300},  # longer than the column
        {"id": ""},
        {"id": "evt_\x00nul"},  # PostgreSQL text cannot hold NUL
        {"data": {"object": {"id": "cs_\x00"}}},  # nor can jsonb
        {"data": {"object": {"id": "\ud800"}}},  # a lone surrogate is not UTF-8
        {"account": ["acct_1"]},
        {"type": 7},
    ]
    for change in bad:
        payload = {**event("customer.created", {"id": "cus_1"}), **change}
        assert _signed(client, json.dumps(payload).encode()) == 400, change
    for body in (b'{"id": "evt_1", "type": "x", "n": NaN}', b'{"id": "evt_1", "type": "x", "n": 1e999}'):
        assert _signed(client, body) == 400, body
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        "not an object",
        ["a", "list"],
        {"object": "cs_1"},
        {"object": ["cs_1"]},
        {"object": {"id": {"nested": "cs_1"}}},
        {"object": {"id": 12345}},
    ],
)
def test_an_event_of_the_wrong_shape_is_recorded_as_failed_with_a_readable_error(client, data) -> None:
    factories.stripe_account()
    payload = {**event("checkout.session.completed", {}), "data": data}
    assert _signed(client, json.dumps(payload).encode()) == 200
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert row.account == ACCOUNT_ID
    assert "data.object" in row.error
    assert "Error(" not in row.error  # a sentence, not an exception's repr
