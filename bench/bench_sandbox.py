"""Stripe sandbox benchmark: how fast it delivers a large run's webhooks.

300 checkout purchases (half one-time, half monthly, on a connected account) are made through
the API and the hosted checkout page, as the tests make them, while the webhook endpoint
refuses connections and retries wait an hour: every event stays pending. The sandbox is then
restarted with its webhooks pointed at a minimal local receiver (answering 200 at once,
checking a sample of signatures with the SDK), and delivers the whole backlog. The figure is
deliveries per second at the default concurrency (8), with the same backlog delivered one at
a time (a copy of the state directory) as the baseline, measured in the same run. The state's
size on disk after the run is the last figure.
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.harness import Figure, bench_data_dir, free_port
from devtools.processes import running

PURCHASES = 300
SECRET = "whsec_sandbox_bench"
SECRET_KEY = "sk_test_sandbox_platform"
CLIENT_ID = "ca_sandbox_platform"
REFUSED = "http://127.0.0.1:9/stripe/webhook/"
SIGNATURES_CHECKED = 50


class Receiver:
    """A webhook endpoint that answers 200 at once and counts what it was sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[str] = []
        self.first = self.last = 0.0
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.received(body, self.headers.get("Stripe-Signature") or "")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, body: bytes, signature: str) -> None:
        with self.lock:
            self.ids.append(json.loads(body)["id"])
            self.last = time.monotonic()
            self.first = self.first or self.last
            check = len(self.ids) % max(1, PURCHASES // SIGNATURES_CHECKED) == 0
        if check:
            import stripe

            try:
                stripe.Webhook.construct_event(body.decode(), signature, SECRET)
            except stripe.SignatureVerificationError:
                with self.lock:
                    self.bad_signatures += 1

    def clear(self) -> None:
        with self.lock:
            self.ids.clear()
            self.first = self.last = 0.0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def _sandbox(state_dir: Path, *, webhook_url: str, concurrency: int) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "stripe_sandbox", "--port", str(port), "--state-dir", str(state_dir), "--quiet"]
    args += ["--webhook-url", webhook_url, "--webhook-secret", SECRET, "--secret-key", SECRET_KEY]
    args += ["--client-id", CLIENT_ID, "--delivery-concurrency", str(concurrency)]
    with running(args, log=state_dir.parent / f"{state_dir.name}-{concurrency}.log", port=port):
        yield f"http://127.0.0.1:{port}"


def _http(base: str, method: str, target: str, body: str = "", content_type: str = "application/json") -> Any:
    parts = urlsplit(target if "://" in target else base + target)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body.encode(), headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.getheader("Location") or "", response.read()
    finally:
        conn.close()


def _control(base: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    status, _, body = _http(base, method, "/_sandbox" + path, json.dumps(payload or {}))
    if status != 200:
        raise RuntimeError(f"sandbox control {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def _purchases(base: str) -> None:
    """Connect an account, then buy from it through Checkout's hosted page ``PURCHASES`` times."""
    import stripe

    client = stripe.StripeClient(
        api_key=SECRET_KEY,
        client_id=CLIENT_ID,
        base_addresses={"api": base, "connect": base, "files": base},
        max_network_retries=0,
    )
    url = client.oauth.authorize_url({"scope": "read_write", "redirect_uri": "http://127.0.0.1/return/"})
    form = urlencode({"decision": "connect", "account": "new", "business_name": "Bench", "email": "b@example.com"})
    status, location, _ = _http(base, "POST", url, form, "application/x-www-form-urlencoded")
    if status != 303:
        raise RuntimeError(f"the authorize page answered {status}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    options: Any = {
        "stripe_account": client.oauth.token({"grant_type": "authorization_code", "code": code})["stripe_user_id"]
    }
    product = client.v1.products.create({"name": "Bench Club"}, options)
    once = client.v1.prices.create({"product": product.id, "unit_amount": 2500, "currency": "usd"}, options)
    monthly = client.v1.prices.create(
        {"product": product.id, "unit_amount": 900, "currency": "usd", "recurring": {"interval": "month"}}, options
    )
    for n in range(PURCHASES):
        price, mode = (monthly, "subscription") if n % 2 else (once, "payment")
        params: Any = {
            "mode": mode,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://127.0.0.1/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1/",
            "customer_email": f"buyer{n}@bench.example",
        }
        params["subscription_data" if mode == "subscription" else "payment_intent_data"] = (
            {"application_fee_percent": 10} if mode == "subscription" else {"application_fee_amount": 250}
        )
        session = client.v1.checkout.sessions.create(params, options)
        card = {"card_number": "4242424242424242", "expiry": "12 / 34", "cvc": "123", "name": "Buyer"}
        status, _, _ = _http(base, "POST", f"/c/pay/{session.id}", urlencode(card), "application/x-www-form-urlencoded")
        if status != 303:
            raise RuntimeError(f"the hosted checkout page answered {status}")


def _drain(state_dir: Path, receiver: Receiver, *, concurrency: int, backlog: int) -> float:
    """Restart on ``state_dir`` with the receiver as endpoint; deliveries per second of the backlog."""
    receiver.clear()
    with _sandbox(state_dir, webhook_url=receiver.url, concurrency=concurrency):
        deadline = time.monotonic() + 300
        while len(receiver.ids) < backlog:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(receiver.ids)} of {backlog} webhooks arrived")
            time.sleep(0.05)
        time.sleep(0.5)  # nothing more should come
    if len(receiver.ids) != backlog or len(set(receiver.ids)) != backlog:
        raise RuntimeError(f"{len(receiver.ids)} deliveries of {len(set(receiver.ids))} events, expected {backlog}")
    if receiver.bad_signatures:
        raise RuntimeError(f"{receiver.bad_signatures} deliveries did not verify")
    return (backlog - 1) / (receiver.last - receiver.first)


def run() -> list[Figure]:
    with bench_data_dir() as data_dir:
        state = data_dir / "sandbox"
        with _sandbox(state, webhook_url=REFUSED, concurrency=8) as base:
            _control(base, "POST", "/config", {"retry_delays": [3600]})
            _purchases(base)
            backlog = int(_control(base, "GET", "/deliveries")["pending"])
        shutil.copytree(state, data_dir / "sandbox-one-at-a-time")
        receiver = Receiver()
        try:
            parallel = _drain(state, receiver, concurrency=8, backlog=backlog)
            one = _drain(data_dir / "sandbox-one-at-a-time", receiver, concurrency=1, backlog=backlog)
        finally:
            receiver.close()
        size = sum(path.stat().st_size for path in state.iterdir() if path.is_file()) / 1e6
    note = f"({backlog} webhooks of {PURCHASES} purchases)"
    return [
        Figure("sandbox webhook deliveries per second, 8 in flight", parallel, "/s", ">=", 100, note),
        Figure(
            "sandbox deliveries 8 in flight vs one at a time",
            parallel / one,
            "x",
            ">=",
            1.2,  # the receiver answers at once: the sandbox's own work bounds the gain
            f"({one:.0f}/s one at a time)",
        ),
        Figure("sandbox state size after the run", size, "MB", "<=", 32, note),
    ]
