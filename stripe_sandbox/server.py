"""The sandbox's HTTP server: Stripe's API, its hosted pages and the ``/_sandbox/`` control API.

Every request runs under the store's lock, so each one sees and leaves a consistent state.
A request that changes something is saved to disk before it is answered; one that fails
half-way is rolled back by reloading the last saved state. Events the request produced are
handed to the webhook deliverer only after the save.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import sys
import threading
import traceback
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from stripe_sandbox import api, pages
from stripe_sandbox.engine import API_VERSION, Sandbox
from stripe_sandbox.formdata import FormError, parse
from stripe_sandbox.store import JSON, PLATFORM, Store, StripeError, new_id
from stripe_sandbox.webhooks import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, Deliverer, describe

logger = logging.getLogger("stripe_sandbox")

DEFAULT_PORT = 12111
DEFAULT_STATE_DIR = "data/stripe-sandbox"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/stripe/webhook/"
DEFAULT_WEBHOOK_SECRET = "whsec_sandbox_platform_secret"
DEFAULT_CLIENT_ID = "ca_sandbox_platform"
DEFAULT_SECRET_KEY = "sk_test_sandbox_platform"  # the default of STRIPE_SECRET_KEY
IDEMPOTENCY_KEYS_KEPT = 1000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        state_dir: Path,
        webhook_url: str,
        webhook_secret: str,
        client_id: str = DEFAULT_CLIENT_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        public_url: str | None = None,
        quiet: bool = False,
        delivery_concurrency: int = DEFAULT_CONCURRENCY,
        check_state: bool = False,
    ) -> None:
        if not 1 <= delivery_concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"the delivery concurrency must be from 1 to {MAX_CONCURRENCY}")
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else str(host)  # noqa: S104
        self.public_url = (public_url or f"http://{host}:{port}").rstrip("/")
        self.quiet = quiet
        self.secret_key = secret_key
        self.default_webhook_url = webhook_url
        self.default_concurrency = delivery_concurrency
        self.store = Store(state_dir, check=check_state)
        # The command line decides where webhooks go at start, and how many are in flight at
        # once; the control API may change them later.
        self.store.state["webhook_url"] = webhook_url
        self.store.state["delivery"]["concurrency"] = delivery_concurrency
        self.sandbox = Sandbox(self.store, public_url=self.public_url, client_id=client_id)
        self.deliverer = Deliverer(
            url=self.store.state["webhook_url"],
            secret=webhook_secret,
            load_event=self._load_event,
            settings=lambda: dict(self.store.state["delivery"]),
            consume_drop=self._consume_drop,
            finished=self._delivery_finished,
        )
        self.store.save()

    # --- Deliverer hooks ------------------------------------------------------------------
    def _load_event(self, event_id: str) -> JSON | None:
        with self.store.lock:
            event = self.store.get(event_id)
            return json.loads(json.dumps(event)) if event else None

    def _consume_drop(self) -> bool:
        with self.store.lock:
            delivery = self.store.state["delivery"]
            if int(delivery.get("drop", 0)) <= 0:
                return False
            delivery["drop"] = int(delivery["drop"]) - 1
            self.store.save()
            return True

    def _delivery_finished(self, event_id: str) -> None:
        with self.store.lock:
            if self.store.pending_remove(event_id):
                self.store.save()

    def start_delivering(self) -> None:
        self.deliverer.start()
        self.deliverer.enqueue(list(self.store.state["pending_deliveries"]))

    def server_close(self) -> None:
        self.deliverer.stop()
        super().server_close()
        self.store.close()

    # --- Transactions ---------------------------------------------------------------------
    def commit(self) -> None:
        """Save the request's changes, then hand its events to the deliverer."""
        events = list(self.sandbox.outbox)
        self.sandbox.outbox.clear()
        self.store.save()
        if events:
            self.deliverer.enqueue(events)

    def rollback(self) -> None:
        self.sandbox.outbox.clear()
        self.store.rollback()


class Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    _answer: tuple[int, bytes, str, dict[str, str]]
    server_version = "StripeSandbox/1.0"

    # --- Plumbing -------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add 40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def _send(self, status: int, body: str | bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Hold the answer until the request's changes are saved (see ``_handle``)."""
        data = body.encode() if isinstance(body, str) else body
        self._answer = (status, data, content_type, headers or {})

    def _write_answer(self) -> None:
        status, data, content_type, headers = self._answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, indent=2), "application/json", headers)

    def _html(self, result: tuple[int, str]) -> None:
        self._send(result[0], result[1], "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(303, "", "text/plain", {"Location": location})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        body = self._body() if method in ("POST", "DELETE") else ""
        store = self.server.store
        with store.lock:
            try:
                # Whatever fell due as real time passed (renewals, expiries) happens first, so a
                # demo left running behaves like Stripe over days.
                self.server.sandbox.catch_up()
                if self.server.sandbox.outbox:
                    self.server.commit()
                self._route(method, path, url.query, body)
                if method != "GET":
                    self.server.commit()
            except Exception:  # a bug in the sandbox: answer like Stripe's 500, keep the last good state
                self.server.rollback()
                traceback.print_exc()
                self._json(
                    500,
                    {"error": {"type": "api_error", "message": "An unexpected error occurred in the Stripe sandbox."}},
                )
        # Answered only once the changes are on disk and their events are queued.
        self._write_answer()

    def _route(self, method: str, path: str, query: str, body: str) -> None:
        if path.startswith("/v1/") or path in ("/oauth/token", "/oauth/deauthorize"):
            self._api(method, path, query, body)
        elif path == "/oauth/authorize":
            self._authorize(method, query, body)
        elif match := re.fullmatch(r"/c/pay/([A-Za-z0-9_]+)", path):
            self._checkout(method, match.group(1), body)
        elif match := re.fullmatch(r"/p/session/([A-Za-z0-9_]+)", path):
            self._portal(method, match.group(1), body)
        elif path.startswith("/_sandbox/"):
            self._control(method, path.removeprefix("/_sandbox"), body)
        elif path == "/" and method == "GET":
            self._index()
        else:
            self._html(pages.page("Not found", "<div class=wrap><h1>Not found</h1></div>", 404))

    # --- The API --------------------------------------------------------------------------
    def _api(self, method: str, path: str, query: str, body: str) -> None:
        request_id = new_id("req", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        try:
            owner = self._authenticate(oauth=path.startswith("/oauth/"))
            params = parse(body if method == "POST" else query)
        except StripeError as error:
            self._json(error.status, error.body(), headers)
            return
        except FormError as error:
            failure = StripeError(str(error), param=error.param)
            self._json(failure.status, failure.body(), headers)
            return
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        sandbox = self.server.sandbox
        state = self.server.store.state
        if key:
            scope = f"{owner}:{key}"
            fingerprint = hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()
            saved = state["idempotency"].get(scope)
            if saved is not None:
                if saved["fingerprint"] != fingerprint:
                    failure = StripeError(
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                    self._json(failure.status, failure.body(), headers)
                    return
                self._json(saved["status"], saved["body"], {**headers, "Idempotent-Replayed": "true"})
                return
        sandbox.request_info = {"id": request_id, "idempotency_key": key}
        try:
            if path == "/oauth/token":
                status, payload = 200, sandbox.oauth_token(params)
            elif path == "/oauth/deauthorize":
                status, payload = 200, sandbox.oauth_deauthorize(params)
            else:
                status, payload = 200, api.dispatch(sandbox, api.ApiRequest(method, path, params, owner))
        except StripeError as error:
            oauth_code = error.extra.get("oauth")
            if oauth_code:
                status, payload = 400, {"error": oauth_code, "error_description": error.message}
            else:
                status, payload = error.status, error.body()
            if not error.keep_changes:
                self.server.rollback()
                self._json(status, payload, headers)
                return
        finally:
            sandbox.request_info = {"id": None, "idempotency_key": None}
        if key:
            self.server.store.idempotency_put(
                f"{owner}:{key}",
                {"fingerprint": fingerprint, "status": status, "body": payload, "created": sandbox.now()},
            )
            self._prune_idempotency()
        self._json(status, payload, headers)

    def _prune_idempotency(self) -> None:
        """Stripe keeps idempotency keys for 24 hours; the sandbox also keeps at most the latest
        ``IDEMPOTENCY_KEYS_KEPT`` (the SDK sends a key with every POST)."""
        store = self.server.store
        horizon = self.server.sandbox.now() - 24 * 60 * 60
        saved = store.state["idempotency"]
        for scope in [scope for scope, entry in saved.items() if entry["created"] < horizon]:
            store.idempotency_delete(scope)
        for scope in list(saved)[: max(0, len(saved) - IDEMPOTENCY_KEYS_KEPT)]:
            store.idempotency_delete(scope)

    def _authenticate(self, *, oauth: bool) -> str:
        """The account the request acts on: PLATFORM, or a connected account."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise StripeError(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                status=401,
            )
        key = header[7:].strip()
        state = self.server.store.state
        owner = PLATFORM
        if key in state["access_tokens"]:
            owner = state["access_tokens"][key]
            if not self.server.sandbox.is_connected(owner):
                raise StripeError(
                    f"Expired API Key provided: {key[:8]}****{key[-4:]}. Application access may have been revoked.",
                    status=401,
                )
        elif key != self.server.secret_key:
            # Like Stripe, only the platform's own key: another account's key is unknown here.
            raise StripeError(f"Invalid API Key provided: {key[:8]}{'*' * 4}{key[-4:]}", status=401)
        account = self.headers.get("Stripe-Account")
        if account and not oauth:
            if owner != PLATFORM and account != owner:
                raise StripeError("The Stripe-Account header does not match the access token's account.", status=403)
            if not self.server.sandbox.is_connected(account):
                raise StripeError(
                    f"The provided key '{key[:8]}****{key[-4:]}' does not have access to account '{account}' "
                    "(or that account does not exist). Application access may have been revoked.",
                    status=403,
                    code="account_invalid",
                )
            owner = account
        return owner

    # --- Connect OAuth --------------------------------------------------------------------
    def _authorize(self, method: str, query: str, body: str) -> None:
        sandbox = self.server.sandbox
        params = dict(parse_qsl(query))
        if params.get("client_id") != sandbox.client_id:
            self._html(pages.oauth_error(f"Invalid client_id: {params.get('client_id')!r} is not a known platform."))
            return
        if params.get("response_type", "code") != "code":
            self._html(pages.oauth_error("Invalid response_type: only 'code' is supported."))
            return
        redirect_uri = params.get("redirect_uri", "")
        if not re.match(r"^https?://", redirect_uri):
            self._html(pages.oauth_error("Invalid redirect_uri: an http(s) URL is required."))
            return
        accounts = sandbox.accounts()
        if method == "GET":
            self._html(pages.authorize(query=query, accounts=accounts, values={}, errors={}))
            return
        form = dict(parse_qsl(body, keep_blank_values=True))
        answer: dict[str, str] = {}
        if form.get("decision") == "deny":
            answer = {"error": "access_denied", "error_description": "The user denied your request"}
        else:
            choice = form.get("account", "new")
            errors: dict[str, str] = {}
            email = form.get("email", "").strip()
            if choice == "new":
                if email and not EMAIL.match(email):
                    errors["email"] = "Enter a valid email address."
                if errors:
                    self._html(pages.authorize(query=query, accounts=accounts, values=form, errors=errors))
                    return
                account = sandbox.account_create(
                    name=form.get("business_name", "").strip() or f"Sandbox account {len(accounts) + 1}",
                    email=email,
                    needs_verification=bool(form.get("needs_verification")),
                )
                account_id = account["id"]
            elif choice in sandbox.state["accounts"]:
                account_id = choice
            else:
                errors["__all__"] = "Choose an account or create a new one."
                self._html(pages.authorize(query=query, accounts=accounts, values=form, errors=errors))
                return
            answer = {"code": sandbox.oauth_code_create(account_id), "scope": params.get("scope", "read_write")}
        if "state" in params:
            answer["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        self._redirect(redirect_uri + separator + urlencode(answer))

    # --- Hosted checkout ------------------------------------------------------------------
    def _account_name(self, owner: str | None) -> str:
        if owner in (None, PLATFORM):
            return "Sandbox platform"
        account = self.server.store.get(owner) or {}
        name: str = account.get("business_profile", {}).get("name") or owner
        return name

    def _checkout(self, method: str, session_id: str, body: str) -> None:
        sandbox = self.server.sandbox
        store = self.server.store
        session = store.get(session_id)
        owner = store.owner_of(session_id)
        if session is None or session.get("object") != "checkout.session":
            self._html(
                pages.page(
                    "Checkout", "<div class=wrap><h1>Something went wrong: no such checkout session.</h1></div>", 404
                )
            )
            return
        account_name = self._account_name(owner)
        if session["status"] != "open":
            self._html(pages.checkout_closed(session, account_name))
            return
        items = sandbox.checkout_line_items(session_id)
        images: list[str] = []
        for item in items:
            product = store.get(item["price"]["product"]) or {}
            images.extend(product.get("images") or [])
        prefilled = session.get("customer_email") or (session.get("customer_details") or {}).get("email") or ""
        values = {"email": prefilled}
        saves_card = sandbox.checkout_saves_card(session_id)
        if method == "GET":
            self._html(
                pages.checkout(
                    session,
                    account_name=account_name,
                    items=items,
                    product_images=images,
                    values=values,
                    errors={},
                    saves_card=saves_card,
                )
            )
            return
        form = dict(parse_qsl(body, keep_blank_values=True))
        values.update({key: form.get(key, "") for key in ("card_number", "expiry", "cvc", "name")})
        if not prefilled:
            values["email"] = form.get("email", "").strip()
        errors, card = self._card_errors(values)
        if errors:
            self._html(
                pages.checkout(
                    session,
                    account_name=account_name,
                    items=items,
                    product_images=images,
                    values=values,
                    errors=errors,
                    saves_card=saves_card,
                )
            )
            return
        number, exp_month, exp_year = card
        session, decline = sandbox.checkout_pay(
            session_id,
            email=values["email"],
            name=values["name"].strip(),
            number=number,
            exp_month=exp_month,
            exp_year=exp_year,
        )
        if decline:
            self.server.commit()
            self._html(
                pages.checkout(
                    session,
                    account_name=account_name,
                    items=items,
                    product_images=images,
                    values=values,
                    errors={},
                    decline=decline,
                    saves_card=saves_card,
                )
            )
            return
        success = session.get("success_url")
        if success:
            self._redirect(success.replace("{CHECKOUT_SESSION_ID}", session_id))
        else:
            self._html(pages.thanks(account_name))

    def _card_errors(
        self, values: dict[str, str], *, email: bool = True
    ) -> tuple[dict[str, str], tuple[str, int, int]]:
        errors: dict[str, str] = {}
        if email and not values["email"]:
            errors["email"] = "Your email address is incomplete."
        elif email and not EMAIL.match(values["email"]):
            errors["email"] = "Your email address is invalid."
        number = re.sub(r"[\s-]", "", values["card_number"])
        if not number:
            errors["card_number"] = "Your card number is incomplete."
        elif not number.isdigit() or not 13 <= len(number) <= 19:
            errors["card_number"] = (
                "Your card number is incomplete." if number.isdigit() else "Your card number is invalid."
            )
        elif not luhn_ok(number):
            errors["card_number"] = "Your card number is invalid."
        exp_month = exp_year = 0
        expiry = re.fullmatch(r"\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*", values["expiry"])
        if not values["expiry"].strip():
            errors["expiry"] = "Your card's expiration date is incomplete."
        elif not expiry or not 1 <= int(expiry.group(1)) <= 12:
            errors["expiry"] = "Your card's expiration date is invalid."
        else:
            exp_month = int(expiry.group(1))
            exp_year = int(expiry.group(2))
            exp_year += 2000 if exp_year < 100 else 0
            today = datetime.fromtimestamp(self.server.sandbox.now(), UTC)
            if (exp_year, exp_month) < (today.year, today.month):
                errors["expiry"] = (
                    "Your card's expiration year is in the past."
                    if exp_year < today.year
                    else "Your card's expiration date is in the past."
                )
        if not re.fullmatch(r"\d{3,4}", values["cvc"].strip()):
            errors["cvc"] = "Your card's security code is incomplete."
        if not values["name"].strip():
            errors["name"] = "Enter the name on your card."
        return errors, (number, exp_month, exp_year)

    # --- Billing portal -------------------------------------------------------------------
    def _portal(self, method: str, session_id: str, body: str) -> None:
        store = self.server.store
        session = store.get(session_id)
        owner = store.owner_of(session_id)
        if session is None or owner is None or session.get("object") != "billing_portal.session":
            self._html(pages.page("Billing portal", "<div class=wrap><h1>This link has expired.</h1></div>", 404))
            return
        configuration = store.get(session.get("configuration") or "", owner) or {}
        answer: JSON = {"notice": "", "alert": "", "values": {}, "errors": {}}
        if method == "POST":
            answer = self._portal_action(owner, session, configuration, dict(parse_qsl(body, keep_blank_values=True)))
        customer = store.get(session["customer"]) or {}
        subscriptions = [
            sub
            for sub in store.find("subscription", owner)
            if sub["customer"] == session["customer"] and sub["status"] != "canceled"
        ]
        invoices = [
            (invoice, self._invoice_status(invoice))
            for invoice in store.find("invoice", owner)
            if invoice["customer"] == session["customer"] and invoice["status"] != "draft"
        ]
        card_id = (customer.get("invoice_settings") or {}).get("default_payment_method") or next(
            (sub["default_payment_method"] for sub in subscriptions if sub.get("default_payment_method")), None
        )
        card = (store.get(card_id or "", owner) or {}).get("card")
        self._html(
            pages.portal(
                session,
                account_name=self._account_name(owner),
                customer=customer,
                configuration=configuration,
                subscriptions=subscriptions,
                invoices=invoices,
                card=card,
                **answer,
            )
        )

    def _portal_action(self, owner: str, session: JSON, configuration: JSON, form: dict[str, str]) -> JSON:
        """Do what the portal's form asked, when the configuration allows it."""
        sandbox = self.server.sandbox
        features = configuration.get("features") or {}
        answer: JSON = {"notice": "", "alert": "", "values": {}, "errors": {}}
        action = form.get("action")
        subscription = self.server.store.get(form.get("subscription", ""), owner) or {}
        mine = subscription.get("object") == "subscription" and subscription.get("customer") == session["customer"]
        cancel = features.get("subscription_cancel") or {}
        if action == "card" and (features.get("payment_method_update") or {}).get("enabled"):
            values = {key: form.get(key, "") for key in ("card_number", "expiry", "cvc", "name")}
            errors, (number, exp_month, exp_year) = self._card_errors({**values, "email": "-"}, email=False)
            if not errors:
                decline = sandbox.customer_card_update(
                    owner,
                    session["customer"],
                    number=number,
                    exp_month=exp_month,
                    exp_year=exp_year,
                    name=values["name"].strip(),
                )
                if decline:
                    errors["card_number"] = decline
                else:
                    self.server.commit()
                    return {**answer, "notice": "Your card was updated."}
            return {**answer, "values": values, "errors": errors}
        if (
            action == "cancel"
            and cancel.get("enabled")
            and mine
            and subscription["status"] in pages.CANCELABLE
            and not subscription["cancel_at_period_end"]
        ):
            if cancel.get("mode") == "immediately":
                sandbox.subscription_cancel(owner, subscription["id"])
                notice = "Your plan was canceled."
            else:
                sandbox.subscription_update(owner, subscription["id"], {"cancel_at_period_end": True})
                notice = "Your plan will be canceled at the end of the period."
            self.server.commit()
            return {**answer, "notice": notice}
        if action == "renew" and mine and subscription["cancel_at_period_end"] and subscription["status"] != "canceled":
            sandbox.subscription_update(owner, subscription["id"], {"cancel_at_period_end": False})
            self.server.commit()
            return {**answer, "notice": "Your plan was renewed."}
        return {**answer, "alert": "This change is not available in this portal."}

    def _invoice_status(self, invoice: JSON) -> str:
        """The invoice history's status: Stripe's, or how much of its payment was refunded."""
        store = self.server.store
        if invoice["status"] == "paid":
            # Read without ``get``/``extras``, which would mark what a GET only looked at as changed.
            for payment in store.state["extras"].get(invoice["id"], {}).get("payments", []):
                intent = store.state["objects"].get(payment["payment"]["payment_intent"]) or {}
                charge = store.state["objects"].get(intent.get("latest_charge") or "") or {}
                if charge.get("refunded"):
                    return "Refunded"
                if charge.get("amount_refunded"):
                    return "Partially refunded"
        return str(invoice["status"]).replace("_", " ").capitalize()

    # --- Index and control ----------------------------------------------------------------
    def _index(self) -> None:
        log = self.server.deliverer.log()
        self._html(
            pages.index(
                now=self.server.sandbox.now(),
                accounts=self.server.sandbox.accounts(),
                deliveries=[describe(entry) for entry in log["deliveries"]],
                webhook_url=log["url"],
            )
        )

    def _control(self, method: str, path: str, body: str) -> None:
        try:
            payload: JSON = json.loads(body) if body.strip() else {}
        except ValueError:
            self._json(400, {"error": {"type": "invalid_request_error", "message": "The body must be JSON."}})
            return
        try:
            status, answer = self._control_action(method, path, payload)
        except StripeError as error:
            self.server.rollback()
            status, answer = error.status, error.body()
        except (TypeError, ValueError, AttributeError) as error:
            self.server.rollback()
            status = 400
            answer = {"error": {"type": "invalid_request_error", "message": f"Bad control request: {error}"}}
        self._json(status, answer)

    def _control_action(self, method: str, path: str, payload: JSON) -> tuple[int, Any]:
        server = self.server
        sandbox = server.sandbox
        state = server.store.state
        if (method, path) == ("GET", "/health"):
            return 200, {"ok": True, "now": sandbox.now()}
        if (method, path) == ("POST", "/reset"):
            server.store.reset()
            state = server.store.state
            state["webhook_url"] = server.default_webhook_url
            state["delivery"]["concurrency"] = server.default_concurrency
            sandbox.ensure_platform()
            server.deliverer.reset(server.default_webhook_url)
            return 200, {"ok": True}
        if path == "/config":
            if method == "POST":
                delivery = state["delivery"]
                for key, kind in (("duplicate", bool), ("reorder", bool), ("delay_ms", int), ("drop", int)):
                    if key in payload:
                        delivery[key] = kind(payload[key])
                if "concurrency" in payload:
                    concurrency = int(payload["concurrency"])
                    if not 1 <= concurrency <= MAX_CONCURRENCY:
                        raise StripeError(
                            f"concurrency: from 1 to {MAX_CONCURRENCY} deliveries at once.", param="concurrency"
                        )
                    delivery["concurrency"] = concurrency
                if "retry_delays" in payload:
                    delays = [float(delay) for delay in payload["retry_delays"] or []]
                    if any(delay < 0 for delay in delays) or len(delays) > 10:
                        raise StripeError(
                            "retry_delays: up to 10 delays in seconds, none negative.", param="retry_delays"
                        )
                    delivery["retry_delays"] = delays
                if "webhook_url" in payload:
                    if payload["webhook_url"] and not re.match(r"^https?://", str(payload["webhook_url"])):
                        raise StripeError("webhook_url must be an http(s) URL.", param="webhook_url")
                    state["webhook_url"] = str(payload["webhook_url"] or "")
                    server.deliverer.url = state["webhook_url"]
                if "refuse_transfers" in payload:
                    state["refuse_transfers"] = bool(payload["refuse_transfers"])
                if "after_failed_retries" in payload:
                    if payload["after_failed_retries"] not in ("cancel", "unpaid"):
                        raise StripeError(
                            "after_failed_retries must be cancel or unpaid.", param="after_failed_retries"
                        )
                    state["after_failed_retries"] = payload["after_failed_retries"]
            return 200, {
                "webhook_url": state["webhook_url"],
                "delivery": state["delivery"],
                "after_failed_retries": state["after_failed_retries"],
                "refuse_transfers": bool(state.get("refuse_transfers")),
            }
        if path == "/clock":
            if method == "POST":
                sandbox.advance(int(payload.get("seconds", 0)))
            return 200, {"now": sandbox.now(), "offset": state["clock_offset"]}
        if (method, path) == ("GET", "/deliveries"):
            return 200, server.deliverer.log()
        if (method, path) == ("POST", "/accounts"):
            account = sandbox.account_create(
                name=str(payload.get("business_name") or "Sandbox account"),
                email=str(payload.get("email") or ""),
                needs_verification=bool(payload.get("needs_verification")),
            )
            return 200, account
        if method == "POST" and (match := re.fullmatch(r"/accounts/([A-Za-z0-9_]+)", path)):
            return 200, sandbox.account_update(match.group(1), payload)
        if (method, path) == ("POST", "/disputes"):
            target = str(payload.get("charge") or payload.get("payment_intent") or "")
            amount = payload.get("amount")
            return 200, sandbox.dispute_create(
                target,
                reason=str(payload.get("reason") or "fraudulent"),
                amount=int(amount) if amount is not None else None,
            )
        if method == "POST" and (match := re.fullmatch(r"/disputes/([A-Za-z0-9_]+)/close", path)):
            return 200, sandbox.dispute_close(match.group(1), status=str(payload.get("status") or "lost"))
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unknown control endpoint {method} {path}"}}


def luhn_ok(number: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def serve(server: SandboxServer) -> threading.Thread:
    """Serve in a background thread (tests, embedding). Stop with ``server.shutdown()``."""
    server.start_delivering()
    thread = threading.Thread(target=server.serve_forever, name="stripe-sandbox", daemon=True)
    thread.start()
    return thread
