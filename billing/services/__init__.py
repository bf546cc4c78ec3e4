"""Writes for billing, one module per concern: ``connect`` (the connected Stripe account),
``catalog`` (offers' products and prices on Stripe), ``checkout`` (attempts and Checkout
Sessions), ``fulfilment`` (a payment becomes an entitlement) and ``webhooks`` (the event log and
its processing). Callers import the submodule they need.

Functions that must talk to Stripe are deliberately *not* atomic: they call the gateway first,
outside any transaction (the gateway refuses otherwise), then hand the result to a small atomic
service. Everything else follows the usual shape: keyword-only, ``@transaction.atomic``, side
effects on commit.
"""
