"""The ``/v1`` routes: parameters checked as Stripe checks them, answers in Stripe's shapes."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.engine import MINIMUM_AMOUNT, Sandbox, format_amount
from stripe_sandbox.expansion import expand
from stripe_sandbox.shapes import list_object
from stripe_sandbox.store import EVENT_RETENTION_SECONDS, JSON, PLATFORM, PLATFORM_ACCOUNT_ID, StripeError, not_found


@dataclass
class ApiRequest:
    method: str
    path: str
    params: JSON
    owner: str  # PLATFORM or the connected account the call acts on


Handler = Callable[[Sandbox, ApiRequest, dict[str, str]], JSON]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, re.compile(f"^{pattern}$"), handler))
        return handler

    return register


def dispatch(sandbox: Sandbox, request: ApiRequest) -> JSON:
    for method, pattern, handler in ROUTES:
        match = pattern.match(request.path)
        if match and method == request.method:
            result = handler(sandbox, request, match.groupdict())
            expand_paths = request.params.get("expand") or []
            if isinstance(expand_paths, str):
                expand_paths = [expand_paths]
            result = copy.deepcopy(result)
            for path in expand_paths:
                expand(sandbox, result, str(path).split("."), request.owner)
            return result
    raise StripeError(
        f"Unrecognized request URL ({request.method}: {request.path}). Please see https://stripe.com/docs or we "
        "can help at https://support.stripe.com/.",
        status=404,
    )


# --- Parameter checks ---------------------------------------------------------------------
def param_name(prefix: str, key: str | int) -> str:
    """``line_items[0]`` and ``price`` give ``line_items[0][price]``, as Stripe names nested parameters."""
    return f"{prefix}[{key}]" if prefix else str(key)


def allow(params: JSON, *names: str, prefix: str = "") -> None:
    """Refuse keys other than ``names`` (and ``expand`` at the top); ``prefix`` names a nested hash."""
    for key in params:
        if key not in names and (key != "expand" or prefix):
            name = param_name(prefix, key)
            raise StripeError(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def exclusive(params: JSON, *names: str) -> None:
    given = [name for name in names if name in params]
    if len(given) > 1:
        raise StripeError(
            f"You may only specify one of these parameters: {', '.join(given)}.",
            param=given[-1],
            code="parameters_exclusive",
        )


def nested(params: JSON, name: str) -> JSON | None:
    """``params[name]`` when it is a hash (``name[key]=...``), None when absent, else a 400."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StripeError(f"Invalid object: {name} must be a hash.", param=name)
    return value


def required(params: JSON, name: str, label: str | None = None) -> Any:
    value = params.get(name)
    label = label or name
    if value is None:
        raise StripeError(f"Missing required param: {label}.", param=label, code="parameter_missing")
    if value == "":
        raise StripeError(
            f"You passed an empty string for '{label}'. We assume empty values are an attempt to unset a parameter; "
            f"however '{label}' cannot be unset. You should remove '{label}' from your request or supply a "
            "non-empty value.",
            param=label,
            code="parameter_invalid_empty",
        )
    return value


def integer(params: JSON, name: str, label: str | None = None, *, minimum: int | None = None) -> None:
    """Convert ``params[name]`` to an int in place, when present."""
    if name not in params:
        return
    label = label or name
    try:
        value = int(str(params[name]))
    except ValueError:
        raise StripeError(f"Invalid integer: {params[name]}", param=label, code="parameter_invalid_integer") from None
    if minimum is not None and value < minimum:
        raise StripeError(f"This value must be greater than or equal to {minimum}.", param=label)
    params[name] = value


def boolean(params: JSON, name: str) -> None:
    if name not in params:
        return
    value = str(params[name]).lower()
    if value not in ("true", "false"):
        raise StripeError(f"Invalid boolean: {params[name]}", param=name)
    params[name] = value == "true"


def choice(params: JSON, name: str, options: tuple[str, ...], label: str | None = None) -> None:
    if name in params and params[name] not in options:
        joined = ", ".join(f"`{option}`" for option in options)
        raise StripeError(f"Invalid {label or name}: must be one of {joined}", param=label or name)


def metadata(params: JSON, name: str = "metadata") -> None:
    if name not in params:
        return
    value = params[name]
    if value == "":
        params[name] = {}
        return
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise StripeError("Invalid object", param=name)
    if len(value) > 50:
        raise StripeError("You can specify up to 50 keys.", param=name)
    for key, item in value.items():
        if len(key) > 40:
            raise StripeError(
                f"Metadata keys can have up to 40 characters; `{key}` is too long.", param=f"{name}[{key}]"
            )
        if not isinstance(item, str) or len(item) > 500:
            raise StripeError("Metadata values can have up to 500 characters.", param=f"{name}[{key}]")
    params[name] = value


