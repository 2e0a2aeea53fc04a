"""Indexes for the lists at 1-10 million customers: one per offered order (field, id) for
keyset pages, the score lookups of ranking and freezing, and on PostgreSQL case-insensitive
prefix indexes for the search by external id (and, in the admin, email).

Django's ``istartswith`` is ``UPPER(col::text) LIKE UPPER('abc%')`` on PostgreSQL; an index
on that expression with ``text_pattern_ops`` answers it whatever the database's collation
(a plain index does so only under the C collation). SQLite has no such operator class and
searches its (small) tables as before."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


# index name: (model, column). The identity's is for the admin's search with the PII
# permission (email from the start). Pseudonyms need none: lowercase hex, they are searched
# as a range on their unique index (marketing.pseudonyms.pseudonym_prefix_q).
PREFIX_INDEXES = {
    "customer_external_id_prefix_idx": ("Customer", "external_id"),
    "identity_email_prefix_idx": ("CustomerIdentity", "email"),
}


def create_prefix_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, (model, column) in PREFIX_INDEXES.items():
        table = quote(apps.get_model("marketing", model)._meta.db_table)
        schema_editor.execute(
            f"CREATE INDEX {quote(name)} ON {table} (UPPER({quote(column)}::text) text_pattern_ops)"
        )


def drop_prefix_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in PREFIX_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):

    dependencies = [
        ('marketing', '0014_audience_figures'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='customerscore',
            name='score_run_rank',
        ),
        migrations.AlterField(
            model_name='customerscore',
            name='customer',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='scores', to='marketing.customer'),
        ),
        migrations.AlterField(
            model_name='customerscore',
            name='scoring_run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='scores', to='marketing.scoringrun'),
        ),
        migrations.AddIndex(
            model_name='audiencemember',
            index=models.Index(fields=['audience', 'rank', 'id'], name='audience_member_rank'),
        ),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(fields=['created_at', 'id'], name='customer_created_idx'),
        ),
        migrations.AddIndex(
            model_name='customerscore',
            index=models.Index(fields=['scoring_run', '-score', 'customer'], name='score_run_rank'),
        ),
        migrations.AddIndex(
            model_name='customerscore',
            index=models.Index(fields=['customer', 'scoring_run', 'score'], name='score_customer_run'),
        ),
        migrations.AddIndex(
            model_name='interaction',
            index=models.Index(fields=['occurred_at', 'id'], name='interaction_occurred_idx'),
        ),
        migrations.RunPython(create_prefix_indexes, drop_prefix_indexes, elidable=False),
    ]
