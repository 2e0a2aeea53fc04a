# API tokens moved from rest_framework.authtoken (keys stored in plain text) to django-rest-knox
# (digests, with an expiry). The old app is no longer installed, so its table would linger with
# usable keys in every database dump: drop it. Its holders log in again for a knox token.
# The audit trail gains the retention purge as an action.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('marketing', '0008_scrub_import_problems'),
    ]

    operations = [
        migrations.RunSQL('DROP TABLE IF EXISTS authtoken_token', migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('upload', 'Upload'), ('import', 'Import'), ('consent_change', 'Consent change'), ('pii_view', 'PII viewed'), ('export', 'Export'), ('erasure', 'Erasure'), ('segment_change', 'Segment change'), ('job', 'Job'), ('retention', 'Retention purge')], max_length=20),
        ),
    ]
