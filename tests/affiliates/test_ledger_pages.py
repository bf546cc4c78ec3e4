"""The commission ledger on the pages: the partner's own figures on Become a Partner, and the
creator's per partner, per offer and in total on the Affiliates page; the message to a partner
whose account cannot be paid, a refused transfer told to the creator, and Stop commissions.

The ledger is made of rows written here directly (the flows that write them have their own
tests, tests/affiliates/test_commissions.py), so every figure is known in advance."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import dateformat, timezone

from accounts.models import OutboxMessage
from affiliates.models import Attribution, Commission, Partner, ReferralLink
from billing.models import CheckoutAttempt, Payment, StripeAccount, StripeSubscription
from memberships.models import Offer
from tests import factories
from tests.affiliates.conftest import partner_account, resell_offer
from tests.billing.helpers import ACCOUNT_ID

pytestmark = pytest.mark.django_db

DASHBOARD = "/dashboard/affiliates/"
PARTNERS = "/partners/"
REFUSAL = "Stripe refused the transfer: the platform's balance is too low. Insufficient funds in the balance."
_numbers = itertools.count(1)


# --- Reading the pages --------------------------------------------------------------------------
class _Tables(HTMLParser):
    """Every ``<table>`` with an ``aria-label``: its body's rows, each a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            label = dict(attrs).get("aria-label")
            self._table = self.tables.setdefault(label, []) if label else None
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table is not None and self._in_body:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def cents(label: str) -> int:
    """``$1,234.50`` (or ``-€5.00``) back to minor units."""
    found = re.fullmatch(r"(-?)\D*([\d,]+)\.(\d\d)", label)
    assert found, label
    sign = -1 if found.group(1) else 1
    return sign * (int(found.group(2).replace(",", "")) * 100 + int(found.group(3)))


def day(moment: datetime) -> str:
    return dateformat.format(timezone.localtime(moment), "M j, Y")


def text(page: str) -> str:
    """The page's text as a person reads it: tags dropped, spaces collapsed."""
    inline = re.sub(r"</?(?:strong|em|span|code|a|b)\b[^>]*>", "", page)
    return " ".join(re.sub(r"<[^>]+>", " ", inline).replace("&#x27;", "'").split())


# --- A known ledger -----------------------------------------------------------------------------
def commission(link: ReferralLink, *, amount: int, paid_days_ago: float = 1, **fields: Any) -> Commission:
    """A referred one-time payment of 50.00 in the offer's currency, with its commission row."""
    number = next(_numbers)
    attempt = factories.checkout_attempt(link.offer, email=f"buyer{number}@example.com", browser_key=f"key{number}")
    CheckoutAttempt.objects.filter(pk=attempt.pk).update(status=CheckoutAttempt.Status.PAID)
    attribution = Attribution.objects.create(attempt=attempt, link=link, commission_percent=20)
    paid_at = timezone.now() - timedelta(days=paid_days_ago)
    payment = Payment.objects.create(
        stripe_object_id=f"pi_ledger_{number}",
        kind=Payment.Kind.ONE_TIME,
        stripe_account_id=ACCOUNT_ID,
        amount=5000,
        currency=link.offer.currency,
        user=get_user_model().objects.create_user(f"buyer{number}@example.com"),
        offer=link.offer,
        attempt=attempt,
        application_fee_amount=amount,
        paid_at=paid_at,
    )
    return Commission.objects.create(
        payment=payment,
        partner=link.partner,
        attribution=attribution,
        currency=link.offer.currency,
        amount=amount,
        hold_until=paid_at + timedelta(days=14),
        **fields,
    )


def paid(**fields: Any) -> dict[str, Any]:
    return {"transfer_id": f"tr_{next(_numbers)}", "destination": "acct_1Partner", "paid_at": timezone.now(), **fields}


@dataclass
class Ledger:
    pat: Partner
    quinn: Partner
    inner_circle: Offer
    euro_club: Offer
    pat_link: ReferralLink
    pending: Commission
    partly_reversed: Commission
    refused: Commission


