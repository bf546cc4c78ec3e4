"""The sandbox's HTML pages: hosted checkout, Connect OAuth, the billing portal, its index.

Plain server-rendered HTML with one inline stylesheet. Every input has a ``<label for>`` so
people (and Playwright's ``get_by_label``) find fields by their names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from stripe_sandbox.engine import describe_interval, format_amount
from stripe_sandbox.store import JSON

STYLE = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;
color:#1a1f36;background:#f6f9fc}.wrap{max-width:920px;margin:0 auto;padding:32px 20px;display:flex;gap:48px;
flex-wrap:wrap}.col{flex:1 1 360px}.badge{display:inline-block;background:#ffde92;color:#a04d00;font-size:12px;
font-weight:600;padding:2px 6px;border-radius:4px;margin-left:8px}h1{font-size:18px;margin:0 0 24px}
.amount{font-size:36px;font-weight:600;margin:4px 0}.muted{color:#697386}.card{background:#fff;border-radius:8px;
box-shadow:0 2px 5px rgba(60,66,87,.12),0 1px 1px rgba(0,0,0,.08);padding:24px}label{display:block;font-size:13px;
color:#3c4257;margin:14px 0 4px;font-weight:500}input[type=text],input[type=email]{width:100%;padding:9px 11px;
font-size:15px;border:1px solid #d5dbe1;border-radius:6px}input[aria-invalid=true]{border-color:#df1b41}
.row{display:flex;gap:12px}.row>div{flex:1}.error{color:#df1b41;font-size:13px;margin-top:4px}
button{margin-top:22px;width:100%;padding:12px;border:0;border-radius:6px;background:#0074d4;color:#fff;
font-size:16px;font-weight:600;cursor:pointer}button.secondary{background:#fff;color:#3c4257;border:1px solid #d5dbe1}
a{color:#0074d4}.hint{font-size:12px;color:#697386;background:#f0f4f8;border-radius:6px;padding:10px;margin-top:18px}
.alert{background:#fde8ec;color:#a41c3a;border-radius:6px;padding:10px 12px;margin-top:14px}
.notice{background:#e6f6ec;color:#0e6245;border-radius:6px;padding:10px 12px;margin:14px 0}
img.product{max-width:96px;border-radius:6px;margin-bottom:12px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e8ee;font-size:13px;vertical-align:top}
fieldset{border:1px solid #e3e8ee;border-radius:6px;margin:14px 0 0;padding:6px 14px 14px}
.choice label{display:inline;font-weight:400;margin:0}.choice{margin:8px 0}
"""

# The subscriptions the portal lets a customer cancel.
CANCELABLE = ("active", "past_due", "unpaid", "trialing")

TEST_CARDS_HINT = (
    "Test cards: <b>4242 4242 4242 4242</b> pays; <b>4000 0000 0000 0002</b> is declined; "
    "<b>4000 0000 0000 0341</b> pays now and fails every renewal; <b>4000 0025 0000 3155</b> asks to "
    "authenticate unless saved for later, <b>4000 0027 6000 3184</b> always (both pay here). "
    "Any future expiry, any CVC."
)


def format_date(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}"


def page(title: str, body: str, status: int = 200) -> tuple[int, str]:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return status, html


def _field(name: str, label: str, value: str, errors: dict[str, str], **attrs: str) -> str:
    error = errors.get(name)
    extra = "".join(f' {key.replace("_", "-")}="{escape(val)}"' for key, val in attrs.items())
    invalid = f' aria-invalid=true aria-describedby="{name}-error"' if error else ""
    html = (
        f'<label for="{name}">{escape(label)}</label>'
        f'<input type=text id="{name}" name="{name}" value="{escape(value)}"{extra}{invalid}>'
    )
    if error:
        html += f'<div class="error" id="{name}-error" role="alert">{escape(error)}</div>'
    return html


