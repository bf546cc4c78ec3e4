"""An offline, stateful double of the parts of Stripe's API this platform uses.

A standalone HTTP server (it does not import Django) that speaks Stripe's API for the pinned
API version: Connect OAuth and accounts, products and prices, customers, Checkout Sessions
with a hosted payment page, subscriptions and invoices, refunds, disputes, transfers,
application fees, the billing portal and events, with webhooks signed as Stripe signs them,
a test clock and switches that make webhook delivery misbehave. See docs/STRIPE_SANDBOX.md.

Run it with ``python -m stripe_sandbox``.
"""
