"""Keeping ``CurrentConsent`` equal to what the consent history says is in effect now.

Every writer of the history (``consent_record_append``, the CSV import and demo loader
through ``CustomerWriter``) recomputes the rows of the customers it wrote for, in its own
transaction, right after writing. The recomputation is one set-based statement over those
customers' history; the full rebuild runs the very same statement per batch of customers, so
the table cannot drift from the history whichever path wrote. Erasure deletes the customer,
and the rows go with it (cascade); retention never deletes history.

Concurrent writers for one customer: the refresh runs after the customer's row is locked
(``consent_record_append`` selects it FOR UPDATE; an import's customer upsert locks every
customer it merges), so they take turns, and the second one's refresh, a later statement
under READ COMMITTED, reads the first one's records.

Records dated later than now (the API takes any date, an import up to a day ahead): the row
keeps the latest record in effect now and notes in ``pending_at`` when the next one takes
effect. From that moment the selector no longer counts the row as a grant (a withdrawal
dated ahead is honoured on time, without waiting for a job); the scheduled
``current_consent_refresh_due`` then recomputes such rows, so a grant dated ahead starts
counting at its next run (CURRENT_CONSENT_REFRESH_MINUTES). The same run marks grants past
their expiry as ``expired``, so counts by status stay right; the selector compares
``expires_at`` with the time it is asked and never waits for that.
"""

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from marketing.models import ConsentRecord, CurrentConsent, Customer

logger = logging.getLogger(__name__)

# Customers per statement when refreshing a list of ids on SQLite (under its variable limit).
IDS_PER_STATEMENT = 900


@dataclass(frozen=True)
class Tables:
    """The tables the statements use: the product's, or a migration's historical models'."""

    current: str
    record: str
    customer: str

    @classmethod
    def of(cls, current: Any, record: Any, customer: Any) -> "Tables":
        return cls(current._meta.db_table, record._meta.db_table, customer._meta.db_table)


TABLES = Tables.of(CurrentConsent, ConsentRecord, Customer)


@dataclass(frozen=True)
class Scope:
    """Which customers a statement covers: an SQL condition on ``{column}`` (the customer id
    column of the table it filters), with named parameters."""

    condition: str
    params: dict[str, Any] = field(default_factory=dict)

    def on(self, column: str) -> str:
        return self.condition.replace("{column}", column)


def _id_range(low: int, high: int) -> Scope:
    return Scope("{column} BETWEEN %(low)s AND %(high)s", {"low": low, "high": high})


def _ids(customer_ids: Sequence[int]) -> Scope:
    if connection.vendor == "postgresql":  # one parameter, read as index lookups
        return Scope("{column} = ANY(%(ids)s)", {"ids": list(customer_ids)})
    names = [f"c{i}" for i in range(len(customer_ids))]
    return Scope(
        "{column} IN (" + ", ".join(f"%({n})s" for n in names) + ")",
        dict(zip(names, customer_ids, strict=True)),
    )


def _execute(sql: str, params: dict[str, Any]) -> int:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {k: adapt(v) if isinstance(v, datetime) else v for k, v in params.items()}
        )
        return cursor.rowcount


