"""A stand-in webhook endpoint that records what the sandbox delivers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.stripe_sandbox.control import StripeSandbox, redirect_params


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Status codes to answer with, in order; 200 once they run out.
    answers: list[int] = field(default_factory=list)
    # Seconds each answer takes, as a real endpoint's work does; deliveries overlap meanwhile.
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0  # the most deliveries being answered at one moment
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [item.event for item in self.received]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]


@pytest.fixture
def webhook_receiver(stripe_sandbox: StripeSandbox) -> Iterator[WebhookReceiver]:
    """An HTTP endpoint the sandbox's webhooks are pointed at, recording each delivery."""
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.in_flight += 1
                receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.in_flight -= 1
                receiver.received.append(Received(dict(self.headers.items()), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook/")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stripe_sandbox.set_webhook_url(receiver.url)
    yield receiver
    stripe_sandbox.set_webhook_url("")
    server.shutdown()
    server.server_close()


# --- A connected creator and their catalogue --------------------------------------------
@dataclass
class Creator:
    """A connected account and the SDK options that act on it."""

    account: str
    client: Any

    @property
    def options(self) -> dict[str, Any]:
        return {"stripe_account": self.account}

    def price(self, unit_amount: int = 500, *, interval: str | None = None, name: str = "Gold membership") -> Any:
        product = self.client.v1.products.create({"name": name}, self.options)
        params: dict[str, Any] = {"product": product.id, "unit_amount": unit_amount, "currency": "usd"}
        if interval:
            params["recurring"] = {"interval": interval}
        return self.client.v1.prices.create(params, self.options)

    def session(self, price: Any, **extra: Any) -> Any:
        params: dict[str, Any] = {
            "mode": "subscription" if price.recurring else "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://localhost:8000/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost:8000/checkout/cancel/",
            **extra,
        }
        return self.client.v1.checkout.sessions.create(params, self.options)


@pytest.fixture
def creator(stripe_sandbox: StripeSandbox) -> Creator:
    """A creator who connected a new sandbox account through Connect OAuth."""
    client = stripe_sandbox.client()
    url = client.oauth.authorize_url({"scope": "read_write", "redirect_uri": "http://localhost:8000/connect/return/"})
    code = redirect_params(stripe_sandbox.authorize_oauth(url, business_name="Yoga with Olive"))["code"]
    token = client.oauth.token({"grant_type": "authorization_code", "code": code})
    return Creator(account=token["stripe_user_id"], client=client)