def currency(params: JSON, name: str = "currency") -> None:
    if name in params:
        value = str(params[name]).lower()
        if not re.fullmatch(r"[a-z]{3}", value):
            raise StripeError(f"Invalid currency: {params[name]}.", param=name)
        params[name] = value


def string_list(params: JSON, name: str) -> None:
    if name not in params:
        return
    value = params[name]
    if value == "":
        params[name] = []
    elif isinstance(value, str):
        params[name] = [value]
    elif not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StripeError("Invalid array", param=name)


# --- Lists and expansion ------------------------------------------------------------------
def paginate(objects: list[JSON], params: JSON, url: str) -> JSON:
    """A Stripe list: newest first, ``limit`` (1-100), ``starting_after``/``ending_before``."""
    integer(params, "limit", minimum=1)
    limit = min(int(params.get("limit", 10)), 100)
    ids = [obj["id"] for obj in objects]
    if params.get("starting_after"):
        if params["starting_after"] not in ids:
            raise not_found("object", params["starting_after"], "starting_after")
        objects = objects[ids.index(params["starting_after"]) + 1 :]
        return list_object(objects[:limit], url, has_more=len(objects) > limit)
    if params.get("ending_before"):
        if params["ending_before"] not in ids:
            raise not_found("object", params["ending_before"], "ending_before")
        objects = objects[: ids.index(params["ending_before"])]
        return list_object(objects[-limit:], url, has_more=len(objects) > limit)
    return list_object(objects[:limit], url, has_more=len(objects) > limit)


def created_filter(objects: list[JSON], params: JSON) -> list[JSON]:
    created = params.get("created")
    if created is None:
        return objects
    if not isinstance(created, dict):
        created = {"eq": created}
    bounds: dict[str, int] = {}
    for key, value in created.items():
        if key not in ("gt", "gte", "lt", "lte", "eq"):
            raise StripeError(
                f"Received unknown parameter: created[{key}]", param=f"created[{key}]", code="parameter_unknown"
            )
        try:
            bounds[key] = int(value)
        except ValueError:
            raise StripeError(
                f"Invalid integer: {value}", param=f"created[{key}]", code="parameter_invalid_integer"
            ) from None
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "eq": lambda a, b: a == b,
    }
    return [obj for obj in objects if all(checks[key](int(obj["created"]), bound) for key, bound in bounds.items())]