def _lock(scope: Scope, tables: Tables) -> None:
    """Lock the customers' rows until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    if connection.vendor == "postgresql":
        # NO KEY UPDATE: the strength an import's customer upsert takes; it does not wait for
        # the KEY SHARE lock that adding a record takes on its customer.
        _execute(
            f"SELECT id FROM {tables.customer} WHERE {scope.on('id')} FOR NO KEY UPDATE",
            scope.params,
        )


def _refresh(
    scope: Scope, *, now: datetime, tables: Tables = TABLES, purpose: str | None = None
) -> int:
    """Recompute the rows of the customers in ``scope`` (of one purpose, if given) from their
    history; returns how many rows were added or changed. The caller holds their locks.

    Per (customer, purpose): the latest record by (effective_at, id) among those in effect at
    ``now``, and the date of the earliest one that is not yet. A grant past its expiry is
    ``expired``; a pair with only records ahead is ``pending``.
    """
    of_purpose = "AND purpose = %(purpose)s" if purpose else ""
    records = f"""SELECT id, customer_id, purpose, status, effective_at, expires_at
        FROM {tables.record} WHERE {scope.on("customer_id")} {of_purpose}"""
    sql = f"""
        INSERT INTO {tables.current} (customer_id, purpose, status, record_id, effective_at,
            expires_at, pending_at, updated_at)
        SELECT s.customer_id, s.purpose, s.status, s.record_id, s.effective_at, s.expires_at,
            s.pending_at, %(now)s
        FROM ({current_rows_sql(records, now="%(now)s")}) s
        -- Rows already right are not written (nor locked, as the conflict clause would).
        LEFT JOIN {tables.current} cur
            ON cur.customer_id = s.customer_id AND cur.purpose = s.purpose
        WHERE cur.id IS NULL OR {_differs("cur", "s")}
        ON CONFLICT (customer_id, purpose) DO UPDATE SET
            status = excluded.status, record_id = excluded.record_id,
            effective_at = excluded.effective_at, expires_at = excluded.expires_at,
            pending_at = excluded.pending_at, updated_at = excluded.updated_at
        WHERE {_differs(tables.current, "excluded")}
    """
    return _execute(sql, {"now": now, "purpose": purpose, **scope.params})


def current_rows_sql(records: str, *, now: str) -> str:
    """SQL: the consent in effect at ``now`` (an SQL expression) per (customer, purpose) of
    the consent records that ``records`` (a SELECT of id, customer_id, purpose, status,
    effective_at, expires_at) gives, as rows of customer_id, purpose, status, record_id,
    effective_at, expires_at, pending_at: the latest record by (effective_at, id) among those
    in effect, and the date of the earliest one that is not yet. A grant past its expiry is
    ``expired``; a pair with only records ahead is ``pending``. ``records`` must hold every
    record of the pairs it covers."""
    in_effect = f"effective_at <= {now}"
    return f"""
        SELECT customer_id, purpose,
            CASE WHEN NOT ({in_effect}) THEN '{CurrentConsent.Status.PENDING}'
                 WHEN status = '{ConsentRecord.Status.GRANTED}' AND expires_at <= {now}
                 THEN '{CurrentConsent.Status.EXPIRED}'
                 ELSE status END AS status,
            CASE WHEN {in_effect} THEN id END AS record_id,
            CASE WHEN {in_effect} THEN effective_at END AS effective_at,
            CASE WHEN {in_effect} THEN expires_at END AS expires_at,
            pending_at
        FROM (
            SELECT id, customer_id, purpose, status, effective_at, expires_at,
                ROW_NUMBER() OVER (
                    PARTITION BY customer_id, purpose
                    ORDER BY CASE WHEN {in_effect} THEN 0 ELSE 1 END, effective_at DESC,
                        id DESC
                ) AS place,
                MIN(CASE WHEN NOT ({in_effect}) THEN effective_at END)
                    OVER (PARTITION BY customer_id, purpose) AS pending_at
            FROM ({records}) history
        ) ranked
        WHERE place = 1"""


def _differs(stored: str, computed: str) -> str:
    """SQL: the stored row says something other than the computed one."""
    distinct = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"
    return (
        f"({stored}.status <> {computed}.status"
        f" OR {stored}.record_id {distinct} {computed}.record_id"
        f" OR {stored}.pending_at {distinct} {computed}.pending_at)"
    )


def _remove_orphans(scope: Scope, *, tables: Tables) -> int:
    """Rows of the customers in ``scope`` whose pair has no history (the rebuild's check:
    the product deletes history only with its customer, and the rows go with it)."""
    return _execute(
        f"""DELETE FROM {tables.current} WHERE {scope.on("customer_id")} AND NOT EXISTS (
            SELECT 1 FROM {tables.record} r WHERE r.customer_id = {tables.current}.customer_id
            AND r.purpose = {tables.current}.purpose
            -- Said again of the history, or the planner may read all of it for a merge join.
            AND {scope.on("r.customer_id")})""",
        scope.params,
    )


def current_consent_lock(customer: Customer) -> None:
    """Call before appending to the customer's history: writers for one customer take turns."""
    _lock(_ids([customer.pk]), TABLES)


def current_consent_record_added(record: ConsentRecord) -> int:
    """After one record was appended, with its customer locked (``current_consent_lock``)."""
    return _refresh(_ids([record.customer_id]), now=timezone.now(), purpose=record.purpose)


def current_consent_refresh(*, customer_ids: Collection[int], now: datetime | None = None) -> int:
    """Lock and recompute the rows of these customers, after their history was written in
    bulk (in the caller's transaction); returns how many rows were added or changed."""
    return _refresh_ids(customer_ids, now=now, lock=True)


def current_consent_refresh_locked(*, customer_ids: Collection[int]) -> int:
    """Recompute the rows of these customers, whose rows the caller has locked while
    writing their history (an import's customer upsert)."""
    return _refresh_ids(customer_ids, now=None, lock=False)


