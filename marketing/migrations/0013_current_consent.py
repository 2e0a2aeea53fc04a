"""The consent in effect per (customer, purpose) as a table, filled from the history with
the statement that ``manage.py rebuild_current_consent`` runs (batches of customers)."""

import django.db.models.deletion
from django.db import migrations, models

from marketing.services.current_consent import Tables, current_consent_rebuild


def fill_from_history(apps, schema_editor):
    tables = Tables.of(
        apps.get_model("marketing", "CurrentConsent"),
        apps.get_model("marketing", "ConsentRecord"),
        apps.get_model("marketing", "Customer"),
    )
    # Nothing writes to the new table yet: no need to lock each batch's customers.
    current_consent_rebuild(tables=tables, lock=False)


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0012_erasure_tokens_for_earlier_erasures"),
    ]

    operations = [
        migrations.CreateModel(
            name="CurrentConsent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        choices=[
                            ("email_marketing", "Email marketing"),
                            ("ad_targeting", "Ad targeting"),
                            ("ad_user_data", "Ad user data (Google EEA)"),
                            ("ad_personalization", "Ad personalisation (Google EEA)"),
                            ("model_training", "Model training"),
                            ("profiling", "Profiling"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("granted", "Granted"),
                            ("denied", "Denied"),
                            ("withdrawn", "Withdrawn"),
                            ("expired", "Expired"),
                            ("pending", "Not yet in effect"),
                        ],
                        max_length=10,
                    ),
                ),
                ("effective_at", models.DateTimeField(null=True)),
                ("expires_at", models.DateTimeField(null=True)),
                ("pending_at", models.DateTimeField(null=True)),
                ("updated_at", models.DateTimeField()),
                (
                    "customer",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="current_consents",
                        to="marketing.customer",
                    ),
                ),
                (
                    "record",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="marketing.consentrecord",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("status", "granted")),
                        fields=["purpose", "customer", "expires_at", "pending_at"],
                        name="current_consent_granted_idx",
                    ),
                    models.Index(
                        condition=models.Q(("expires_at__isnull", False), ("status", "granted")),
                        fields=["expires_at"],
                        name="current_consent_expiry_idx",
                    ),
                    models.Index(
                        condition=models.Q(("pending_at__isnull", False)),
                        fields=["pending_at"],
                        name="current_consent_pending_idx",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("customer", "purpose"), name="current_consent_pair"
                    )
                ],
            },
        ),
        migrations.RunPython(fill_from_history, migrations.RunPython.noop),
    ]
