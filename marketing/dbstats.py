"""The database's statistics about tables: refreshing them after bulk writes, and reading a
table's size from them instead of counting its rows.

PostgreSQL plans every query from these statistics. A table filled by a job is known to the
planner as it was before (empty, say) until autovacuum gets round to it, and meanwhile the
plans chosen for the next job over it can take minutes instead of seconds; a freeze over a
scoring run whose scores were still "empty" took more than 10 minutes. So each job that
writes many rows ends with ``analyze`` of the tables it wrote.
"""

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import QuerySet
from django.utils.functional import cached_property


def analyze(*tables: type[models.Model]) -> None:
    """Refresh the planner's statistics of the models' tables (PostgreSQL ``ANALYZE``; a
    no-op elsewhere: SQLite plans without them)."""
    if connection.vendor != "postgresql" or not tables:
        return
    names = sorted({connection.ops.quote_name(model._meta.db_table) for model in tables})
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(names)}")


@dataclass(frozen=True)
class TableSize:
    rows: int
    # True: the planner's estimate from the last ANALYZE or VACUUM, not a count.
    approximate: bool


def table_size(model: type[models.Model]) -> TableSize | None:
    """How many rows ``model``'s table holds, without counting them on PostgreSQL (the
    estimate of ``pg_class.reltuples``; None before the table was first analyzed). SQLite
    keeps no such figure and its databases are small: there it is a count."""
    if connection.vendor != "postgresql":
        return TableSize(rows=model._default_manager.count(), approximate=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return TableSize(rows=round(row[0]), approximate=True)


class EstimatedCountPaginator(Paginator):
    """Page numbers over a whole table counted by the statistics' estimate (a filtered
    list is still counted), for the admin's lists of customers, consent and interactions."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet) and not rows.query.where:
            size = table_size(rows.model)
            if size is not None:
                return size.rows
        return super().count