def _refresh_ids(customer_ids: Collection[int], *, now: datetime | None, lock: bool) -> int:
    ids = sorted(set(customer_ids))
    step = IDS_PER_STATEMENT if connection.vendor == "sqlite" else 50_000
    written = 0
    for start in range(0, len(ids), step):
        scope = _ids(ids[start : start + step])
        if lock:
            _lock(scope, TABLES)
        written += _refresh(scope, now=now or timezone.now())
    return written


def current_consent_refresh_written(*, customers_sql: str) -> int:
    """Recompute the rows of the customers that ``customers_sql`` (a SELECT of customer ids,
    no parameters) returns, whose rows the caller has locked while writing their history."""
    return _refresh(Scope(f"{{column}} IN ({customers_sql})"), now=timezone.now())


@dataclass
class RebuildCounts:
    customers: int = 0
    rows: int = 0  # (customer, purpose) rows in the table afterwards
    written: int = 0  # rows added or changed: what was missing or out of date
    removed: int = 0  # rows without history
    batches: int = 0


def current_consent_rebuild(
    *,
    batch_size: int = 20_000,
    tables: Tables = TABLES,
    lock: bool = True,
    report: Callable[[RebuildCounts], None] | None = None,
) -> RebuildCounts:
    """Recompute the whole table from the history, ``batch_size`` customers (by id) per
    transaction, so that it runs on any size of customer base; returns the counts.

    Rows already right are left alone, so a rebuild of a table in step writes nothing.
    ``lock=False`` (the migration that creates the table, which nothing writes yet) skips
    locking each batch's customers.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts = RebuildCounts()
    low = _first_id_from(tables, 0, inclusive=True)
    while low is not None:
        high = _scalar(
            f"SELECT id FROM {tables.customer} WHERE id >= %(low)s ORDER BY id "
            "LIMIT 1 OFFSET %(skip)s",
            {"low": low, "skip": batch_size - 1},
        ) or _scalar(f"SELECT MAX(id) FROM {tables.customer}", {})
        scope = _id_range(low, high)
        with transaction.atomic():
            if lock:
                _lock(scope, tables)
            counts.written += _refresh(scope, now=timezone.now(), tables=tables)
            counts.removed += _remove_orphans(scope, tables=tables)
            counts.customers += _scalar(
                f"SELECT COUNT(*) FROM {tables.customer} WHERE {scope.on('id')}", scope.params
            )
            counts.rows += _scalar(
                f"SELECT COUNT(*) FROM {tables.current} WHERE {scope.on('customer_id')}",
                scope.params,
            )
        counts.batches += 1
        if report is not None:
            report(counts)
        low = _first_id_from(tables, high, inclusive=False)
    logger.info("Current consent rebuilt: %s", counts)
    return counts


def _first_id_from(tables: Tables, start: int, *, inclusive: bool) -> int | None:
    return _scalar(
        f"SELECT MIN(id) FROM {tables.customer} WHERE id {'>=' if inclusive else '>'} %(start)s",
        {"start": start},
    )


def _scalar(sql: str, params: dict[str, Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return row[0] if row else None


def current_consent_refresh_due(
    *, now: datetime | None = None, batch_size: int = 10_000
) -> dict[str, int]:
    """The scheduled refresh: recompute rows whose next record has taken effect, and mark
    grants past their expiry ``expired``; a transaction per batch. Returns the counts."""
    now = now or timezone.now()
    promoted = 0
    while True:
        with transaction.atomic():
            due = list(
                CurrentConsent.objects.filter(pending_at__lte=now)
                .order_by("customer_id")
                .values_list("customer_id", flat=True)
                .distinct()[:batch_size]
            )
            if not due:
                break
            # Recomputed at ``now``, each row's pending_at moves past it: the loop ends.
            promoted += current_consent_refresh(customer_ids=due, now=now)
    expired = 0
    while True:
        with transaction.atomic():
            batch = CurrentConsent.objects.filter(
                status=CurrentConsent.Status.GRANTED, expires_at__lte=now
            ).values("pk")[:batch_size]
            done = CurrentConsent.objects.filter(pk__in=batch).update(
                status=CurrentConsent.Status.EXPIRED, updated_at=now
            )
        expired += done
        if done < batch_size:
            break
    logger.info("Current consent refreshed: %s promoted, %s expired", promoted, expired)
    return {"promoted": promoted, "expired": expired}
