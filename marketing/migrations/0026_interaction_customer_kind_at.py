"""A customer's interactions of a kind indexed with their moment, in place of the index of
customer and kind alone: the next best offers read a customer's impressions since a moment
on every request, and the old index read all of them (a hundred for a MovieLens customer)
to keep the recent ones.

On PostgreSQL the index is built and the old one dropped without locking the table against
writes (``CONCURRENTLY``, outside a transaction): the interactions are the largest table.
"""

from django.db import migrations, models


def _concurrently(operation, schema_editor, model) -> bool:
    """Whether the index is built or dropped without locking the table (PostgreSQL only)."""
    connection = schema_editor.connection
    return connection.vendor == "postgresql" and operation.allow_migrate_model(
        connection.alias, model
    )


class _AddIndex(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if _concurrently(self, schema_editor, model):
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if _concurrently(self, schema_editor, model):
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class _RemoveIndex(migrations.RemoveIndex):
    def _index(self, state, app_label):
        return state.models[app_label, self.model_name_lower].get_index_by_name(self.name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if _concurrently(self, schema_editor, model):
            schema_editor.remove_index(model, self._index(from_state, app_label), concurrently=True)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if _concurrently(self, schema_editor, model):
            schema_editor.add_index(model, self._index(to_state, app_label), concurrently=True)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("marketing", "0025_job_kind_compare"),
    ]

    operations = [
        _AddIndex(
            model_name="interaction",
            index=models.Index(
                fields=["customer", "kind", "occurred_at"], name="interaction_customer_kind_at"
            ),
        ),
        _RemoveIndex(model_name="interaction", name="interaction_customer_kind"),
    ]
