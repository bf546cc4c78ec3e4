"""The offline Stripe sandbox as a test fixture, for every test that needs it.

One sandbox server process runs for the whole session (started on first use) on a free port
with a temporary state directory; ``stripe_sandbox`` resets it before each test and points
``settings.STRIPE_API_BASE`` at it. ``tests/conftest.py`` imports the fixtures, so the billing
tests and the sandbox's own tests (``tests/stripe_sandbox/``) share one definition and so one
process. Its webhooks go nowhere until a test calls
``set_webhook_url`` (e.g. with ``live_server.url + "/stripe/webhook/"``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import stripe
from django.conf import settings as django_settings

from devtools.processes import running


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The port is chosen when the test suite is collected, before any fixture runs, so the real
# Celery worker of the second CI pass (tests/conftest.py passes this on as STRIPE_API_BASE)
# calls the same sandbox as the tests, whichever test starts it.
SANDBOX_PORT = _free_port()
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"
os.environ["TEST_STRIPE_API_BASE"] = SANDBOX_URL


@dataclass
class PayResult:
    """What the hosted checkout page answered."""

    status: int
    redirect_url: str | None  # where a paid session sends the buyer
    error: str | None  # the decline or validation message shown on the page
    html: str

    @property
    def paid(self) -> bool:
        return self.status == 303


@dataclass
class PortalResult:
    """What the hosted billing portal page answered."""

    status: int
    notice: str | None  # what the page confirms ("Your card was updated.")
    error: str | None  # the decline, validation or refusal message shown on the page
    html: str


def _portal_result(status: int, html: str) -> PortalResult:
    notice = re.search(r'role="status">([^<]*)<', html)
    alert = re.search(r'role="alert">([^<]*)<', html)
    return PortalResult(
        status=status,
        notice=unescape(notice.group(1)) if notice else None,
        error=unescape(alert.group(1)) if alert else None,
        html=html,
    )


class StripeSandbox:
    """Control of a running sandbox, through its HTTP control API and its hosted pages."""

    def __init__(self, url: str, *, secret_key: str, client_id: str) -> None:
        self.url = url
        self.secret_key = secret_key
        self.client_id = client_id

    # --- Plumbing -------------------------------------------------------------------------
    def _http(self, method: str, target: str, body: str = "", headers: dict[str, str] | None = None) -> Any:
        parts = urlsplit(target if "://" in target else self.url + target)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, path, body=body.encode(), headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    def _control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        status, _, body = self._http(
            method, "/_sandbox" + path, json.dumps(payload or {}), {"Content-Type": "application/json"}
        )
        answer = json.loads(body)
        if status != 200:
            raise AssertionError(f"sandbox control {method} {path} failed ({status}): {answer}")
        return answer

    def client(self, api_key: str | None = None) -> stripe.StripeClient:
        """An SDK client pointed at the sandbox, as the platform builds it."""
        return stripe.StripeClient(
            api_key=api_key or self.secret_key,
            client_id=self.client_id,
            base_addresses={"api": self.url, "connect": self.url, "files": self.url},
            max_network_retries=0,
        )

    # --- State and time -------------------------------------------------------------------
    def reset(self) -> None:
        self._control("POST", "/reset")

    def now(self) -> int:
        return int(self._control("GET", "/clock")["now"])

    def advance_clock(self, seconds: int) -> int:
        """Move the sandbox's clock forward, running renewals, retries and expiries. Returns now."""
        return int(self._control("POST", "/clock", {"seconds": seconds})["now"])

    def create_account(
        self,
        business_name: str = "Sandbox creator",
        email: str = "creator@example.com",
        *,
        needs_verification: bool = False,
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self._control(
            "POST",
            "/accounts",
            {"business_name": business_name, "email": email, "needs_verification": needs_verification},
        )
        return answer

    def update_account(self, account_id: str, **changes: Any) -> dict[str, Any]:
        """E.g. ``verified=True`` (charges and payouts enabled) or ``charges_enabled=False``."""
        answer: dict[str, Any] = self._control("POST", f"/accounts/{account_id}", changes)
        return answer

    def set_after_failed_retries(self, outcome: str) -> None:
        """What a subscription becomes when every retry of a renewal failed: cancel or unpaid."""
        self._control("POST", "/config", {"after_failed_retries": outcome})

    def refuse_transfers(self, refuse: bool = True) -> None:
        """Make every transfer fail (``balance_insufficient``) until called with False."""
        self._control("POST", "/config", {"refuse_transfers": refuse})

    # --- Webhooks -------------------------------------------------------------------------
    def set_webhook_url(self, url: str) -> None:
        self._control("POST", "/config", {"webhook_url": url})

    def set_delivery(
        self,
        duplicate: bool = False,
        delay_ms: int = 0,
        reorder: bool = False,
        drop: int = 0,
        concurrency: int | None = None,
    ) -> None:
        """Duplicate every event, delay each delivery, deliver batches newest first, drop the next N
        events (every copy), and, when given, how many deliveries are in flight at once."""
        switches: dict[str, Any] = {"duplicate": duplicate, "delay_ms": delay_ms, "reorder": reorder, "drop": drop}
        if concurrency is not None:
            switches["concurrency"] = concurrency
        self._control("POST", "/config", switches)

    def delivery_settings(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._control("GET", "/config")["delivery"]
        return answer

    def set_retry_delays(self, seconds: list[float]) -> None:
        """Seconds between delivery attempts (one first attempt plus one per delay)."""
        self._control("POST", "/config", {"retry_delays": seconds})

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far: event_id, type, account, attempt, copy, status, result..."""
        answer: list[dict[str, Any]] = self._control("GET", "/deliveries")["deliveries"]
        return answer

    def wait_for_deliveries(
        self, count: int | None = None, *, type: str | None = None, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Wait until nothing is left to deliver (and at least ``count`` attempts, of ``type``, were made)."""
        deadline = time.monotonic() + timeout
        while True:
            log = self._control("GET", "/deliveries")
            entries = [entry for entry in log["deliveries"] if type is None or entry["type"] == type]
            if log["pending"] == 0 and (count is None or len(entries) >= count):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook deliveries did not settle in {timeout}s: {log}")
            time.sleep(0.05)

    # --- Disputes -------------------------------------------------------------------------
    def create_dispute(
        self, charge_or_payment_intent: str, *, reason: str = "fraudulent", amount: int | None = None
    ) -> dict[str, Any]:
        key = "payment_intent" if charge_or_payment_intent.startswith("pi_") else "charge"
        answer: dict[str, Any] = self._control(
            "POST", "/disputes", {key: charge_or_payment_intent, "reason": reason, "amount": amount}
        )
        return answer

    def close_dispute(self, dispute_id: str, status: str = "lost") -> dict[str, Any]:
        answer: dict[str, Any] = self._control("POST", f"/disputes/{dispute_id}/close", {"status": status})
        return answer

    # --- Hosted pages without a browser ---------------------------------------------------
    def pay_checkout(
        self,
        session_id: str,
        card: str = "4242424242424242",
        email: str = "buyer@example.com",
        name: str = "Jenny Rosen",
        expiry: str = "12 / 34",
        cvc: str = "123",
    ) -> PayResult:
        """Submit the hosted checkout page's form, as a buyer would."""
        form = urlencode({"email": email, "card_number": card, "expiry": expiry, "cvc": cvc, "name": name})
        status, headers, html = self._http(
            "POST", f"/c/pay/{session_id}", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        alert = re.search(r'role="alert">([^<]*)<', html)
        return PayResult(
            status=status,
            redirect_url=headers.get("Location"),
            error=unescape(alert.group(1)) if alert else None,
            html=html,
        )

    def portal_page(self, portal_url: str) -> PortalResult:
        """The hosted billing portal page, as the buyer first sees it."""
        status, _, html = self._http("GET", portal_url)
        return _portal_result(status, html)

    def portal_action(
        self,
        portal_url: str,
        action: str,
        subscription_id: str | None = None,
        *,
        card: str = "4242424242424242",
        expiry: str = "12 / 34",
        cvc: str = "123",
        name: str = "Jenny Rosen",
    ) -> PortalResult:
        """Press a button of the hosted billing portal page, as a buyer would: ``cancel`` or
        ``renew`` a subscription, or ``card`` to update the card (``card="4000000000000341"``)."""
        form: dict[str, str] = {"action": action}
        if subscription_id is not None:
            form["subscription"] = subscription_id
        if action == "card":
            form.update(card_number=card, expiry=expiry, cvc=cvc, name=name)
        status, _, html = self._http(
            "POST", portal_url, urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return _portal_result(status, html)

    def authorize_oauth(
        self,
        authorize_url: str,
        account: str | None = None,
        deny: bool = False,
        *,
        business_name: str = "Sandbox creator",
        email: str = "creator@example.com",
        needs_verification: bool = False,
    ) -> str:
        """Answer the Connect authorize page: an existing ``account``, or a new one. Returns the redirect URL."""
        query = urlsplit(authorize_url).query
        form: dict[str, str] = {"decision": "deny" if deny else "connect", "account": account or "new"}
        if account is None:
            form.update(business_name=business_name, email=email)
            if needs_verification:
                form["needs_verification"] = "1"
        status, headers, html = self._http(
            "POST", f"/oauth/authorize?{query}", urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 303:
            raise AssertionError(f"the authorize page answered {status}: {html[:500]}")
        return str(headers["Location"])


def redirect_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.fixture(scope="session")
def _stripe_sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeSandbox]:
    state_dir = tmp_path_factory.mktemp("stripe-sandbox")
    args = [sys.executable, "-m", "stripe_sandbox", "--port", str(SANDBOX_PORT), "--state-dir", str(state_dir)]
    args += ["--webhook-url", "", "--webhook-secret", django_settings.STRIPE_WEBHOOK_SECRET]
    args += ["--client-id", django_settings.STRIPE_CONNECT_CLIENT_ID, "--secret-key", django_settings.STRIPE_SECRET_KEY]
    # One delivery at a time: the platform's tests take webhooks on Django's live test server,
    # whose database does not serve parallel requests. The sandbox's own tests of parallel
    # delivery raise it (``set_delivery(concurrency=...)``); a reset brings it back to 1.
    args += ["--delivery-concurrency", "1", "--quiet", "--check-state"]
    with running(args, log=state_dir / "sandbox.log", port=SANDBOX_PORT, stop_timeout=10):
        yield StripeSandbox(
            SANDBOX_URL,
            secret_key=django_settings.STRIPE_SECRET_KEY,
            client_id=django_settings.STRIPE_CONNECT_CLIENT_ID,
        )


@pytest.fixture
def stripe_sandbox(_stripe_sandbox_server: StripeSandbox, settings: Any) -> StripeSandbox:
    """The sandbox, reset, with ``settings.STRIPE_API_BASE`` pointing at it for this test."""
    _stripe_sandbox_server.reset()
    settings.STRIPE_API_BASE = _stripe_sandbox_server.url
    settings.STRIPE_SANDBOX = True
    return _stripe_sandbox_server