# --- Hosted checkout ----------------------------------------------------------------------
def checkout(
    session: JSON,
    *,
    account_name: str,
    items: list[JSON],
    product_images: list[str],
    values: dict[str, str],
    errors: dict[str, str],
    decline: str | None = None,
    saves_card: bool = False,
) -> tuple[int, str]:
    recurring = next((item["price"]["recurring"] for item in items if item["price"].get("recurring")), None)
    total = format_amount(int(session["amount_total"]), session["currency"])
    names = ", ".join(escape(str(item.get("description") or "")) for item in items)
    image = f'<img class=product src="{escape(product_images[0])}" alt="">' if product_images else ""
    interval = describe_interval(recurring)
    back = ""
    if session.get("cancel_url"):
        back = f'<p><a href="{escape(session["cancel_url"])}">← Back to {escape(account_name)}</a></p>'
    button = "Subscribe" if session["mode"] == "subscription" else "Pay"
    email_attrs: dict[str, str] = {"autocomplete": "email"}
    if session.get("customer_email") or session.get("customer_details"):
        email_attrs["readonly"] = "readonly"
    alert = f'<div class="alert" role="alert">{escape(decline)}</div>' if decline else ""
    # Stripe's own words under a card that is saved for later payments.
    saved = (
        f"<p class=hint>By providing your card information, you allow {escape(account_name)} to charge your card "
        "for future payments in accordance with their terms.</p>"
        if saves_card
        else ""
    )
    body = f"""
<div class=wrap>
 <div class=col>
  {back}
  <h1>{escape(account_name)}<span class=badge>TEST MODE</span></h1>
  {image}
  <div class=muted>{"Subscribe to " if recurring else ""}{names}</div>
  <div class=amount>{total}</div>
  <div class=muted>{escape(interval)}</div>
 </div>
 <div class=col>
  <form class=card method=post novalidate>
   <h1>Pay with card</h1>
   {_field("email", "Email", values.get("email", ""), errors, **email_attrs)}
   {
        _field(
            "card_number",
            "Card number",
            values.get("card_number", ""),
            errors,
            placeholder="1234 1234 1234 1234",
            inputmode="numeric",
            autocomplete="cc-number",
        )
    }
   {"" if not decline else alert}
   <div class=row>
    <div>{
        _field("expiry", "Expiry", values.get("expiry", ""), errors, placeholder="MM / YY", autocomplete="cc-exp")
    }</div>
    <div>{
        _field(
            "cvc", "CVC", values.get("cvc", ""), errors, placeholder="CVC", inputmode="numeric", autocomplete="cc-csc"
        )
    }</div>
   </div>
   {_field("name", "Name on card", values.get("name", ""), errors, autocomplete="cc-name")}
   {saved}
   <button type=submit>{button}</button>
   <div class=hint>{TEST_CARDS_HINT}</div>
  </form>
 </div>
</div>"""
    return page(f"{account_name} - Checkout", body, 402 if decline else 400 if errors else 200)


def checkout_closed(session: JSON, account_name: str) -> tuple[int, str]:
    if session["status"] == "complete":
        message = "This checkout session has already been paid."
        link = session.get("success_url")
        label = "Continue"
    else:
        message = "This checkout session has expired."
        link = session.get("cancel_url")
        label = f"Back to {account_name}"
    action = f'<p><a href="{escape(link)}">{escape(label)}</a></p>' if link else ""
    return page(
        "Checkout", f"<div class=wrap><div class='col card'><h1>{escape(message)}</h1>{action}</div></div>", 410
    )


def thanks(account_name: str) -> tuple[int, str]:
    body = (
        f"<div class=wrap><div class='col card'><h1>Thanks for your payment to {escape(account_name)}.</h1></div></div>"
    )
    return page("Payment complete", body)


