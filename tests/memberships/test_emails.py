from __future__ import annotations

import pytest

from memberships.emails import DEFAULT_BODY, DEFAULT_SUBJECT, render_confirmation, unknown_placeholders

VALUES = {
    "buyer_name": 'Ann "<b>"',
    "offer_title": "Yoga & Co",
    "login_link": "https://club.example/accounts/login-link/abc/?a=1&b=2",
    "community_url": "https://club.example/home/",
}


def test_blank_wording_falls_back_to_the_default() -> None:
    email = render_confirmation(subject="  ", body="", values=VALUES)
    assert email.subject == "You're in: Yoga & Co"
    assert email.text.startswith('Hi Ann "<b>",')
    assert VALUES["login_link"] in email.text
    assert "{{" in DEFAULT_BODY
    assert "{{" in DEFAULT_SUBJECT


def test_the_html_part_escapes_the_creators_text_and_every_value() -> None:
    email = render_confirmation(
        subject="Hi", body="<img src=x onerror=alert(1)> {{ buyer_name }}\n\nGo: {{ login_link }}", values=VALUES
    )
    assert "<img" not in email.html
    assert "&lt;img src=x onerror=alert(1)&gt; Ann &quot;&lt;b&gt;&quot;" in email.html
    assert (
        '<a href="https://club.example/accounts/login-link/abc/?a=1&amp;b=2">'
        "https://club.example/accounts/login-link/abc/?a=1&amp;b=2</a>" in email.html
    )
    assert email.html.count("<p>") == 2


def test_a_subject_stays_on_one_line() -> None:
    assert render_confirmation(subject="A\nB {{offer_title}}", body="x", values=VALUES).subject == "A B Yoga & Co"


def test_unknown_placeholders_are_named() -> None:
    assert unknown_placeholders("{{ buyer_name }} {{ nope }} {{nope}} {{ Other }}") == ["Other", "nope"]


def _sent(values: dict[str, str]) -> tuple[str, str]:
    """The text and HTML parts the buyer receives, through the offer_confirmation templates."""
    from accounts.mail import render_email

    rendered = render_confirmation(subject="", body="", values=values)
    _subject, text, html = render_email("offer_confirmation", rendered.__dict__)
    assert html is not None
    return text, html


def test_a_paid_confirmation_states_the_amount_the_interval_and_the_next_payment() -> None:
    terms = {
        "amount_paid": "$25.00",
        "interval_label": "Monthly",
        "next_payment_date": "Jan 1, 2027",
        "memberships_url": "https://club.example/account/memberships/",
    }
    text, html = _sent({**VALUES, **terms})
    assert "Amount paid: $25.00\nBilling: Monthly\nNext payment: Jan 1, 2027" in text
    assert "Your memberships and receipts: https://club.example/account/memberships/" in text
    assert "<strong>$25.00</strong>" in html
    assert "Jan 1, 2027" in html
    assert '<a href="https://club.example/account/memberships/">My memberships</a>' in html


def test_a_one_time_confirmation_has_no_interval_or_next_payment() -> None:
    text, html = _sent({**VALUES, "amount_paid": "$50.00", "interval_label": "", "next_payment_date": ""})
    assert "Amount paid: $50.00" in text
    assert "Billing:" not in text
    assert "Next payment" not in text + html


def test_a_free_confirmation_states_no_terms() -> None:
    text, html = _sent({**VALUES, "memberships_url": "https://club.example/account/memberships/"})
    assert "Amount paid" not in text + html
    assert "Next payment" not in text + html
    assert "https://club.example/account/memberships/" in text


@pytest.mark.django_db
def test_the_confirmation_of_a_free_claim_states_no_terms(django_capture_on_commit_callbacks) -> None:
    from django.core import mail

    from memberships.services import offer_claim_free
    from tests import factories

    offer = factories.offer("Free Circle")
    with django_capture_on_commit_callbacks(execute=True):
        offer_claim_free(offer=offer, email="bea@example.com", full_name="Bea Buyer")
    [message] = mail.outbox
    assert "Thank you for joining Free Circle." in message.body
    assert "Amount paid" not in message.body
    assert "Next payment" not in message.body
