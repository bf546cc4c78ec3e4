"""Connected Stripe accounts (the creator's, and partners'): Connect OAuth, refreshes and
disconnection."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing import stripe_gateway as gateway
from billing.models import StripeAccount

logger = logging.getLogger(__name__)


class StripeAccountTaken(Exception):
    """The Stripe account is already connected here for another purpose or another person."""


@transaction.atomic
def stripe_account_connect(
    *,
    status: gateway.AccountStatus,
    by: User,
    purpose: StripeAccount.Purpose = StripeAccount.Purpose.CREATOR,
) -> StripeAccount:
    """Record a newly connected account, replacing the one connected before (if any) for the
    same purpose: the creator's, or ``by``'s own partner account.

    Raises ``StripeAccountTaken`` when that Stripe account is connected here already as
    someone else's (a partner connecting the creator's account, or another partner's).
    """
    now = timezone.now()
    owner = by if purpose == StripeAccount.Purpose.PARTNER else None
    accounts = StripeAccount.objects.select_for_update()
    current = accounts.partner_of(by.pk) if owner is not None else accounts.creator()
    replaced = list(current.values_list("pk", flat=True))
    if accounts.connected().filter(account_id=status.account_id).exclude(pk__in=replaced).exists():
        raise StripeAccountTaken(status.account_id)
    StripeAccount.objects.filter(pk__in=replaced).update(disconnected_at=now, disconnected_by=by)
    return StripeAccount.objects.create(
        purpose=purpose,
        owner=owner,
        account_id=status.account_id,
        livemode=status.livemode,
        charges_enabled=status.charges_enabled,
        payouts_enabled=status.payouts_enabled,
        details_submitted=status.details_submitted,
        display_name=status.display_name[:255],
        connected_at=now,
        connected_by=by,
        refreshed_at=now,
    )


def stripe_account_connect_from_stripe(
    *, code: str, by: User, purpose: StripeAccount.Purpose = StripeAccount.Purpose.CREATOR
) -> StripeAccount:
    """Finish Connect OAuth: exchange the code, read the account, record it.

    Not atomic: Stripe is called first. Raises the gateway's errors (``StripeOAuthFailed``
    when Stripe refuses the code) and ``StripeAccountTaken``.
    """
    account_id = gateway.oauth_token(code=code)
    status = gateway.account_retrieve(account_id=account_id)
    return stripe_account_connect(status=status, by=by, purpose=purpose)


class ConnectRefused(Exception):
    """Stripe's OAuth answer connected nothing; the message says why, in a person's words."""


def stripe_account_connect_from_answer(
    *, params: Mapping[str, str], by: User, purpose: StripeAccount.Purpose, retry: str, taken: str
) -> StripeAccount:
    """Finish Connect OAuth from the query string Stripe sent back (after the caller checked its
    state): the creator's and the partners' return pages share it. ``retry`` names the button
    that starts again; ``taken`` says why an account connected by someone else is refused.
    Raises ``ConnectRefused`` with the message to show; nothing is connected then."""
    error = params.get("error", "")
    if error == "access_denied":
        raise ConnectRefused(
            f"You declined the connection in Stripe, so nothing was connected. Click {retry} when you're ready."
        )
    if error:
        description = params.get("error_description", "") or error
        raise ConnectRefused(f"Stripe could not connect the account: {description}. Click {retry} to try again.")
    code = params.get("code", "")
    if not code:
        raise ConnectRefused(f"Stripe sent no authorization code back. Click {retry} to try again.")
    try:
        return stripe_account_connect_from_stripe(code=code, by=by, purpose=purpose)
    except gateway.StripeOAuthFailed as exc:
        logger.warning("Stripe OAuth token exchange failed (%s): %s", purpose, exc)
        raise ConnectRefused(
            "Stripe refused to complete the connection (the authorization may have expired or already been "
            f"used). Nothing was connected. Click {retry} to try again."
        ) from exc
    except gateway.StripeGatewayError as exc:
        logger.warning("Stripe connect failed (%s): %s", purpose, exc)
        raise ConnectRefused(f"Stripe could not be connected. {exc.user_message}") from exc
    except StripeAccountTaken as exc:
        raise ConnectRefused(taken) from exc


@transaction.atomic
def stripe_account_update(*, account_id: str, status: gateway.AccountStatus) -> int:
    """Store the account's current capabilities (after a refresh or an ``account.updated``)."""
    return (
        StripeAccount.objects.connected()
        .filter(account_id=account_id)
        .update(
            livemode=status.livemode,
            charges_enabled=status.charges_enabled,
            payouts_enabled=status.payouts_enabled,
            details_submitted=status.details_submitted,
            display_name=status.display_name[:255],
            refreshed_at=timezone.now(),
        )
    )


@transaction.atomic
def stripe_account_disconnect(*, account_id: str, by: User | None) -> int:
    return (
        StripeAccount.objects.connected()
        .filter(account_id=account_id)
        .update(disconnected_at=timezone.now(), disconnected_by=by)
    )


def stripe_account_disconnect_from_stripe(*, account_id: str, by: User) -> int:
    """Revoke the platform's access on Stripe, then record the disconnection.

    Not atomic: Stripe is called first. When Stripe no longer knows the connection (it was
    already revoked from the Stripe dashboard) the account is disconnected here too; any other
    failure is raised and nothing changes.
    """
    try:
        gateway.oauth_deauthorize(account_id=account_id)
    except gateway.StripeOAuthFailed as exc:
        logger.info("Stripe deauthorize: %s", exc)
    return stripe_account_disconnect(account_id=account_id, by=by)


def stripe_account_refresh_from_stripe(*, account_id: str) -> gateway.AccountStatus:
    status = gateway.account_retrieve(account_id=account_id)
    stripe_account_update(account_id=account_id, status=status)
    return status
