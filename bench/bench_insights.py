"""Creator insights benchmarks (docs/METRICS.md): the Overview and Sales on a large history.

- Overview and Sales (with a period filter) as a ratio to the minimal view, warm (the figures
  cached, docs/METRICS.md) and cold: each look right after a write (a new payment recorded with
  its rollup), which forgets the cached figures, so they are computed from the rollups again.
- The query count of each page at that size, on the first look and cached.
- The buyers CSV export: time to its first byte over HTTP, and the peak memory of streaming
  10,000 rows against all rows (about equal when streaming works).

The history's size: ``INSIGHTS_BENCH_BUYERS`` buyers (default 5,000) with ten payments each
(``INSIGHTS_BENCH_PAYMENTS`` to change it); ``INSIGHTS_BENCH_FULL=1`` asks for the issue's
100,000 buyers and 1,000,000 payments. Runs on PostgreSQL when it is reachable.
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import statistics
import time
import tracemalloc
from datetime import timedelta
from typing import Any

from bench.bench_billing import POSTGRES_URL, _fresh_postgres, _reachable
from bench.harness import Figure, bench_data_dir, django_setup, gunicorn, ratio_of, session_headers, warm

FULL = os.environ.get("INSIGHTS_BENCH_FULL", "") == "1"
BUYERS = 100_000 if FULL else int(os.environ.get("INSIGHTS_BENCH_BUYERS", "5000"))
PAYMENTS = 1_000_000 if FULL else int(os.environ.get("INSIGHTS_BENCH_PAYMENTS", str(BUYERS * 10)))
BATCH = 10_000
EXPORT_CHUNK = 2000  # memberships.selectors.EXPORT_CHUNK (Django is set up only inside run)
OVERVIEW = "/dashboard/"
SALES = "/dashboard/sales/?period=12m"
EXPORT = "/dashboard/users/buyers/export.csv"


def _history() -> int:
    """Offers, ``BUYERS`` buyers with an entitlement each, a fifth of them subscribed, and
    ``PAYMENTS`` payments over the last 13 months (a tenth in euros, some refunded or disputed).
    Returns the owner's id."""
    from django.utils import timezone

    from accounts.models import User
    from billing.models import Payment, StripeSubscription
    from memberships.models import Entitlement, Offer

    rng = random.Random(14)
    now = timezone.now()
    owner = User.objects.create_user("owner@bench.example", "x" * 20, is_staff=True)
    offers = [
        Offer.objects.create(title="Course", slug="course", pricing="one_time", price_amount=5000, status="published"),
        Offer.objects.create(
            title="Club", slug="club", pricing="recurring", interval="month", price_amount=1000, status="published"
        ),
        Offer.objects.create(
            title="Club EU",
            slug="club-eu",
            pricing="recurring",
            interval="year",
            price_amount=9900,
            currency="eur",
            status="published",
        ),
    ]
    user_ids: list[int] = []
    for start in range(0, BUYERS, BATCH):
        users = User.objects.bulk_create(
            User(email=f"buyer{n}@bench.example", full_name=f"Buyer {n}", password="!")
            for n in range(start, min(start + BATCH, BUYERS))
        )
        user_ids += [user.pk for user in users]
        Entitlement.objects.bulk_create(
            Entitlement(
                user=user,
                offer=offers[user.pk % 3],
                source="purchase" if user.pk % 3 == 0 else "subscription",
                started_at=now - timedelta(days=rng.randrange(400)),
            )
            for user in users
        )
        StripeSubscription.objects.bulk_create(
            StripeSubscription(
                subscription_id=f"sub_bench_{user.pk}",
                stripe_account_id="acct_bench",
                user=user,
                offer=offers[user.pk % 3],
                status=rng.choice(["active", "active", "active", "past_due", "canceled"]),
                created=now - timedelta(days=rng.randrange(400)),
                synced_at=now,
            )
            for user in users
            if user.pk % 5 == 0 and user.pk % 3
        )
    for start in range(0, PAYMENTS, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, PAYMENTS)):
            offer = offers[n % 3]
            amount = offer.price_amount
            roll = rng.random()
            rows.append(
                Payment(
                    stripe_object_id=f"in_bench_{n}",
                    kind="one_time" if offer.pricing == "one_time" else "invoice",
                    stripe_account_id="acct_bench",
                    amount=amount,
                    currency=offer.currency,
                    user_id=user_ids[n % len(user_ids)],
                    offer=offer,
                    amount_refunded=amount if roll < 0.05 else 0,
                    dispute_status="lost" if 0.05 <= roll < 0.06 else "",
                    paid_at=now - timedelta(seconds=rng.randrange(400 * 86400)),
                )
            )
        Payment.objects.bulk_create(rows)
    _rollups()
    from django.db import connection

    if connection.vendor == "postgresql":
        # The statistics autovacuum would gather on a live database after a million inserts:
        # without them the planner reads a fresh table as if it knew nothing of its rows.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return owner.pk


def _rollups() -> None:
    """The rollups the services keep as payments and entitlements are recorded one by one,
    built at once for the history made in bulk above (as the migrations that add them do)."""
    from django.db.models import Min

    from billing.models import Payment
    from billing.services.sales_days import sales_days_rebuild
    from memberships.models import Entitlement, MemberJoin

    sales_days_rebuild()
    joined: dict[int, Any] = {}
    for model, column in ((Entitlement, "started_at"), (Payment, "paid_at")):
        rows = model.objects.filter(is_test=False).values("user_id").annotate(first=Min(column)).order_by()
        for row in rows.iterator():
            if row["first"] is not None and (row["user_id"] not in joined or row["first"] < joined[row["user_id"]]):
                joined[row["user_id"]] = row["first"]
    MemberJoin.objects.bulk_create(
        (MemberJoin(user_id=user_id, joined_at=at) for user_id, at in joined.items()), batch_size=BATCH
    )


