"""Writing checked rows in bulk, for CSV imports and the demo loader alike.

A writer first *stages* rows in a temporary table (PostgreSQL: COPY; SQLite: executemany),
which writes nothing the rest of the product can see. ``merge()`` then upserts the staged
rows into the real tables with a few set-based statements; the caller runs it inside one
transaction, so an import is either wholly written or not at all. Upserts key on the external
id (interactions on customer, offer, kind and time), so loading the same rows twice changes
nothing. A blank cell is "no statement": it never overwrites a stored value.
"""

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from marketing.models import (
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    LawfulBasis,
    Offer,
    ProfileField,
)
from marketing.pseudonyms import pseudonymiser


@dataclass(slots=True)
class ConsentStatement:
    purpose: str
    status: str
    # None: the statement takes effect when the import runs.
    effective_at: datetime | None = None
    expires_at: datetime | None = None
    notice_version: str = ""


# email, phone, first_name, last_name, country, postal_code ("" = no statement).
IDENTITY_FIELDS = CustomerIdentity.PII_FIELDS
Identity = tuple[str, str, str, str, str, str]
NO_IDENTITY: Identity = ("", "", "", "", "", "")


@dataclass(slots=True)
class CustomerRecord:
    external_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    identity: Identity | None = None
    consents: list[ConsentStatement] = field(default_factory=list)


@dataclass(slots=True)
class OfferRecord:
    external_id: str
    title: str
    category: str = ""
    description: str = ""
    price: Decimal | None = None
    unit_cost: Decimal | None = None


@dataclass(slots=True)
class InteractionRecord:
    customer_external_id: str
    offer_external_id: str
    kind: str
    occurred_at: datetime
    value: Decimal | None = None
    campaign: str = ""


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@dataclass(frozen=True)
class StageTable:
    """A temporary table private to this database connection."""

    name: str
    # (column, PostgreSQL type). Text columns hold "" for blanks, never NULL.
    columns: tuple[tuple[str, str], ...]

    def create(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            if connection.vendor == "postgresql":
                cols = ", ".join(f"{name} {kind}" for name, kind in self.columns)
            else:
                # Untyped columns keep values exactly as given (JSON text, timestamps).
                cols = ", ".join(name for name, _ in self.columns)
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({cols})")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def encode(self, rows: list[tuple], *, postgres: bool, ops) -> Any:
        """Rows ready for ``load``: CSV text for COPY, or adapted tuples. Uses no database
        connection, so it may run on another thread."""
        if postgres:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            return buffer.getvalue()
        if any(kind == "timestamptz" for _, kind in self.columns):
            adapt = ops.adapt_datetimefield_value
            return [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
        return rows

    def load(self, payload: Any) -> None:
        if not payload:
            return
        names = [name for name, _ in self.columns]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                text_columns = ", ".join(name for name, kind in self.columns if kind == "text")
                cursor.copy_expert(
                    f"COPY {self.name} ({', '.join(names)}) FROM STDIN WITH "
                    f"(FORMAT csv, FORCE_NOT_NULL ({text_columns}))",
                    io.StringIO(payload),
                )
            else:
                placeholders = ", ".join(["%s"] * len(names))
                cursor.executemany(f"INSERT INTO {self.name} VALUES ({placeholders})", payload)

    def clear(self) -> None:
        with connection.cursor() as cursor:
            verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
            cursor.execute(f"{verb} {self.name}")


def _execute(sql: str, params: Sequence[Any] = ()) -> int:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(p) if isinstance(p, datetime) else p for p in params])
        return cursor.rowcount