def invoice_subscription(invoice: JSON) -> str | None:
    """Since the 2025 API versions an invoice names its subscription only under ``parent``."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription: str | None = details.get("subscription")
    return subscription


def _retrieve(kind: str, noun: str | None = None) -> Handler:
    def handler(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
        allow(request.params)
        return sandbox.get(args["id"], request.owner, kind, noun=noun)

    return handler


# --- Accounts -----------------------------------------------------------------------------
@route("GET", r"/v1/account")
def account_retrieve_own(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params)
    account_id = PLATFORM_ACCOUNT_ID if request.owner == PLATFORM else request.owner
    account = sandbox.store.get(account_id)
    assert account is not None
    return account


@route("GET", r"/v1/accounts/(?P<id>[^/]+)")
def account_retrieve(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params)
    account_id = args["id"]
    if request.owner != PLATFORM and account_id != request.owner:
        raise not_found("account", account_id)
    if request.owner == PLATFORM and account_id != PLATFORM_ACCOUNT_ID and not sandbox.is_connected(account_id):
        raise StripeError(
            f"The provided key does not have access to account '{account_id}' (or that account does not exist). "
            "Application access may have been revoked.",
            status=403,
            type="invalid_request_error",
            code="account_invalid",
        )
    account = sandbox.store.get(account_id)
    assert account is not None
    return account


# --- Products and prices ------------------------------------------------------------------
PRODUCT_FIELDS = ("name", "active", "description", "images", "metadata", "url", "statement_descriptor", "unit_label")


def _product_params(params: JSON) -> None:
    boolean(params, "active")
    metadata(params)
    string_list(params, "images")
    if len(params.get("images", [])) > 8:
        raise StripeError("You can specify up to 8 images.", param="images")


@route("POST", r"/v1/products")
def product_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "id", *PRODUCT_FIELDS, "tax_code", "shippable")
    required(params, "name")
    _product_params(params)
    return sandbox.product_create(request.owner, params)


route("GET", r"/v1/products/(?P<id>[^/]+)")(_retrieve("product"))


@route("POST", r"/v1/products/(?P<id>[^/]+)")
def product_update(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, *PRODUCT_FIELDS, "default_price", "tax_code", "shippable")
    if "name" in params and not params["name"]:
        raise StripeError("You must provide a name for the product.", param="name")
    _product_params(params)
    return sandbox.product_update(request.owner, args["id"], {k: v for k, v in params.items() if k != "expand"})


@route("GET", r"/v1/products")
def product_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "active", "ids", "limit", "starting_after", "ending_before", "created", "url", "shippable")
    boolean(params, "active")
    string_list(params, "ids")
    products = created_filter(sandbox.store.find("product", request.owner), params)
    if "active" in params:
        products = [product for product in products if product["active"] == params["active"]]
    if "ids" in params:
        products = [product for product in products if product["id"] in params["ids"]]
    return paginate(products, params, "/v1/products")


PRICE_UPDATE_FIELDS = ("active", "metadata", "nickname", "lookup_key", "tax_behavior", "transfer_lookup_key")


@route("POST", r"/v1/prices")
def price_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "currency", "product", "product_data", "unit_amount", "recurring", *PRICE_UPDATE_FIELDS)
    required(params, "currency")
    currency(params)
    exclusive(params, "product", "product_data")
    if "product" not in params and "product_data" not in params:
        raise StripeError("Missing required param: product.", param="product", code="parameter_missing")
    product_data = nested(params, "product_data")
    if product_data is not None:
        allow(product_data, "name", "metadata", "active", "statement_descriptor", "unit_label", prefix="product_data")
        required(product_data, "name", "product_data[name]")
        metadata(product_data)
        boolean(product_data, "active")
    required(params, "unit_amount")
    integer(params, "unit_amount", minimum=0)
    boolean(params, "active")
    metadata(params)
    recurring = nested(params, "recurring")
    if recurring is not None:
        allow(recurring, "interval", "interval_count", "usage_type", "meter", "trial_period_days", prefix="recurring")
        choice(recurring, "usage_type", ("licensed",), "recurring[usage_type]")
        required(recurring, "interval", "recurring[interval]")
        choice(recurring, "interval", ("day", "week", "month", "year"), "recurring[interval]")
        integer(recurring, "interval_count", "recurring[interval_count]", minimum=1)
        limits = {"day": 365, "week": 52, "month": 12, "year": 1}
        if int(recurring.get("interval_count", 1)) > limits[recurring["interval"]]:
            raise StripeError(
                "The maximum billing frequency is one year (1 year, 12 months, 52 weeks or 365 days).",
                param="recurring[interval_count]",
            )
    choice(params, "tax_behavior", ("exclusive", "inclusive", "unspecified"))
    return sandbox.price_create(request.owner, params)


route("GET", r"/v1/prices/(?P<id>[^/]+)")(_retrieve("price"))


@route("POST", r"/v1/prices/(?P<id>[^/]+)")
def price_update(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, *PRICE_UPDATE_FIELDS)
    boolean(params, "active")
    metadata(params)
    return sandbox.price_update(request.owner, args["id"], {k: v for k, v in params.items() if k != "expand"})


@route("GET", r"/v1/prices")
def price_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(
        params,
        "active",
        "product",
        "type",
        "currency",
        "lookup_keys",
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "recurring",
    )
    boolean(params, "active")
    string_list(params, "lookup_keys")
    prices = created_filter(sandbox.store.find("price", request.owner), params)
    for key in ("active", "product", "type", "currency"):
        if key in params:
            prices = [price for price in prices if price[key] == params[key]]
    if "lookup_keys" in params:
        prices = [price for price in prices if price["lookup_key"] in params["lookup_keys"]]
    return paginate(prices, params, "/v1/prices")


# --- Customers ----------------------------------------------------------------------------
CUSTOMER_FIELDS = ("email", "name", "description", "phone", "metadata", "invoice_settings", "preferred_locales")


@route("POST", r"/v1/customers")
def customer_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, *CUSTOMER_FIELDS)
    metadata(params)
    if params.get("email") and len(params["email"]) > 512:
        raise StripeError("Invalid email address: the address is too long.", param="email")
    return sandbox.customer_create(request.owner, params)


route("GET", r"/v1/customers/(?P<id>[^/]+)")(_retrieve("customer"))


@route("POST", r"/v1/customers/(?P<id>[^/]+)")
def customer_update(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, *CUSTOMER_FIELDS)
    metadata(params)
    settings = nested(params, "invoice_settings")
    if settings is not None:
        allow(
            settings,
            "default_payment_method",
            "footer",
            "custom_fields",
            "rendering_options",
            prefix="invoice_settings",
        )
    return sandbox.customer_update(request.owner, args["id"], {k: v for k, v in params.items() if k != "expand"})


@route("GET", r"/v1/customers")
def customer_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "email", "limit", "starting_after", "ending_before", "created")
    customers = created_filter(sandbox.store.find("customer", request.owner), params)
    if "email" in params:
        customers = [customer for customer in customers if customer["email"] == params["email"]]
    return paginate(customers, params, "/v1/customers")


# --- Checkout Sessions --------------------------------------------------------------------
@route("POST", r"/v1/checkout/sessions")
def checkout_session_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(
        params,
        "mode",
        "line_items",
        "customer",
        "customer_email",
        "customer_creation",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "metadata",
        "payment_intent_data",
        "subscription_data",
        "expires_at",
        "locale",
        "submit_type",
        "payment_method_types",
        "ui_mode",
        "billing_address_collection",
        "allow_promotion_codes",
    )
    required(params, "mode")
    choice(params, "mode", ("payment", "subscription"))
    choice(params, "ui_mode", ("hosted_page",))
    lines = params.get("line_items")
    if not lines:
        raise StripeError("Missing required param: line_items.", param="line_items", code="parameter_missing")
    if not isinstance(lines, list):
        raise StripeError("Invalid array", param="line_items")
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise StripeError("Invalid object", param=f"line_items[{index}]")
        allow(line, "price", "quantity", "price_data", "metadata", prefix=f"line_items[{index}]")
        if "price_data" in line:
            raise StripeError(
                "The sandbox only accepts saved prices: create a Price and pass line_items[][price].",
                param=f"line_items[{index}][price_data]",
            )
        required(line, "price", f"line_items[{index}][price]")
        required(line, "quantity", f"line_items[{index}][quantity]")
        integer(line, "quantity", f"line_items[{index}][quantity]", minimum=1)
    choice(params, "customer_creation", ("always", "if_required"))
    if "customer_creation" in params and params["mode"] != "payment":
        raise StripeError("`customer_creation` can only be used in `payment` mode.", param="customer_creation")
    if params.get("customer") and params.get("customer_email"):
        raise StripeError(
            "You may only specify one of these parameters: customer, customer_email.", param="customer_email"
        )
    email = params.get("customer_email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
        raise StripeError(f"Invalid email address: {email}", param="customer_email")
    if params.get("client_reference_id") and len(params["client_reference_id"]) > 200:
        raise StripeError("client_reference_id must be at most 200 characters.", param="client_reference_id")
    for name in ("success_url", "cancel_url"):
        if name in params and not re.match(r"^https?://", str(params[name])):
            raise StripeError("Not a valid URL", param=name)
    if "success_url" not in params:
        raise StripeError("Missing required param: success_url.", param="success_url", code="parameter_missing")
    integer(params, "expires_at")
    metadata(params)
    pid = nested(params, "payment_intent_data")
    if pid is not None:
        if params["mode"] != "payment":
            raise StripeError(
                "You can only specify `payment_intent_data` in `payment` mode.", param="payment_intent_data"
            )
        allow(
            pid,
            "application_fee_amount",
            "metadata",
            "description",
            "receipt_email",
            "statement_descriptor",
            "setup_future_usage",
            prefix="payment_intent_data",
        )
        integer(pid, "application_fee_amount", "payment_intent_data[application_fee_amount]", minimum=0)
        choice(pid, "setup_future_usage", ("on_session", "off_session"), "payment_intent_data[setup_future_usage]")
        metadata(pid)
    sd = nested(params, "subscription_data")
    if sd is not None:
        if params["mode"] != "subscription":
            raise StripeError(
                "You can only specify `subscription_data` in `subscription` mode.", param="subscription_data"
            )
        allow(sd, "application_fee_percent", "metadata", "description", prefix="subscription_data")
        if "application_fee_percent" in sd:
            try:
                percent = float(sd["application_fee_percent"])
            except ValueError:
                raise StripeError(
                    f"Invalid decimal: {sd['application_fee_percent']}",
                    param="subscription_data[application_fee_percent]",
                ) from None
            if not 0 <= percent <= 100:
                raise StripeError(
                    "application_fee_percent must be between 0 and 100.",
                    param="subscription_data[application_fee_percent]",
                )
            sd["application_fee_percent"] = percent
        metadata(sd)
    return sandbox.checkout_session_create(request.owner, params)


route("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)")(_retrieve("checkout.session"))


@route("GET", r"/v1/checkout/sessions")
def checkout_session_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(
        params,
        "customer",
        "payment_intent",
        "subscription",
        "status",
        "limit",
        "starting_after",
        "ending_before",
        "created",
    )
    sessions = created_filter(sandbox.store.find("checkout.session", request.owner), params)
    for key in ("customer", "payment_intent", "subscription", "status"):
        if key in params:
            sessions = [session for session in sessions if session.get(key) == params[key]]
    return paginate(sessions, params, "/v1/checkout/sessions")


@route("POST", r"/v1/checkout/sessions/(?P<id>[^/]+)/expire")
def checkout_session_expire(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params)
    return sandbox.checkout_session_expire(request.owner, args["id"])


@route("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)/line_items")
def checkout_session_line_items(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params, "limit", "starting_after", "ending_before")
    sandbox.get(args["id"], request.owner, "checkout.session")
    items = sandbox.checkout_line_items(args["id"])
    return paginate(items, request.params, f"/v1/checkout/sessions/{args['id']}/line_items")


# --- Subscriptions and invoices -----------------------------------------------------------
@route("POST", r"/v1/subscriptions")
def subscription_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    """A subscription on a card on file (one-click purchases of recurring offers)."""
    params = request.params
    allow(
        params,
        "customer",
        "items",
        "default_payment_method",
        "application_fee_percent",
        "metadata",
        "description",
        "payment_behavior",
        "off_session",
        "collection_method",
    )
    required(params, "customer")
    items = params.get("items")
    if not items or not isinstance(items, list):
        raise StripeError("Missing required param: items.", param="items", code="parameter_missing")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise StripeError("Invalid object", param=f"items[{index}]")
        allow(item, "price", "quantity", prefix=f"items[{index}]")
        required(item, "price", f"items[{index}][price]")
        integer(item, "quantity", f"items[{index}][quantity]", minimum=1)
    choice(params, "payment_behavior", ("allow_incomplete", "error_if_incomplete", "default_incomplete"))
    if params.get("payment_behavior") == "default_incomplete":
        raise StripeError(
            "The sandbox charges subscriptions at once: use allow_incomplete or error_if_incomplete.",
            param="payment_behavior",
        )
    choice(params, "collection_method", ("charge_automatically",))
    boolean(params, "off_session")
    metadata(params)
    _fee_percent(params)
    return sandbox.subscription_create(request.owner, params)


def _fee_percent(params: JSON) -> None:
    if "application_fee_percent" in params:
        try:
            params["application_fee_percent"] = float(params["application_fee_percent"])
        except ValueError:
            raise StripeError("Invalid decimal", param="application_fee_percent") from None
        if not 0 <= params["application_fee_percent"] <= 100:
            raise StripeError("application_fee_percent must be between 0 and 100.", param="application_fee_percent")


route("GET", r"/v1/subscriptions/(?P<id>[^/]+)")(_retrieve("subscription"))


@route("POST", r"/v1/subscriptions/(?P<id>[^/]+)")
def subscription_update(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "cancel_at_period_end", "metadata", "cancellation_details", "description", "application_fee_percent")
    details = nested(params, "cancellation_details")
    if details is not None:
        allow(details, "comment", "feedback", prefix="cancellation_details")
    boolean(params, "cancel_at_period_end")
    metadata(params)
    _fee_percent(params)
    if "application_fee_percent" in params and request.owner == PLATFORM:
        raise StripeError(
            "Can only apply an application_fee_percent when the request is made on behalf of another account.",
            param="application_fee_percent",
        )
    return sandbox.subscription_update(request.owner, args["id"], {k: v for k, v in params.items() if k != "expand"})


@route("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)")
def subscription_cancel(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params, "invoice_now", "prorate", "cancellation_details")
    return sandbox.subscription_cancel(request.owner, args["id"])


@route("GET", r"/v1/subscriptions")
def subscription_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "status", "price", "limit", "starting_after", "ending_before", "created")
    subscriptions = created_filter(sandbox.store.find("subscription", request.owner), params)
    if "customer" in params:
        subscriptions = [sub for sub in subscriptions if sub["customer"] == params["customer"]]
    status = params.get("status")
    if status and status != "all":
        subscriptions = [sub for sub in subscriptions if sub["status"] == status]
    elif not status:
        subscriptions = [sub for sub in subscriptions if sub["status"] != "canceled"]
    return paginate(subscriptions, params, "/v1/subscriptions")


route("GET", r"/v1/invoices/(?P<id>[^/]+)")(_retrieve("invoice"))


@route("GET", r"/v1/invoices")
def invoice_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "subscription", "status", "limit", "starting_after", "ending_before", "created")
    invoices = created_filter(sandbox.store.find("invoice", request.owner), params)
    for key in ("customer", "status"):
        if key in params:
            invoices = [invoice for invoice in invoices if invoice.get(key) == params[key]]
    if "subscription" in params:
        invoices = [invoice for invoice in invoices if invoice_subscription(invoice) == params["subscription"]]
    return paginate(invoices, params, "/v1/invoices")


# --- Payments -----------------------------------------------------------------------------
route("GET", r"/v1/payment_intents/(?P<id>[^/]+)")(_retrieve("payment_intent"))
route("GET", r"/v1/charges/(?P<id>[^/]+)")(_retrieve("charge"))
route("GET", r"/v1/payment_methods/(?P<id>[^/]+)")(_retrieve("payment_method"))
route("GET", r"/v1/refunds/(?P<id>[^/]+)")(_retrieve("refund"))
route("GET", r"/v1/disputes/(?P<id>[^/]+)")(_retrieve("dispute"))


@route("GET", r"/v1/disputes")
def dispute_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "charge", "payment_intent", "limit", "starting_after", "ending_before", "created")
    disputes = created_filter(sandbox.store.find("dispute", request.owner), params)
    for key in ("charge", "payment_intent"):
        if key in params:
            disputes = [dispute for dispute in disputes if dispute.get(key) == params[key]]
    return paginate(disputes, params, "/v1/disputes")


route("GET", r"/v1/balance_transactions/(?P<id>[^/]+)")(_retrieve("balance_transaction"))


@route("POST", r"/v1/payment_intents")
def payment_intent_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    """A charge of a card on file (one-click purchases): ``confirm=true`` with ``off_session``."""
    params = request.params
    allow(
        params,
        "amount",
        "currency",
        "customer",
        "payment_method",
        "confirm",
        "off_session",
        "application_fee_amount",
        "metadata",
        "description",
        "receipt_email",
        "payment_method_types",
    )
    required(params, "amount")
    integer(params, "amount", minimum=1)
    required(params, "currency")
    currency(params)
    integer(params, "application_fee_amount", minimum=0)
    boolean(params, "confirm")
    boolean(params, "off_session")
    metadata(params)
    minimum = MINIMUM_AMOUNT.get(params["currency"], 50)
    if params["amount"] < minimum:
        raise StripeError(
            f"Amount must be at least {format_amount(minimum, params['currency'])} {params['currency']}",
            code="amount_too_small",
            param="amount",
        )
    return sandbox.payment_intent_create(request.owner, params)


@route("POST", r"/v1/payment_intents/(?P<id>[^/]+)/confirm")
def payment_intent_confirm(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "payment_method", "off_session")
    boolean(params, "off_session")
    return sandbox.payment_intent_confirm(request.owner, args["id"], params)


@route("GET", r"/v1/payment_methods")
def payment_method_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "type", "limit", "starting_after", "ending_before")
    required(params, "customer")
    return _customer_payment_methods(sandbox, request, params["customer"])


@route("GET", r"/v1/customers/(?P<id>[^/]+)/payment_methods")
def customer_payment_method_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params, "type", "limit", "starting_after", "ending_before")
    return _customer_payment_methods(sandbox, request, args["id"])


def _customer_payment_methods(sandbox: Sandbox, request: ApiRequest, customer: str) -> JSON:
    sandbox.get(customer, request.owner, "customer", param="customer")
    choice(request.params, "type", ("card",))
    methods = [pm for pm in sandbox.store.find("payment_method", request.owner) if pm["customer"] == customer]
    return paginate(methods, request.params, f"/v1/customers/{customer}/payment_methods")


@route("GET", r"/v1/payment_intents")
def payment_intent_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "limit", "starting_after", "ending_before", "created")
    intents = created_filter(sandbox.store.find("payment_intent", request.owner), params)
    if "customer" in params:
        intents = [intent for intent in intents if intent.get("customer") == params["customer"]]
    return paginate(intents, params, "/v1/payment_intents")


@route("GET", r"/v1/invoice_payments")
def invoice_payment_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "invoice", "limit", "starting_after", "ending_before")
    invoice = sandbox.get(required(params, "invoice"), request.owner, "invoice", param="invoice")
    payments = sandbox.invoice_payments(invoice["id"])
    return paginate(payments, params, f"/v1/invoice_payments?invoice={invoice['id']}")


@route("GET", r"/v1/charges")
def charge_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "payment_intent", "limit", "starting_after", "ending_before", "created")
    charges = created_filter(sandbox.store.find("charge", request.owner), params)
    for key in ("customer", "payment_intent"):
        if key in params:
            charges = [charge for charge in charges if charge.get(key) == params[key]]
    return paginate(charges, params, "/v1/charges")


@route("POST", r"/v1/refunds")
def refund_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(
        params, "charge", "payment_intent", "amount", "reason", "metadata", "refund_application_fee", "reverse_transfer"
    )
    integer(params, "amount", minimum=1)
    boolean(params, "refund_application_fee")
    boolean(params, "reverse_transfer")
    choice(params, "reason", ("duplicate", "fraudulent", "requested_by_customer"))
    metadata(params)
    return sandbox.refund_create(request.owner, params)


@route("GET", r"/v1/refunds")
def refund_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "charge", "payment_intent", "limit", "starting_after", "ending_before", "created")
    refunds = created_filter(sandbox.store.find("refund", request.owner), params)
    for key in ("charge", "payment_intent"):
        if key in params:
            refunds = [refund for refund in refunds if refund.get(key) == params[key]]
    return paginate(refunds, params, "/v1/refunds")


# --- Application fees (the platform's) ----------------------------------------------------
def _platform_only(request: ApiRequest) -> None:
    if request.owner != PLATFORM:
        raise StripeError("Application fees belong to the platform: do not send a Stripe-Account header.")


@route("GET", r"/v1/application_fees/(?P<id>[^/]+)")
def application_fee_retrieve(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params)
    _platform_only(request)
    return sandbox.get(args["id"], PLATFORM, "application_fee")


@route("GET", r"/v1/application_fees")
def application_fee_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "charge", "limit", "starting_after", "ending_before", "created")
    _platform_only(request)
    fees = created_filter(sandbox.store.find("application_fee", PLATFORM), params)
    if "charge" in params:
        fees = [fee for fee in fees if fee["charge"] == params["charge"]]
    return paginate(fees, params, "/v1/application_fees")


@route("POST", r"/v1/application_fees/(?P<id>[^/]+)/refunds")
def application_fee_refund(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "amount", "metadata")
    _platform_only(request)
    integer(params, "amount", minimum=1)
    metadata(params)
    fee = sandbox.get(args["id"], PLATFORM, "application_fee")
    remaining = int(fee["amount"]) - int(fee["amount_refunded"])
    if remaining <= 0:
        raise StripeError(f"Application fee {fee['id']} has already been refunded.", code="charge_already_refunded")
    return sandbox.fee_refund_create(fee, int(params.get("amount", remaining)), params.get("metadata", {}))


# --- Transfers (the platform's) -----------------------------------------------------------
@route("POST", r"/v1/transfers")
def transfer_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(
        params, "amount", "currency", "destination", "description", "metadata", "transfer_group", "source_transaction"
    )
    required(params, "amount")
    integer(params, "amount", minimum=1)
    required(params, "currency")
    currency(params)
    required(params, "destination")
    metadata(params)
    return sandbox.transfer_create(request.owner, params)


route("GET", r"/v1/transfers/(?P<id>[^/]+)")(_retrieve("transfer"))


@route("GET", r"/v1/transfers")
def transfer_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "destination", "transfer_group", "limit", "starting_after", "ending_before", "created")
    transfers = created_filter(sandbox.store.find("transfer", request.owner), params)
    for key in ("destination", "transfer_group"):
        if key in params:
            transfers = [transfer for transfer in transfers if transfer.get(key) == params[key]]
    return paginate(transfers, params, "/v1/transfers")


@route("POST", r"/v1/transfers/(?P<id>[^/]+)/reversals")
def transfer_reverse(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "amount", "metadata", "description", "refund_application_fee")
    integer(params, "amount", minimum=1)
    metadata(params)
    if request.owner != PLATFORM:
        raise not_found("transfer", args["id"])
    return sandbox.transfer_reverse(args["id"], params)


@route("GET", r"/v1/transfers/(?P<id>[^/]+)/reversals")
def transfer_reversal_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params, "limit", "starting_after", "ending_before")
    transfer = sandbox.get(args["id"], request.owner, "transfer")
    return paginate(transfer["reversals"]["data"], request.params, f"/v1/transfers/{args['id']}/reversals")


# --- Billing portal -----------------------------------------------------------------------
# Each feature's keys, the choices of those with a few, and the features whose ``enabled``
# Stripe requires when they are given, on create and on update.
PORTAL_FEATURES: dict[str, tuple[str, ...]] = {
    "customer_update": ("allowed_updates", "enabled"),
    "invoice_history": ("enabled",),
    "payment_method_update": ("enabled", "payment_method_configuration"),
    "subscription_cancel": ("cancellation_reason", "enabled", "mode", "proration_behavior"),
    "subscription_pause": ("enabled",),
    "subscription_update": ("enabled",),
}
PORTAL_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("at_period_end", "immediately"),
    "proration_behavior": ("always_invoice", "create_prorations", "none"),
}
CUSTOMER_UPDATES = ("address", "email", "name", "phone", "shipping", "tax_id")
CANCELLATION_REASONS = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)
ENABLED_REQUIRED = {
    True: ("customer_update", "invoice_history", "payment_method_update", "subscription_cancel", "subscription_update"),
    False: ("invoice_history", "payment_method_update"),
}


def _url(params: JSON, name: str) -> None:
    """An optional URL: "" unsets it."""
    if name not in params:
        return
    if params[name] == "":
        params[name] = None
    elif not re.match(r"^https?://", str(params[name])):
        raise StripeError("Not a valid URL", param=name)


def _portal_configuration_params(params: JSON, *, creating: bool) -> None:
    allow(
        params,
        "business_profile",
        "default_return_url",
        "features",
        "login_page",
        "metadata",
        "name",
        *(() if creating else ("active",)),
    )
    boolean(params, "active")
    metadata(params)
    _url(params, "default_return_url")
    if params.get("name") == "":
        params["name"] = None
    profile = nested(params, "business_profile")
    if profile is not None:
        allow(profile, "headline", "privacy_policy_url", "terms_of_service_url", prefix="business_profile")
        if profile.get("headline") == "":
            profile["headline"] = None
        _url(profile, "privacy_policy_url")
        _url(profile, "terms_of_service_url")
    login_page = nested(params, "login_page")
    if login_page is not None:
        allow(login_page, "enabled", prefix="login_page")
        required(login_page, "enabled", "login_page[enabled]")
        boolean(login_page, "enabled")
    features = nested(params, "features")
    if features is None:
        if creating:
            required(params, "features")
        return
    allow(features, *PORTAL_FEATURES, prefix="features")
    for name, keys in PORTAL_FEATURES.items():
        prefix = f"features[{name}]"
        feature = nested(features, name)
        if feature is None:
            continue
        allow(feature, *keys, prefix=prefix)
        if name in ENABLED_REQUIRED[creating]:
            required(feature, "enabled", f"{prefix}[enabled]")
        boolean(feature, "enabled")
        for key, options in PORTAL_CHOICES.items():
            choice(feature, key, options, f"{prefix}[{key}]")
        if "allowed_updates" in feature:
            string_list(feature, "allowed_updates")
            for update in feature["allowed_updates"]:
                if update not in CUSTOMER_UPDATES:
                    raise StripeError(
                        f"Invalid {prefix}[allowed_updates]: {update} is not one of {', '.join(CUSTOMER_UPDATES)}",
                        param=f"{prefix}[allowed_updates]",
                    )
        reason = nested(feature, "cancellation_reason")
        if reason is not None:
            allow(reason, "enabled", "options", prefix=f"{prefix}[cancellation_reason]")
            required(reason, "enabled", f"{prefix}[cancellation_reason][enabled]")
            boolean(reason, "enabled")
            string_list(reason, "options")
            if any(option not in CANCELLATION_REASONS for option in reason.get("options", [])):
                raise StripeError(
                    f"Invalid {prefix}[cancellation_reason][options]: each must be one of "
                    f"{', '.join(CANCELLATION_REASONS)}",
                    param=f"{prefix}[cancellation_reason][options]",
                )
        if name == "subscription_update" and feature.get("enabled"):
            # Stripe would need the products and prices to switch between; the sandbox's
            # portal does not switch plans.
            raise StripeError(
                "The sandbox's billing portal does not switch plans: features[subscription_update][enabled] must "
                "be false.",
                param="features[subscription_update][enabled]",
            )


@route("POST", r"/v1/billing_portal/configurations")
def portal_configuration_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    _portal_configuration_params(request.params, creating=True)
    return sandbox.portal_configuration_create(request.owner, request.params)


route("GET", r"/v1/billing_portal/configurations/(?P<id>[^/]+)")(
    _retrieve("billing_portal.configuration", noun="configuration")
)


@route("POST", r"/v1/billing_portal/configurations/(?P<id>[^/]+)")
def portal_configuration_update(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    _portal_configuration_params(params, creating=False)
    changes = {key: value for key, value in params.items() if key != "expand"}
    return sandbox.portal_configuration_update(request.owner, args["id"], changes)


@route("GET", r"/v1/billing_portal/configurations")
def portal_configuration_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "active", "is_default", "limit", "starting_after", "ending_before")
    boolean(params, "active")
    boolean(params, "is_default")
    configurations = sandbox.store.find("billing_portal.configuration", request.owner)
    for key in ("active", "is_default"):
        if key in params:
            configurations = [found for found in configurations if found[key] == params[key]]
    return paginate(configurations, params, "/v1/billing_portal/configurations")


@route("POST", r"/v1/billing_portal/sessions")
def portal_session_create(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "customer", "return_url", "locale", "configuration", "flow_data")
    required(params, "customer")
    if "return_url" in params and not re.match(r"^https?://", str(params["return_url"])):
        raise StripeError("Not a valid URL", param="return_url")
    return sandbox.portal_session_create(request.owner, params)


# --- Events -------------------------------------------------------------------------------
def _live_events(sandbox: Sandbox, owner: str) -> list[JSON]:
    horizon = sandbox.now() - EVENT_RETENTION_SECONDS
    return [event for event in sandbox.store.find("event", owner) if int(event["created"]) >= horizon]


@route("GET", r"/v1/events/(?P<id>[^/]+)")
def event_retrieve(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    allow(request.params)
    for event in _live_events(sandbox, request.owner):
        if event["id"] == args["id"]:
            return event
    raise not_found("event", args["id"])


@route("GET", r"/v1/events")
def event_list(sandbox: Sandbox, request: ApiRequest, args: dict[str, str]) -> JSON:
    params = request.params
    allow(params, "type", "types", "created", "limit", "starting_after", "ending_before", "delivery_success")
    exclusive(params, "type", "types")
    string_list(params, "types")
    if len(params.get("types", [])) > 20:
        raise StripeError("Invalid array: types may hold at most 20 event types", param="types")
    events = created_filter(_live_events(sandbox, request.owner), params)
    if "type" in params:
        pattern = re.compile("^" + re.escape(params["type"]).replace(r"\*", ".*") + "$")
        events = [event for event in events if pattern.match(event["type"])]
    if "types" in params:
        events = [event for event in events if event["type"] in params["types"]]
    return paginate(events, params, "/v1/events")