# --- Connect OAuth ------------------------------------------------------------------------
def authorize(*, query: str, accounts: list[JSON], values: dict[str, str], errors: dict[str, str]) -> tuple[int, str]:
    options = []
    selected = values.get("account", "new")
    for account in accounts:
        account_id = escape(account["id"])
        name = escape(account["business_profile"].get("name") or account["id"])
        state = "" if account["charges_enabled"] else " (needs verification)"
        checked = " checked" if selected == account["id"] else ""
        options.append(
            f'<div class=choice><input type=radio id="account-{account_id}" name=account '
            f'value="{account_id}"{checked}> '
            f'<label for="account-{account_id}">{name} ({account_id}){escape(state)}</label></div>'
        )
    checked_new = " checked" if selected == "new" else ""
    verification = " checked" if values.get("needs_verification") else ""
    error = errors.get("__all__")
    body = f"""
<div class=wrap><div class=col>
 <h1>Sandbox platform would like to connect to your Stripe account<span class=badge>TEST MODE</span></h1>
 <form class=card method=post action="/oauth/authorize?{escape(query)}">
  <fieldset><legend>Choose an account</legend>
   {"".join(options)}
   <div class=choice><input type=radio id=account-new name=account value=new{checked_new}>
    <label for=account-new>Create a new account</label></div>
  </fieldset>
  {_field("business_name", "Business name", values.get("business_name", ""), errors)}
  {_field("email", "Account email", values.get("email", ""), errors)}
  <div class=choice><input type=checkbox id=needs_verification name=needs_verification value=1{verification}>
   <label for=needs_verification>The new account still needs verification (charges not enabled)</label></div>
  {f'<div class="alert" role="alert">{escape(error)}</div>' if error else ""}
  <button type=submit name=decision value=connect>Connect</button>
  <button type=submit name=decision value=deny class=secondary>Deny</button>
 </form>
</div></div>"""
    return page("Connect with Stripe", body, 400 if errors else 200)


def oauth_error(message: str) -> tuple[int, str]:
    return page(
        "Connect with Stripe", f"<div class=wrap><div class='col card'><h1>{escape(message)}</h1></div></div>", 400
    )


