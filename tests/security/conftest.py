"""The security tests request every page, staff buttons included: none of them may reach Stripe."""

from __future__ import annotations

import pytest
import stripe

from billing import stripe_gateway as gateway


@pytest.fixture(autouse=True)
def _stripe_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Stripe call fails at once as unreachable (the gateway's StripeUnavailable)."""

    def offline() -> None:
        raise stripe.APIConnectionError("Stripe is offline in the security tests")

    monkeypatch.setattr(gateway, "client", offline)