@pytest.fixture
def ledger(link: ReferralLink, stripe_account: StripeAccount) -> Ledger:
    """Pat (20% of Inner Circle, in dollars) has a commission in every state; Quinn has one
    in dollars and two in euros on Euro Club, one of which Stripe refused to transfer."""
    pat_link = link
    euro_club = resell_offer(title="Euro Club", slug="euro-club")
    Offer.objects.filter(pk=euro_club.pk).update(currency="eur")
    euro_club.refresh_from_db()
    quinn_user = get_user_model().objects.create_user(
        "quinn@example.com", full_name="Quinn Partner", email_verified_at=timezone.now()
    )
    partner_account(quinn_user, account_id="acct_1Quinn")
    quinn = Partner.objects.create(user=quinn_user, joined_at=timezone.now() - timedelta(days=1))
    quinn_dollars = ReferralLink.objects.create(partner=quinn, offer=pat_link.offer)
    quinn_euros = ReferralLink.objects.create(partner=quinn, offer=euro_club)

    pending = commission(pat_link, amount=1000, paid_days_ago=2)  # held for 12 more days
    commission(pat_link, amount=1000, paid_days_ago=20, **paid(transferred=1000))
    partly_reversed = commission(
        pat_link, amount=1000, paid_days_ago=30, amount_reversed=400, **paid(transferred=1000, transfer_reversed=400)
    )
    commission(pat_link, amount=1000, paid_days_ago=3, amount_reversed=1000)  # refunded within the hold
    commission(pat_link, amount=1000, paid_days_ago=5, frozen=True)  # disputed: its hold ends first
    # Paid, then half refunded: the transfer reversal is on its way, so 5.00 is owed back.
    commission(pat_link, amount=1000, paid_days_ago=40, amount_reversed=500, **paid(transferred=1000))

    commission(quinn_dollars, amount=250, paid_days_ago=5)
    commission(quinn_euros, amount=700, paid_days_ago=4)
    refused = commission(
        quinn_euros,
        amount=300,
        paid_days_ago=16,
        attempts=2,
        last_error=REFUSAL,
        last_error_at=timezone.now() - timedelta(minutes=5),
        next_attempt_at=timezone.now() + timedelta(minutes=15),
    )
    return Ledger(
        pat=pat_link.partner,
        quinn=quinn,
        inner_circle=pat_link.offer,
        euro_club=euro_club,
        pat_link=pat_link,
        pending=pending,
        partly_reversed=partly_reversed,
        refused=refused,
    )


def figures_in_db(rows: Any) -> dict[str, list[int]]:
    """[payments, earned, pending, paid, reversed] per currency, from the rows one by one."""
    found: dict[str, list[int]] = {}
    for row in rows:
        sums = found.setdefault(row.currency, [0, 0, 0, 0, 0])
        for index, value in enumerate([1, row.amount, row.pending, row.paid, row.amount_reversed]):
            sums[index] += value
    return found


def figures_on_page(rows: list[list[str]]) -> dict[str, list[int]]:
    """The same, read back from a table of Currency | Payments | Earned | Pending | Paid | Reversed."""
    found = {}
    for row in rows:
        earned, pending, paid_, reversed_ = (cents(cell) for cell in row[2:6])
        assert pending + paid_ + reversed_ == earned, row  # the figures add up on the page
        found[row[0].lower()] = [int(row[1]), earned, pending, paid_, reversed_]
    return found


# --- The creator's Affiliates page ----------------------------------------------------------------
def test_the_creator_sees_the_ledger_in_total_per_offer_and_per_partner(client, owner, ledger) -> None:
    client.force_login(owner)
    page = client.get(DASHBOARD).content.decode()
    found = tables(page)

    # In total, one line per currency: dollars and euros are never added together.
    assert found["Commission totals"] == [
        ["EUR", "2", "€10.00", "€10.00", "€0.00", "€0.00"],
        ["USD", "7", "$62.50", "$17.50", "$26.00", "$19.00"],
    ]
    assert figures_on_page(found["Commission totals"]) == figures_in_db(Commission.objects.all())
    assert found["Commissions by offer"] == [
        ["Euro Club", "2", "€10.00", "€10.00", "€0.00", "€0.00"],
        ["Inner Circle", "7", "$62.50", "$17.50", "$26.00", "$19.00"],
    ]

    # Per partner, with the next payout: the end of the earliest hold of what is owed
    # (Pat's disputed commission is frozen, Quinn's euro hold is over, so due now).
    pat = found["Commissions of pat@example.com"]
    assert [row[:6] for row in pat] == [["USD", "6", "$60.00", "$15.00", "$26.00", "$19.00"]]
    assert pat[0][6] == day(ledger.pending.hold_until)
    assert figures_on_page(pat) == figures_in_db(Commission.objects.filter(partner=ledger.pat))
    quinn = found["Commissions of quinn@example.com"]
    quinn_dollars = Commission.objects.get(partner=ledger.quinn, currency="usd")
    assert quinn == [
        ["EUR", "2", "€10.00", "€10.00", "€0.00", "€0.00", "due now"],
        ["USD", "1", "$2.50", "$2.50", "$0.00", "$0.00", day(quinn_dollars.hold_until)],
    ]
    assert figures_on_page(quinn) == figures_in_db(Commission.objects.filter(partner=ledger.quinn))