# --- Billing portal -----------------------------------------------------------------------
def portal(
    session: JSON,
    *,
    account_name: str,
    customer: JSON,
    configuration: JSON,
    subscriptions: list[JSON],
    invoices: list[tuple[JSON, str]],
    card: JSON | None,
    notice: str = "",
    alert: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> tuple[int, str]:
    """The portal as the session's configuration sets it up: *Cancel plan* (at period end or at
    once), *Update card* and the invoice history each only when its feature is enabled.
    ``invoices`` pairs each invoice with the status shown for it."""
    values = values or {}
    errors = errors or {}
    features = configuration.get("features") or {}
    cancel = features.get("subscription_cancel") or {}
    can_cancel = bool(cancel.get("enabled"))
    cancel_label = "Cancel plan now" if cancel.get("mode") == "immediately" else "Cancel plan"
    rows = []
    for subscription in subscriptions:
        item = subscription["items"]["data"][0]
        price = item["price"]
        period_end = int(item["current_period_end"])
        status = subscription["status"]
        hidden = f'<input type=hidden name=subscription value="{escape(subscription["id"])}">'
        action = ""
        if subscription["cancel_at_period_end"]:
            status = f"cancels on {format_date(period_end)}"
            action = (
                f"<form method=post>{hidden}"
                "<button type=submit name=action value=renew class=secondary>Renew plan</button></form>"
            )
        elif can_cancel and subscription["status"] in CANCELABLE:
            action = (
                f"<form method=post>{hidden}<button type=submit name=action value=cancel class=secondary>"
                f"{cancel_label}</button></form>"
            )
        amount = format_amount(int(price["unit_amount"]), price["currency"])
        rows.append(
            f"<tr><td>{escape(amount)} {escape(describe_interval(price['recurring']))}</td><td>{escape(status)}</td>"
            f"<td data-period-end={period_end}>{escape(format_date(period_end))}</td><td>{action}</td></tr>"
        )
    table = (
        "<table><tr><th>Plan</th><th>Status</th><th>Current period ends</th><th></th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p class=muted>No subscriptions.</p>"
    )
    back = (
        f'<p><a href="{escape(session["return_url"])}">← Return to {escape(account_name)}</a></p>'
        if session.get("return_url")
        else ""
    )
    headline = (configuration.get("business_profile") or {}).get("headline")
    tagline = f"<p>{escape(headline)}</p>" if headline else ""
    shown = f'<div class="notice" role="status">{escape(notice)}</div>' if notice else ""
    if alert:
        shown += f'<div class="alert" role="alert">{escape(alert)}</div>'
    on_file = ""
    if card:
        on_file = (
            f"<p data-card-last4={escape(str(card['last4']))}>{escape(str(card['brand']).title())} •••• "
            f"{escape(str(card['last4']))}, expires {int(card['exp_month']):02d}/{int(card['exp_year'])}</p>"
        )
    payment = f'<div class=card style="margin-top:24px"><h1>Payment method</h1>{on_file}</div>' if on_file else ""
    if (features.get("payment_method_update") or {}).get("enabled"):
        payment = f"""
 <form class=card method=post novalidate style="margin-top:24px">
  <h1>Payment method</h1>
  {on_file}
  {_field("card_number", "Card number", values.get("card_number", ""), errors, placeholder="1234 1234 1234 1234")}
  <div class=row>
   <div>{_field("expiry", "Expiry", values.get("expiry", ""), errors, placeholder="MM / YY")}</div>
   <div>{_field("cvc", "CVC", values.get("cvc", ""), errors, placeholder="CVC")}</div>
  </div>
  {_field("name", "Name on card", values.get("name", ""), errors)}
  <button type=submit name=action value=card>Update card</button>
  <div class=hint>{TEST_CARDS_HINT}</div>
 </form>"""
    history = ""
    if (features.get("invoice_history") or {}).get("enabled"):
        invoice_rows = "".join(
            f'<tr data-invoice="{escape(invoice["id"])}"><td>{escape(format_date(int(invoice["created"])))}</td>'
            f"<td>{escape(format_amount(int(invoice['total']), invoice['currency']))}</td>"
            f"<td>{escape(label)}</td></tr>"
            for invoice, label in invoices
        )
        history = (
            '<div class=card style="margin-top:24px"><h1>Invoice history</h1>'
            + (
                f"<table><tr><th>Date</th><th>Amount</th><th>Status</th></tr>{invoice_rows}</table>"
                if invoice_rows
                else "<p class=muted>No invoices.</p>"
            )
            + "</div>"
        )
    body = f"""
<div class=wrap><div class=col>
 {back}
 <h1>{escape(account_name)} billing<span class=badge>TEST MODE</span></h1>
 {tagline}
 <p class=muted>{escape(customer.get("email") or "")}</p>
 {shown}
 <div class=card>{table}</div>
 {payment}
 {history}
</div></div>"""
    return page("Billing portal", body, 400 if errors or alert else 200)


# --- Index --------------------------------------------------------------------------------
def index(*, now: int, accounts: list[JSON], deliveries: list[str], webhook_url: str) -> tuple[int, str]:
    account_rows = "".join(
        f"<tr><td>{escape(a['id'])}</td><td>{escape(a['business_profile'].get('name') or '')}</td>"
        f"<td>{'yes' if a['charges_enabled'] else 'needs verification'}</td></tr>"
        for a in accounts
    )
    delivery_rows = "".join(f"<tr><td>{escape(line)}</td></tr>" for line in deliveries[-30:][::-1])
    body = f"""
<div class=wrap><div class=col>
 <h1>Offline Stripe sandbox<span class=badge>TEST MODE</span></h1>
 <p>Clock: {escape(format_date(now))} ({now}). Webhooks go to <code>{escape(webhook_url or "nowhere")}</code>.</p>
 <div class=hint>{TEST_CARDS_HINT}</div>
 <h1 style="margin-top:24px">Accounts</h1>
 <div class=card><table><tr><th>Id</th><th>Name</th><th>Charges</th></tr>{account_rows}</table></div>
 <h1 style="margin-top:24px">Recent webhook deliveries</h1>
 <div class=card><table>{delivery_rows or "<tr><td>None yet.</td></tr>"}</table></div>
</div></div>"""
    return page("Stripe sandbox", body)
