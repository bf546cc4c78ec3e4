from django.db import migrations
from django.db.models import Min


def join_from_first_payments(apps, schema_editor):
    """Move each member's join to Stripe's time of their first payment where that is earlier
    than their first entitlement on record (or where no entitlement is left)."""
    Payment = apps.get_model("billing", "Payment")
    MemberJoin = apps.get_model("memberships", "MemberJoin")
    firsts = {
        row["user_id"]: row["first"]
        for row in Payment.objects.filter(is_test=False, paid_at__isnull=False)
        .values("user_id")
        .annotate(first=Min("paid_at"))
        .order_by()
        .iterator()
    }
    earlier = []
    for join in MemberJoin.objects.iterator():
        first = firsts.pop(join.user_id, None)
        if first is not None and first < join.joined_at:
            join.joined_at = first
            earlier.append(join)
    MemberJoin.objects.bulk_update(earlier, ["joined_at"], batch_size=2000)
    MemberJoin.objects.bulk_create(
        [MemberJoin(user_id=user_id, joined_at=first) for user_id, first in firsts.items()], batch_size=2000
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_sales_days"),
        ("memberships", "0008_member_joins"),
    ]

    operations = [migrations.RunPython(join_from_first_payments, migrations.RunPython.noop)]