def test_a_transfer_stripe_refused_shows_the_reason_and_the_next_try(client, owner, ledger) -> None:
    client.force_login(owner)
    page = text(client.get(DASHBOARD).content.decode())
    assert "Stripe refused 1 transfer to partners. Each is tried again on its own" in page
    next_try = dateformat.format(timezone.localtime(ledger.refused.next_attempt_at), "M j, Y, H:i T")
    assert (
        f"Stripe refused 1 transfer to this partner. Nothing was paid for it yet; each is tried again on its own, "
        f"waiting longer after each refusal. €3.00 for Euro Club (payment of {day(ledger.refused.payment.paid_at)}): "
        f"{REFUSAL} Next try on {next_try} (2 refusals so far)."
    ) in page

    # Once the transfer is made, the warning goes.
    Commission.objects.filter(pk=ledger.refused.pk).update(last_error="", next_attempt_at=None, **paid(transferred=300))
    page = text(client.get(DASHBOARD).content.decode())
    assert "Stripe refused" not in page
    assert REFUSAL not in page


def test_no_commissions_yet_shows_no_ledger(client, owner, link) -> None:
    client.force_login(owner)
    page = client.get(DASHBOARD).content.decode()
    assert "Commission totals" not in page
    assert "Pat Partner" in page
    assert ">Stop commissions</button>" in page


# --- The partner's own page -------------------------------------------------------------------------
def test_the_partner_sees_their_links_totals_next_payout_and_recent_commissions(client, partner_user, ledger) -> None:
    client.force_login(partner_user)
    page = client.get(PARTNERS).content.decode()
    words = text(page)
    # Totals: pending, paid, reversed, and what they add up to.
    assert "$15.00 pending $26.00 paid $19.00 reversed $60.00 earned (6 payments)" in words
    assert f"Next payout: {day(ledger.pending.hold_until)}." in words
    assert "Quinn" not in words  # only their own commissions
    assert "€" not in words

    # Per link: its clicks, sales (paid checkouts) and commissions.
    found = tables(page)
    assert found["Commissions per link"] == [["Inner Circle", "0", "6", "$15.00", "$26.00", "$19.00"]]

    # The latest commissions, newest payment first, each with its status and what was
    # reversed of it.
    by_date = Commission.objects.filter(partner=ledger.pat).order_by("-payment__paid_at")
    assert found["Recent commissions"] == [
        [day(row.payment.paid_at), "Inner Circle", amount, status]
        for row, (amount, status) in zip(
            by_date,
            [
                ("$10.00", f"Pending until {day(ledger.pending.hold_until)}"),
                ("$10.00", "Reversed"),  # refunded within the hold
                ("$10.00", "Frozen (disputed)"),
                ("$10.00", "Paid"),
                ("$10.00 ($4.00 reversed)", "Paid"),
                ("$10.00 ($5.00 reversed)", "Paid"),  # refunded after the payout
            ],
            strict=True,
        )
    ]


def test_a_partner_without_commissions_sees_none(client, partner_user, link) -> None:
    client.force_login(partner_user)
    words = text(client.get(PARTNERS).content.decode())
    assert "No commissions yet." in words
    assert "No payout is due." in words
    assert "Your commissions are waiting" not in words


