"""The sandbox keeps its state on disk: a restarted demo keeps its accounts and sales."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stripe

from stripe_sandbox.engine import Sandbox
from stripe_sandbox.server import SandboxServer, serve
from tests.stripe_sandbox.conftest import WebhookReceiver
from tests.stripe_sandbox.control import StripeSandbox, redirect_params


@contextmanager
def running(state_dir: Path, webhook_url: str = "") -> Iterator[StripeSandbox]:
    server = SandboxServer(
        ("127.0.0.1", 0),
        state_dir=state_dir,
        webhook_url=webhook_url,
        webhook_secret="whsec_x",
        secret_key="sk_test_x",
        quiet=True,
    )
    serve(server)
    try:
        yield StripeSandbox(server.public_url, secret_key="sk_test_x", client_id="ca_sandbox_platform")
    finally:
        server.shutdown()
        server.server_close()


def test_a_restarted_sandbox_keeps_accounts_objects_and_events(tmp_path: Path) -> None:
    with running(tmp_path) as first:
        client = first.client()
        url = client.oauth.authorize_url({"scope": "read_write", "redirect_uri": "http://localhost:8000/return/"})
        code = redirect_params(first.authorize_oauth(url))["code"]
        account = client.oauth.token({"grant_type": "authorization_code", "code": code})["stripe_user_id"]
        customer = client.v1.customers.create({"email": "mia@example.com"}, {"stripe_account": account})
        first.advance_clock(3600)
        clock = first.now()

    with running(tmp_path) as second:
        client = second.client()
        found = client.v1.customers.retrieve(customer.id, options={"stripe_account": account})
        events = client.v1.events.list({"type": "customer.created"}, {"stripe_account": account})
        assert found.email == "mia@example.com"
        assert [event.data.object.id for event in events.data] == [customer.id]
        assert second.now() >= clock
        try:
            client.oauth.token({"grant_type": "authorization_code", "code": code})
            raise AssertionError("a used code worked again after a restart")
        except stripe.oauth_error.InvalidGrantError:
            pass


def test_the_state_file_is_complete_json_after_every_change(tmp_path: Path) -> None:
    with running(tmp_path) as sandbox:
        sandbox.client().v1.customers.create({"email": "a@example.com"})
        state = json.loads((tmp_path / "state.json").read_text())

    assert any(obj.get("email") == "a@example.com" for obj in state["objects"].values()), state
    assert not list(tmp_path.glob(".state-*"))


def test_a_request_that_fails_half_way_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def create_then_break(self: Sandbox, owner: str, params: dict) -> dict:
        self.product_create(owner, {"name": "Half made"})
        raise RuntimeError("a bug half-way through a request")

    monkeypatch.setattr(Sandbox, "price_create", create_then_break)
    with running(tmp_path) as sandbox:
        client = sandbox.client()
        with pytest.raises(stripe.APIError) as caught:
            client.v1.prices.create({"product_data": {"name": "Gold"}, "currency": "usd", "unit_amount": 500})

        assert caught.value.http_status == 500
        assert client.v1.products.list().data == []
        assert client.v1.events.list().data == []


def test_events_not_yet_delivered_are_delivered_after_a_restart(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    refused = "http://127.0.0.1:9/stripe/webhook/"
    with running(tmp_path, webhook_url=refused) as first:
        first.set_retry_delays([60])
        customer = first.client().v1.customers.create({"email": "mia@example.com"})
        deadline = time.monotonic() + 10
        while not first.deliveries() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.deliveries()[0]["result"] == "retrying"

    with running(tmp_path, webhook_url=webhook_receiver.url) as second:
        deadline = time.monotonic() + 10
        while not webhook_receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [event["data"]["object"]["id"] for event in webhook_receiver.events()] == [customer.id]
        assert second.wait_for_deliveries(1)[0]["result"] == "delivered"
