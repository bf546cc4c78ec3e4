# The popup upsell's offer now lives on memberships' side (memberships 0003 copied it there).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('hubs', '0002_community'),
        ('memberships', '0003_group_upsell_offer'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='hubgroup',
            name='upsell_offer',
        ),
    ]