def test_a_disconnected_partner_with_pending_commissions_is_told_to_reconnect(client, partner_user, ledger) -> None:
    StripeAccount.objects.filter(owner=partner_user).update(disconnected_at=timezone.now())
    client.force_login(partner_user)
    page = client.get(PARTNERS).content.decode()
    words = text(page)
    assert "Your commissions are waiting: reconnect your Stripe account to get paid." in words
    [alert] = re.findall(r'<div class="message message-warning" role="alert">(.*?)</div>', page, re.S)
    assert 'action="/partners/stripe/connect/"' in alert
    assert ">Connect Stripe</button>" in alert


def test_an_account_that_cannot_receive_payouts_is_explained(client, partner_user, ledger) -> None:
    StripeAccount.objects.filter(owner=partner_user).update(payouts_enabled=False)
    client.force_login(partner_user)
    words = text(client.get(PARTNERS).content.decode())
    assert "Your commissions are waiting: your Stripe account cannot receive payouts yet." in words
    assert "reconnect your Stripe account" not in words


def test_nothing_waiting_means_no_message_even_when_disconnected(client, partner_user, link) -> None:
    commission(link, amount=500, **paid(transferred=500))
    StripeAccount.objects.filter(owner=partner_user).update(disconnected_at=timezone.now())
    client.force_login(partner_user)
    words = text(client.get(PARTNERS).content.decode())
    assert "Your commissions are waiting" not in words
    assert "$5.00 paid" in words


# --- Stop commissions -------------------------------------------------------------------------------
def _subscription(link: ReferralLink, status: str) -> StripeSubscription:
    row = commission(link, amount=500)
    now = timezone.now()
    return StripeSubscription.objects.create(
        subscription_id=f"sub_{row.pk}",
        stripe_account_id=ACCOUNT_ID,
        customer_id=f"cus_{row.pk}",
        user=row.payment.user,
        offer=link.offer,
        attempt=row.payment.attempt,
        status=status,
        created=now,
        synced_at=now,
    )


def _stop_url(partner: Partner) -> str:
    return f"/dashboard/affiliates/partners/{partner.pk}/commissions/stop/"


def test_stop_commissions_asks_first_then_stops_every_live_referred_subscription(client, owner, link) -> None:
    live = [_subscription(link, "active"), _subscription(link, "past_due")]
    _subscription(link, "canceled")
    client.force_login(owner)

    asked = client.post(_stop_url(link.partner))
    assert asked.status_code == 409
    words = text(asked.content.decode())
    assert "Stop commissions for pat@example.com?" in words
    assert "pay them no more commission from their next invoice on. 2 referred subscriptions are running now." in words
    assert Partner.objects.get().commissions_stopped_at is None
    assert not OutboxMessage.objects.filter(key__startswith="commission-stop:").exists()

    done = client.post(_stop_url(link.partner), {"confirm": "yes"}, follow=True)
    assert done.redirect_chain == [(DASHBOARD, 302)]
    words = text(done.content.decode())
    assert (
        "Commissions stopped for pat@example.com: 2 referred subscriptions pay no commission from their next invoice."
        in words
    )
    stopped_at = Partner.objects.get().commissions_stopped_at
    assert stopped_at is not None
    assert f"Commissions stopped on {day(stopped_at)}" in words
    assert ">Stop commissions</button>" not in done.content.decode()
    assert sorted(OutboxMessage.objects.filter(key__startswith="commission-stop:").values_list("key", flat=True)) == [
        f"commission-stop:{subscription.subscription_id}" for subscription in live
    ]

    # Again: nothing more is recorded, and the creator is told.
    again = client.post(_stop_url(link.partner), {"confirm": "yes"}, follow=True)
    assert f"Commissions for pat@example.com were already stopped on {day(stopped_at)}." in text(again.content.decode())
    assert OutboxMessage.objects.filter(key__startswith="commission-stop:").count() == 2
    assert Partner.objects.get().commissions_stopped_at == stopped_at

    # The partner reads it on their own page.
    client.force_login(link.partner.user)
    assert f"The creator stopped your commissions on {day(stopped_at)}" in text(client.get(PARTNERS).content.decode())


def test_a_removed_partner_can_still_have_their_commissions_stopped(client, owner, link) -> None:
    _subscription(link, "active")
    Partner.objects.filter(pk=link.partner_id).update(status=Partner.Status.REMOVED)
    client.force_login(owner)
    page = client.get(DASHBOARD).content.decode()
    assert ">Remove</button>" not in page
    assert ">Stop commissions</button>" in page
    client.post(_stop_url(link.partner), {"confirm": "yes"})
    assert OutboxMessage.objects.filter(key=f"commission-stop:sub_{Commission.objects.get().pk}").exists()