def _scalar(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _existing(stage: StageTable, model) -> int:
    """How many staged rows already have a stored row with the same external id."""
    return _scalar(
        f"SELECT COUNT(*) FROM {stage.name} s "
        f"JOIN {_table(model)} t ON t.external_id = s.external_id"
    )


@dataclass
class Prepared:
    """A chunk of records encoded for the stage tables (see ``Writer.prepare``)."""

    rows: int
    payloads: list[Any]


class Writer:
    """Stages chunks of records and merges them inside the caller's transaction.

    ``prepare`` is pure Python and uses no database connection, so an import can run it on
    the thread that reads the file while this thread writes the previous chunk. ``write``
    loads a prepared chunk into the stage tables and merges it into the real tables.
    ``counts`` adds up what was written.
    """

    stage_tables: tuple[StageTable, ...] = ()

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._postgres = connection.vendor == "postgresql"
        self._ops = connection.ops

    def __enter__(self):
        for table in self.stage_tables:
            table.create()
        return self

    def __exit__(self, *exc_info) -> None:
        for table in self.stage_tables:
            table.drop()

    def prepare(self, records: Sequence[Any]) -> Prepared:
        return Prepared(
            rows=len(records),
            payloads=[
                table.encode(rows, postgres=self._postgres, ops=self._ops)
                for table, rows in zip(self.stage_tables, self._stage_rows(records), strict=True)
            ],
        )

    def write(self, prepared: Prepared) -> None:
        if not connection.in_atomic_block:
            raise RuntimeError("write() must run inside transaction.atomic()")
        for table, payload in zip(self.stage_tables, prepared.payloads, strict=True):
            table.load(payload)
        self.counts.update(self._merge(prepared.rows))
        for table in self.stage_tables:
            table.clear()

    def _stage_rows(self, records: Sequence[Any]) -> list[list[tuple]]:
        raise NotImplementedError

    def _merge(self, rows: int) -> dict[str, int]:
        raise NotImplementedError


CUSTOMER_STAGE = StageTable(
    "ingest_stage_customer",
    (
        ("external_id", "text"),
        ("pseudonym", "text"),
        ("attributes", "jsonb"),
        ("has_identity", "boolean"),
        *((name, "text") for name in IDENTITY_FIELDS),
    ),
)
CONSENT_STAGE = StageTable(
    "ingest_stage_consent",
    (
        ("external_id", "text"),
        ("purpose", "text"),
        ("status", "text"),
        ("effective_at", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("notice_version", "text"),
    ),
)


class CustomerWriter(Writer):
    """Customers with their identities and consent statements."""

    stage_tables = (CUSTOMER_STAGE, CONSENT_STAGE)

    def __init__(self, *, source: str, by=None, now: datetime | None = None) -> None:
        super().__init__()
        self.source = source
        self.by_id = by.pk if getattr(by, "is_authenticated", False) else None
        self.now = now or timezone.now()
        self._pseudonym = pseudonymiser()

    def _stage_rows(self, records: Sequence[CustomerRecord]) -> list[list[tuple]]:
        pseudonym, dumps = self._pseudonym, json.dumps
        customers: list[tuple] = []
        consents: list[tuple] = []
        for record in records:
            external_id = record.external_id
            identity = record.identity
            customers.append(
                (
                    external_id,
                    pseudonym(external_id),
                    dumps(record.attributes, separators=(",", ":")),
                    identity is not None,
                    *(identity or NO_IDENTITY),
                )
            )
            for c in record.consents:
                consents.append(
                    (external_id, c.purpose, c.status, c.effective_at, c.expires_at,
                     c.notice_version)
                )
        return [customers, consents]

    def _merge(self, rows: int) -> dict[str, int]:
        existing = _existing(CUSTOMER_STAGE, Customer)
        self._merge_customers()
        return {
            "created": rows - existing,
            "updated": existing,
            "identities": self._merge_identities(),
            "consents_added": self._merge_consents(),
        }

    def _merge_customers(self) -> None:
        customer = _table(Customer)
        if connection.vendor == "postgresql":
            merged = f"{customer}.attributes || EXCLUDED.attributes"
            changed = f"NOT {customer}.attributes @> EXCLUDED.attributes"
        else:
            merged = f"json_patch({customer}.attributes, excluded.attributes)"
            changed = f"{merged} <> {customer}.attributes"
        _execute(
            f"""
            INSERT INTO {customer} (external_id, pseudonym, attributes, created_at, updated_at)
            SELECT external_id, pseudonym, attributes, %s, %s FROM {CUSTOMER_STAGE.name} WHERE true
            ON CONFLICT (external_id) DO UPDATE
            SET attributes = {merged}, updated_at = excluded.updated_at
            WHERE {changed}
            """,
            [self.now, self.now],
        )

    def _merge_identities(self) -> int:
        identity = _table(CustomerIdentity)
        keep_stored = ", ".join(
            f"{name} = COALESCE(NULLIF(excluded.{name}, ''), {identity}.{name})"
            for name in IDENTITY_FIELDS
        )
        return _execute(
            f"""
            INSERT INTO {identity} (customer_id, {", ".join(IDENTITY_FIELDS)}, updated_at)
            SELECT c.id, {", ".join(f"s.{name}" for name in IDENTITY_FIELDS)}, %s
            FROM {CUSTOMER_STAGE.name} s JOIN {_table(Customer)} c ON c.external_id = s.external_id
            WHERE s.has_identity
            ON CONFLICT (customer_id) DO UPDATE SET {keep_stored}, updated_at = excluded.updated_at
            """,
            [self.now],
        )

    def _merge_consents(self) -> int:
        # Consent history is append-only: a statement is added unless it repeats what is
        # stored. A dated statement repeats a record with the same status and date anywhere
        # in the history; an undated one (it takes effect now) repeats the current, latest
        # record when that has the same status. Notice version and expiry count when given.
        record = _table(ConsentRecord)
        return _execute(
            f"""
            INSERT INTO {record} (customer_id, purpose, status, lawful_basis, effective_at,
                expires_at, source, notice_version, note, recorded_at, recorded_by_id)
            SELECT c.id, s.purpose, s.status, %s, COALESCE(s.effective_at, %s), s.expires_at, %s,
                s.notice_version, '', %s, %s
            FROM {CONSENT_STAGE.name} s JOIN {_table(Customer)} c ON c.external_id = s.external_id
            WHERE NOT EXISTS (
                SELECT 1 FROM {record} r
                WHERE r.customer_id = c.id AND r.purpose = s.purpose AND r.status = s.status
                  AND (s.notice_version = '' OR r.notice_version = s.notice_version)
                  AND (s.expires_at IS NULL OR r.expires_at = s.expires_at)
                  AND (r.effective_at = s.effective_at OR (s.effective_at IS NULL AND r.id = (
                      SELECT l.id FROM {record} l
                      WHERE l.customer_id = c.id AND l.purpose = s.purpose
                      ORDER BY l.effective_at DESC, l.id DESC LIMIT 1)))
            )
            """,
            [LawfulBasis.CONSENT, self.now, self.source, self.now, self.by_id],
        )


OFFER_STAGE = StageTable(
    "ingest_stage_offer",
    (
        ("external_id", "text"),
        ("title", "text"),
        ("category", "text"),
        ("description", "text"),
        ("price", "numeric"),
        ("unit_cost", "numeric"),
    ),
)


class OfferWriter(Writer):
    stage_tables = (OFFER_STAGE,)

    def __init__(self, *, now: datetime | None = None) -> None:
        super().__init__()
        self.now = now or timezone.now()

    def _stage_rows(self, records: Sequence[OfferRecord]) -> list[list[tuple]]:
        return [[
            (r.external_id, r.title, r.category, r.description, r.price, r.unit_cost)
            for r in records
        ]]

    def _merge(self, rows: int) -> dict[str, int]:
        offer = _table(Offer)
        existing = _existing(OFFER_STAGE, Offer)
        _execute(
            f"""
            INSERT INTO {offer} (external_id, title, category, description, price, unit_cost,
                active, created_at, updated_at)
            SELECT external_id, title, category, description, price, unit_cost, true, %s, %s
            FROM {OFFER_STAGE.name} WHERE true
            ON CONFLICT (external_id) DO UPDATE SET
                title = excluded.title,
                category = COALESCE(NULLIF(excluded.category, ''), {offer}.category),
                description = COALESCE(NULLIF(excluded.description, ''), {offer}.description),
                price = COALESCE(excluded.price, {offer}.price),
                unit_cost = COALESCE(excluded.unit_cost, {offer}.unit_cost),
                updated_at = excluded.updated_at
            """,
            [self.now, self.now],
        )
        return {"created": rows - existing, "updated": existing}


INTERACTION_STAGE = StageTable(
    "ingest_stage_interaction",
    (
        ("customer_external_id", "text"),
        ("offer_external_id", "text"),
        ("kind", "text"),
        ("occurred_at", "timestamptz"),
        ("value", "numeric"),
        ("campaign", "text"),
    ),
)


class InteractionWriter(Writer):
    stage_tables = (INTERACTION_STAGE,)

    def _stage_rows(self, records: Sequence[InteractionRecord]) -> list[list[tuple]]:
        return [[
            (r.customer_external_id, r.offer_external_id, r.kind, r.occurred_at, r.value,
             r.campaign)
            for r in records
        ]]

    def _merge(self, rows: int) -> dict[str, int]:
        interaction = _table(Interaction)
        customer, offer = _table(Customer), _table(Offer)
        join = f"""FROM {INTERACTION_STAGE.name} s
            JOIN {customer} c ON c.external_id = s.customer_external_id
            JOIN {offer} o ON o.external_id = s.offer_external_id"""
        existing = _scalar(
            f"""SELECT COUNT(*) {join} JOIN {interaction} i ON i.customer_id = c.id
            AND i.offer_id = o.id AND i.kind = s.kind AND i.occurred_at = s.occurred_at"""
        )
        _execute(
            f"""
            INSERT INTO {interaction} (customer_id, offer_id, kind, occurred_at, value, campaign)
            SELECT c.id, o.id, s.kind, s.occurred_at, s.value, s.campaign {join}
            WHERE true
            ON CONFLICT (customer_id, offer_id, kind, occurred_at) DO UPDATE SET
                value = COALESCE(excluded.value, {interaction}.value),
                campaign = COALESCE(NULLIF(excluded.campaign, ''), {interaction}.campaign)
            """
        )
        return {"created": rows - existing, "updated": existing}


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    label: str
    data_type: str
    # A few observed values (text fields), offered as choices in the segment builder.
    samples: tuple[Any, ...] = ()


SAMPLE_VALUES_KEPT = 20


def catalogue_attributes(specs: Iterable[AttributeSpec]) -> None:
    """Record profile attributes in the ProfileField catalogue; an existing field keeps its
    type and label, and text fields gain newly seen sample values."""
    specs = list(specs)
    with transaction.atomic():
        existing = {
            f.name: f
            for f in ProfileField.objects.select_for_update().filter(
                name__in=[s.name for s in specs]
            )
        }
        new = []
        for spec in specs:
            stored = existing.get(spec.name)
            if stored is None:
                samples = list(spec.samples) if spec.data_type == ProfileField.DataType.TEXT else []
                new.append(ProfileField(name=spec.name, label=spec.label[:100],
                                        data_type=spec.data_type, sample_values=samples))
            elif stored.data_type == ProfileField.DataType.TEXT:
                merged = list(stored.sample_values)
                merged += [v for v in spec.samples if v not in merged]
                if merged[:SAMPLE_VALUES_KEPT] != stored.sample_values:
                    stored.sample_values = merged[:SAMPLE_VALUES_KEPT]
                    stored.save(update_fields=["sample_values"])
        ProfileField.objects.bulk_create(new, ignore_conflicts=True)