def _query_counts(owner_id: int) -> list[Figure]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=owner_id))
    figures = []
    # The first look computes the figures; the next one reads them from the cache.
    for name, path, first, cached in (("Overview", OVERVIEW, 18, 6), ("Sales", SALES, 9, 3)):
        for look, pinned in (("first look", first), ("cached", cached)):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
            figures.append(
                Figure(f"{name} queries at {BUYERS:,} buyers, {look}", len(queries), "queries", "<=", pinned)
            )
    return figures


def _one(address: str, path: str, headers: dict[str, str]) -> float:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        return time.perf_counter() - started
    finally:
        conn.close()


def _cold_ratio(address: str, path: str, headers: dict[str, str], *, rounds: int = 7) -> float:
    """The minimal view's time over the page's, each page load right after a new payment
    recorded as fulfilment records one (its rollup moved, the cached figures forgotten)."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from billing.models import Payment
    from billing.services.sales_days import sales_day_move, share_of
    from memberships.models import Offer

    offer = Offer.objects.get(slug="course")
    buyer = User.objects.filter(is_staff=False).first()
    assert buyer is not None
    ratios = []
    for round_ in range(rounds):
        with transaction.atomic():
            payment = Payment.objects.create(
                stripe_object_id=f"pi_cold_{path}_{round_}_{time.time_ns()}",
                kind="one_time",
                stripe_account_id="acct_bench",
                amount=5000,
                currency="usd",
                user=buyer,
                offer=offer,
                paid_at=timezone.now(),
            )
            sales_day_move(before=None, after=share_of(payment))
        page = _one(address, path, headers)
        minimal = _one(address, "/bench/minimal/", {})
        ratios.append(minimal / page)
    return statistics.median(ratios)


def _first_byte(address: str, path: str, headers: dict[str, str]) -> tuple[float, float]:
    """Seconds to the export's first byte, and to its last."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read(1)
        first = time.perf_counter() - started
        while response.read(65536):
            pass
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        return first, time.perf_counter() - started
    finally:
        conn.close()


def _peak_memory(rows: int | None) -> tuple[float, int]:
    """Peak memory (MiB) of streaming the buyers export's first ``rows`` rows (all: None)."""
    from core.csv_export import csv_lines
    from memberships.selectors import BUYERS_CSV_HEADER, buyers_csv_rows

    tracemalloc.start()
    try:
        count = sum(1 for _ in itertools.islice(csv_lines(BUYERS_CSV_HEADER, buyers_csv_rows()), rows))
        return tracemalloc.get_traced_memory()[1] / 2**20, count - 1
    finally:
        tracemalloc.stop()


def _run() -> list[Figure]:
    with bench_data_dir() as data_dir:
        django_setup(data_dir)
        started = time.monotonic()
        owner_id = _history()
        built = f"(history of {BUYERS:,} buyers, {PAYMENTS:,} payments built in {time.monotonic() - started:.0f} s)"
        headers = session_headers(owner_id)
        figures = _query_counts(owner_id)
        with gunicorn(data_dir) as address:
            warm(address, OVERVIEW, headers)
            for name, path in (("Overview", OVERVIEW), ("Sales, last 12 months", SALES)):
                warm_ratio = ratio_of(address, path, headers=headers)
                figures.append(Figure(f"{name} warm vs minimal view", warm_ratio, "x", ">=", 0.2, built))
                cold = _cold_ratio(address, path, headers)
                # The issue sets no target here; ours: a look right after a sale costs at most 200
                # minimal views (about 0.4 s on a 2-core machine).
                note = "(each look right after a payment: computed, not cached)"
                figures.append(Figure(f"{name} cold after a write vs minimal view", cold, "x", ">=", 0.005, note))
            first, last = _first_byte(address, EXPORT, headers)
            note = f"(all {BUYERS:,} rows in {last:.2f} s)"
            figures.append(Figure(f"buyers CSV of {BUYERS:,} rows, time to first byte", first, "s", "<=", 0.5, note))
        # 10,000 against 100,000 at the size; at least a few read chunks when scaled down.
        small_rows = max(min(10_000, BUYERS // 10), min(BUYERS, 4 * EXPORT_CHUNK) // 4) or 1
        small, small_count = _peak_memory(small_rows)
        large, large_count = _peak_memory(None)
        figures.append(Figure(f"buyers CSV peak memory, {small_count:,} rows", small, "MiB", "<=", 64))
        figures.append(Figure(f"buyers CSV peak memory, {large_count:,} rows", large, "MiB", "<=", 64))
        note = f"({large_count:,} rows against {small_count:,})"
        figures.append(Figure("buyers CSV peak memory ratio", large / small if small else 0, "x", "<=", 1.5, note))
        return figures


def run() -> list[Figure]:
    if _reachable(POSTGRES_URL, 5432):
        with _fresh_postgres(POSTGRES_URL.replace("membership_billing_bench", "membership_insights_bench")) as url:
            os.environ["DATABASE_URL"] = url
            figures = _run()
        database = "PostgreSQL"
    else:
        figures = _run()
        database = "SQLite"
    for figure in figures:
        figure.note = f"{figure.note} [{database}]".strip()
    return figures


def main(argv: Any = None) -> None:
    for figure in run():
        print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