@pytest.mark.parametrize("confirm", ["no", "", "x" * 5000])
def test_stop_without_the_confirmation_changes_nothing(client, owner, link, confirm) -> None:
    _subscription(link, "active")
    client.force_login(owner)
    assert client.post(_stop_url(link.partner), {"confirm": confirm}).status_code == 409
    assert Partner.objects.get().commissions_stopped_at is None
    assert not OutboxMessage.objects.filter(key__startswith="commission-stop:").exists()


def test_only_staff_can_stop_commissions(client, link, outsider) -> None:
    _subscription(link, "active")
    client.force_login(link.partner.user)
    assert client.post(_stop_url(link.partner), {"confirm": "yes"}).status_code == 403
    client.force_login(outsider)
    assert client.post(_stop_url(link.partner), {"confirm": "yes"}).status_code == 403
    client.logout()
    assert client.post(_stop_url(link.partner), {"confirm": "yes"}).status_code == 302
    assert client.get(_stop_url(link.partner)).status_code == 302
    assert Partner.objects.get().commissions_stopped_at is None
    assert not OutboxMessage.objects.exists()


def test_stopping_an_unknown_partner_is_a_404(client, owner, stripe_account) -> None:
    client.force_login(owner)
    assert client.post("/dashboard/affiliates/partners/999999/commissions/stop/", {"confirm": "yes"}).status_code == 404


# --- Queries ------------------------------------------------------------------------------------------
def _partners(count: int, offers: list[Offer]) -> None:
    """``count`` partners, each with a link to every offer and a commission on each: paid,
    pending, and one refused transfer per partner."""
    for index in range(count):
        user = get_user_model().objects.create_user(f"partner{index}@example.com", full_name=f"Partner {index}")
        partner = Partner.objects.create(user=user)
        for number, offer in enumerate(offers):
            link = ReferralLink.objects.create(partner=partner, offer=offer)
            commission(link, amount=100 + index, **paid(transferred=100 + index))
            if number == 0:
                commission(link, amount=50, attempts=1, last_error=REFUSAL, next_attempt_at=timezone.now())
            else:
                commission(link, amount=75)


# The user, the programs' count, the partners and their links, and the ledger: per partner,
# per offer, in total, and the refused transfers.
QUERIES = 8


@pytest.mark.parametrize("partners", [3, 30])
def test_the_creator_page_runs_the_same_queries_for_3_and_30_partners(
    client, owner, stripe_account, django_assert_num_queries, partners
) -> None:
    offers = [resell_offer(title="Inner Circle"), resell_offer(title="Euro Club")]
    Offer.objects.filter(pk=offers[1].pk).update(currency="eur")
    offers[1].refresh_from_db()
    _partners(partners, offers)
    client.force_login(owner)
    with django_assert_num_queries(QUERIES):
        page = client.get(DASHBOARD).content.decode()
    assert page.count("Stripe refused 1 transfer to this partner.") == partners
    assert page.count(">Stop commissions</button>") == partners


def test_the_partner_page_runs_the_same_queries_however_many_commissions(
    client, partner_user, link, django_assert_max_num_queries
) -> None:
    client.force_login(partner_user)
    with django_assert_max_num_queries(30) as few:
        client.get(PARTNERS)
    for _ in range(12):
        commission(link, amount=100)
    with django_assert_max_num_queries(len(few)):
        words = text(client.get(PARTNERS).content.decode())
    assert "$12.00 pending" in words


def test_a_refused_transfer_no_longer_owed_is_not_shown(client, owner, ledger) -> None:
    Commission.objects.filter(pk=ledger.refused.pk).update(amount_reversed=300)  # refunded meanwhile
    client.force_login(owner)
    assert "Stripe refused" not in client.get(DASHBOARD).content.decode()


def test_switched_off_stop_commissions_is_not_there(client, owner, link, settings) -> None:
    _subscription(link, "active")
    settings.AFFILIATES_ENABLED = False
    client.force_login(owner)
    assert client.post(_stop_url(link.partner), {"confirm": "yes"}).status_code == 404
    assert Partner.objects.get().commissions_stopped_at is None
    assert not OutboxMessage.objects.exists()
