# The offer a popup upsell sells moves from hubs.HubGroup.upsell_offer to memberships' side, so
# that hubs, below memberships, points at nothing above it. hubs 0003 then drops the old column.

import django.db.models.deletion
from django.db import migrations, models


def copy_from_groups(apps, schema_editor):
    HubGroup = apps.get_model("hubs", "HubGroup")
    GroupUpsellOffer = apps.get_model("memberships", "GroupUpsellOffer")
    GroupUpsellOffer.objects.bulk_create(
        GroupUpsellOffer(group_id=group_id, offer_id=offer_id)
        for group_id, offer_id in HubGroup.objects.filter(upsell_offer__isnull=False).values_list("pk", "upsell_offer_id")
    )


def copy_to_groups(apps, schema_editor):
    HubGroup = apps.get_model("hubs", "HubGroup")
    GroupUpsellOffer = apps.get_model("memberships", "GroupUpsellOffer")
    for group_id, offer_id in GroupUpsellOffer.objects.values_list("group_id", "offer_id"):
        HubGroup.objects.filter(pk=group_id).update(upsell_offer_id=offer_id)


class Migration(migrations.Migration):

    dependencies = [
        ('hubs', '0002_community'),
        ('memberships', '0002_offer_editor_fields'),
    ]

    operations = [
        migrations.CreateModel(
            name='GroupUpsellOffer',
            fields=[
                ('group', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='hubs.hubgroup')),
                ('offer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='upsells', to='memberships.offer')),
            ],
        ),
        migrations.RunPython(copy_from_groups, copy_to_groups),
    ]
