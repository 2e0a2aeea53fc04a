"""Writing checked rows in bulk, for CSV imports and the demo loader alike.

A writer first *stages* rows in a temporary table (PostgreSQL: COPY; SQLite: executemany),
which writes nothing the rest of the product can see. ``merge()`` then upserts the staged
rows into the real tables with a few set-based statements; the caller runs it inside one
transaction, so an import is either wholly written or not at all. Upserts key on the external
id (interactions on customer, offer, kind and time), so loading the same rows twice changes
nothing. A blank cell is "no statement": it never overwrites a stored value.
"""

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.utils import timezone

from marketing.exporters.hashing import HASHED_FIELDS, digest_keys, identity_hasher
from marketing.ingest import IngestError
from marketing.ingest.staging import (
    StageTable,
    adapted_params,
    execute_sql,
    scalar_sql,
    table_name,
)
from marketing.models import (
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    LawfulBasis,
    Offer,
)
from marketing.pseudonyms import pseudonymiser
from marketing.services.current_consent import (
    TABLES as CURRENT_CONSENT_TABLES,
)
from marketing.services.current_consent import (
    current_consent_refresh_locked,
    current_consent_refresh_written,
    current_rows_sql,
)
from marketing.services.pseudonym_keys import PseudonymKeyError, pseudonym_key_check


class ConsentStatement(NamedTuple):
    """One stated consent; a tuple, so that equal statements share their encoding."""

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
    consents: Sequence[ConsentStatement] = ()


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


_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _profile_encoder() -> Callable[[dict[str, Any]], str]:
    """Compact JSON for flat profiles (text, whole numbers, decimals, yes/no), the same text
    ``_compact_json`` gives, in half its time for the millions of small objects of a big
    import; a profile holding anything else goes to ``_compact_json``."""
    keys: dict[str, str] = {}
    literals: dict[Any, str] = {True: "true", False: "false"}

    def encode(profile: dict[str, Any]) -> str:
        parts = []
        for key, value in profile.items():
            prefix = keys.get(key)
            if prefix is None:
                prefix = keys[key] = encode_basestring(key) + ":"
            kind = type(value)
            if kind is str:
                parts.append(prefix + encode_basestring(value))
            elif kind is int or (kind is float and math.isfinite(value)):
                parts.append(prefix + repr(value))
            elif kind is bool:
                parts.append(prefix + literals[value])
            else:
                return _compact_json(profile)
        return "{" + ",".join(parts) + "}"

    return encode


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
    # Tables the merge writes to and looks rows up in.
    merged_models: tuple[type, ...] = ()

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._postgres = connection.vendor == "postgresql"
        self._ops = connection.ops
        self._checks_immediate = False

    def __enter__(self):
        for table in self.stage_tables:
            table.create()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._checks_immediate and connection.in_atomic_block:
            # Still inside a caller's transaction: give its foreign keys their deferral back.
            execute_sql("SET CONSTRAINTS ALL DEFERRED")
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
        first_chunk = not self.counts
        if first_chunk and self._postgres:
            # Compiling these short per-chunk statements (JIT) takes longer than running
            # them. A chunk's staged rows are sorted, joined and kept between the steps of a
            # merge: with the default 4 MB they would go through temporary files. Foreign keys
            # are checked as each chunk is written, while the next one is read, rather than
            # all at once at commit. All three last until the import's transaction ends.
            execute_sql("SET LOCAL jit = off")
            execute_sql("SET LOCAL work_mem = '64MB'")
            execute_sql("SET CONSTRAINTS ALL IMMEDIATE")
            self._checks_immediate = True
        for table, payload in zip(self.stage_tables, prepared.payloads, strict=True):
            table.load(payload)
        if first_chunk:
            self._refresh_statistics()
        self.counts.update(self._merge(prepared.rows))
        if first_chunk:
            self._refresh_statistics()
        for table in self.stage_tables:
            table.clear()

    def _refresh_statistics(self) -> None:
        """The merges look stored rows up one by one through indexes. Without statistics
        (a new table, or rows written since the last ANALYZE) the planner may scan a whole
        table, or a worse index, for every staged row. ANALYZE inside the transaction also
        samples the rows this import has written so far; once at the start and once after
        the first chunk is enough, as the estimates then grow with the table."""
        if self._postgres:
            execute_sql(f"ANALYZE {', '.join(table_name(model) for model in self.merged_models)}")

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
        *((name, "text") for name in IDENTITY_FIELDS),
        # The platform digests that replace the hashed fields (HASH_IDENTIFIERS_ON_UPLOAD).
        ("digests", "jsonb"),
        # [[purpose, status, effective_at, expires_at, notice_version], ...]: kept with the
        # customer so that one id lookup serves both.
        ("consents", "jsonb"),
    ),
    id_columns=("customer_id",),
)


class CustomerWriter(Writer):
    """Customers with their identities and consent statements."""

    stage_tables = (CUSTOMER_STAGE,)
    merged_models = (Customer, CustomerIdentity, ConsentRecord)

    def __init__(self, *, source: str, by=None, now: datetime | None = None) -> None:
        super().__init__()
        self.source = source
        self.by_id = by.pk if getattr(by, "is_authenticated", False) else None
        self.now = now or timezone.now()
        # New pseudonyms must come from the key the stored ones were made with.
        try:
            pseudonym_key_check()
        except PseudonymKeyError as exc:  # the operator's next step, said to the uploader
            raise IngestError(str(exc)) from exc
        self._pseudonym = pseudonymiser()
        # Hashing on upload: the identifiers are staged only as the platforms' digests.
        self._digests = identity_hasher() if settings.HASH_IDENTIFIERS_ON_UPLOAD else None
        self._profile_json = _profile_encoder()
        # Rows share their consent statements (the same dates and answers), so each distinct
        # list of statements is encoded once.
        self._consents_json = lru_cache(maxsize=65_536)(self._encode_consents)

    def _encode_consents(self, statements: tuple[ConsentStatement, ...]) -> str:
        # Times as ISO text for PostgreSQL, in the stored text form for SQLite.
        when = _iso if self._postgres else self._ops.adapt_datetimefield_value
        return _compact_json(
            [
                [
                    c.purpose,
                    c.status,
                    c.effective_at and when(c.effective_at),
                    c.expires_at and when(c.expires_at),
                    c.notice_version,
                ]
                for c in statements
            ]
        )

    def _stage_rows(self, records: Sequence[CustomerRecord]) -> list[list[tuple]]:
        pseudonym, profile_json, consents_json, identity = (
            self._pseudonym,
            self._profile_json,
            self._consents_json,
            self._identity,
        )
        return [
            [
                (
                    record.external_id,
                    pseudonym(record.external_id),
                    profile_json(record.attributes),
                    *identity(record.identity),
                    consents_json(tuple(record.consents)) if record.consents else "[]",
                )
                for record in records
            ]
        ]

    def _identity(self, identity: Identity | None) -> tuple[str, ...]:
        """The staged identity columns and digests: as given, or, hashing on upload, with
        the hashed fields blank and their digests beside them."""
        if identity is None:
            return (*NO_IDENTITY, "{}")
        if self._digests is None:
            return (*identity, "{}")
        kept = tuple(
            "" if name in HASHED_FIELDS else value
            for name, value in zip(IDENTITY_FIELDS, identity, strict=True)
        )
        return (*kept, _compact_json(self._digests(identity)))

    def _merge(self, rows: int) -> dict[str, int]:
        if self._postgres:
            existing, identities, consents, consented = self._merge_at_once()
            # The current consent of the customers given records, in the import's
            # transaction: new customers' in the merge itself; stored customers' here, a
            # statement of its own, as it must read the records just added with the rest of
            # their history. Their customers are locked (the customer upsert locks each one
            # it merges), so no other writer adds to their history meanwhile.
            if consented:
                current_consent_refresh_locked(customer_ids=consented)
        else:
            execute_sql(*self._customer_upsert())
            # Created by this import (in this chunk or an earlier one): stamped with its time.
            CUSTOMER_STAGE.fill_ids("customer_id", Customer, "external_id", created_at=self.now)
            existing = scalar_sql(
                f"SELECT COUNT(*) FROM {CUSTOMER_STAGE.name} WHERE created = false"
            )
            identities = execute_sql(*self._identity_upsert(CUSTOMER_STAGE.name))
            consents = execute_sql(*self._consent_insert(CUSTOMER_STAGE.name))
            if consents:
                current_consent_refresh_written(
                    customers_sql=f"SELECT customer_id FROM {CUSTOMER_STAGE.name} "
                    "WHERE consents <> '[]'"
                )
        return {
            "created": rows - existing,
            "updated": existing,
            "identities": identities,
            "consents_added": consents,
        }

    def _merge_at_once(self) -> tuple[int, int, int, list[int]]:
        """PostgreSQL: customers, identities and consents in one statement. The customers
        written come back with their ids, so the staged rows need no id lookup nor a second
        write; only customers the upsert left unchanged are looked up by external id. The
        identities and consents see those rows in the same statement, and their foreign keys
        are checked at its end."""
        customers, customer_params = self._customer_upsert()
        identities, identity_params = self._identity_upsert("staged")
        consents, consent_params = self._consent_insert("staged")
        stage = CUSTOMER_STAGE.name
        # Customers this statement inserted have no history but the records it adds: their
        # current consent is worked out from those records here (the rule of the refresh,
        # marketing.services.current_consent), with no read of the history afterwards.
        new_records = """SELECT r.id, r.customer_id, r.purpose, r.status, r.effective_at,
            r.expires_at FROM consents r JOIN written w ON w.id = r.customer_id AND w.inserted"""
        current = CURRENT_CONSENT_TABLES.current
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH clock AS (
                    SELECT %s::timestamptz AS now
                ), written AS (
                    {customers}
                    RETURNING id, external_id, created_at = %s AS created, xmax = 0 AS inserted
                ), staged AS (
                    SELECT {", ".join(f"s.{name}" for name in IDENTITY_FIELDS)}, s.digests,
                        s.consents,
                        COALESCE(w.id, (SELECT c.id FROM {table_name(Customer)} c
                                        WHERE c.external_id = s.external_id)) AS customer_id,
                        COALESCE(w.created, false) AS created
                    FROM {stage} s LEFT JOIN written w ON w.external_id = s.external_id
                ), identities AS (
                    {identities}
                    RETURNING 1
                ), consents AS (
                    {consents}
                    RETURNING id, customer_id, purpose, status, effective_at, expires_at
                ), fresh AS (
                    INSERT INTO {current} (customer_id, purpose, status, record_id,
                        effective_at, expires_at, pending_at, updated_at)
                    SELECT s.customer_id, s.purpose, s.status, s.record_id, s.effective_at,
                        s.expires_at, s.pending_at, (SELECT now FROM clock)
                    FROM ({current_rows_sql(new_records, now="(SELECT now FROM clock)")}) s
                    RETURNING 1
                )
                SELECT (SELECT COUNT(*) FROM staged WHERE NOT created),
                    (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM consents),
                    (SELECT COALESCE(array_agg(DISTINCT c.customer_id), '{{}}') FROM consents c
                     WHERE NOT EXISTS (SELECT 1 FROM written w
                                       WHERE w.id = c.customer_id AND w.inserted)),
                    (SELECT COUNT(*) FROM fresh)
                """,
                adapted_params(
                    [timezone.now(), *customer_params, self.now, *identity_params, *consent_params]
                ),
            )
            existing, identities_written, consents_added, refresh, _ = cursor.fetchone()
            return existing, identities_written, consents_added, refresh

    def _customer_upsert(self) -> tuple[str, list[Any]]:
        customer = table_name(Customer)
        if self._postgres:
            merged = f"{customer}.attributes || EXCLUDED.attributes"
            changed = f"NOT {customer}.attributes @> EXCLUDED.attributes"
        else:
            merged = f"json_patch({customer}.attributes, excluded.attributes)"
            changed = f"{merged} <> {customer}.attributes"
        return (
            f"""
            INSERT INTO {customer} (external_id, pseudonym, attributes, created_at, updated_at)
            SELECT external_id, pseudonym, attributes, %s, %s FROM {CUSTOMER_STAGE.name} WHERE true
            ON CONFLICT (external_id) DO UPDATE
            SET attributes = {merged}, updated_at = excluded.updated_at
            WHERE {changed}
            """,
            [self.now, self.now],
        )

    def _identity_upsert(self, source: str) -> tuple[str, list[Any]]:
        """Identities of the staged customers in ``source`` (with their customer_id). A
        field given as digests blanks its stored plain value; digests are merged by key."""
        identity = table_name(CustomerIdentity)
        keep_stored = ", ".join(
            f"{name} = CASE WHEN {_has_digests('excluded.digests', name)} THEN '' "
            f"ELSE COALESCE(NULLIF(excluded.{name}, ''), {identity}.{name}) END"
            if name in HASHED_FIELDS
            else f"{name} = COALESCE(NULLIF(excluded.{name}, ''), {identity}.{name})"
            for name in IDENTITY_FIELDS
        )
        if self._postgres:
            digests, no_digests = f"{identity}.digests || excluded.digests", "'{}'::jsonb"
        else:
            digests, no_digests = f"json_patch({identity}.digests, excluded.digests)", "'{}'"
        stated = " OR ".join(f"s.{name} <> ''" for name in IDENTITY_FIELDS)
        return (
            f"""
            INSERT INTO {identity} (customer_id, {", ".join(IDENTITY_FIELDS)}, digests,
                updated_at)
            SELECT s.customer_id, {", ".join(f"s.{name}" for name in IDENTITY_FIELDS)},
                s.digests, %s
            FROM {source} s
            WHERE {stated} OR s.digests <> {no_digests}
            ON CONFLICT (customer_id) DO UPDATE SET {keep_stored}, digests = {digests},
                updated_at = excluded.updated_at
            """,
            [self.now],
        )

    def _consent_insert(self, source: str) -> tuple[str, list[Any]]:
        """Consent records for the statements of the staged customers in ``source`` (with
        their customer_id and whether this import created them)."""
        # Consent history is append-only: a statement is added unless it repeats what is
        # stored. A dated statement repeats a record of the same date and status anywhere in
        # the history; an undated one (it takes effect now) repeats the current, latest
        # record when that has the same status. Notice version and expiry count when given.
        # Customers this import created have no history to repeat. Each check is a scalar
        # subquery on the (customer, purpose, date) index: an index lookup per staged row.
        record = table_name(ConsentRecord)
        same_terms = """r.status = s.status
            AND (s.notice_version = '' OR r.notice_version = s.notice_version)
            AND (s.expires_at IS NULL OR r.expires_at = s.expires_at)"""
        return (
            f"""
            INSERT INTO {record} (customer_id, purpose, status, lawful_basis, effective_at,
                expires_at, source, notice_version, note, recorded_at, recorded_by_id)
            SELECT s.customer_id, s.purpose, s.status, %s, COALESCE(s.effective_at, %s),
                s.expires_at, %s, s.notice_version, '', %s, %s
            FROM ({_staged_consents(source)}) s
            WHERE s.created OR (CASE WHEN s.effective_at IS NOT NULL THEN (
                SELECT r.id FROM {record} r
                WHERE r.customer_id = s.customer_id AND r.purpose = s.purpose
                  AND r.effective_at = s.effective_at AND {same_terms}
                LIMIT 1
            ) ELSE (
                SELECT r.id FROM {record} r
                WHERE r.id = (
                    SELECT l.id FROM {record} l
                    WHERE l.customer_id = s.customer_id AND l.purpose = s.purpose
                    ORDER BY l.effective_at DESC, l.id DESC LIMIT 1
                ) AND {same_terms}
            ) END) IS NULL""",
            [LawfulBasis.CONSENT, self.now, self.source, self.now, self.by_id],
        )


def _has_digests(column: str, field: str) -> str:
    """SQL: the JSON ``column`` holds a digest of the identity field ``field``."""
    keys = digest_keys(field)
    if connection.vendor == "postgresql":
        return f"{column} ?| array[{', '.join(repr(key) for key in keys)}]"
    return (
        "("
        + " OR ".join(f"json_extract({column}, '$.\"{key}\"') IS NOT NULL" for key in keys)
        + ")"
    )


def _staged_consents(source: str) -> str:
    """The consent statements of the staged customers in ``source`` as rows (customer_id,
    created, purpose, status, effective_at, expires_at, notice_version)."""
    if connection.vendor == "postgresql":
        return f"""SELECT s.customer_id, s.created, e->>0 AS purpose, e->>1 AS status,
            (e->>2)::timestamptz AS effective_at, (e->>3)::timestamptz AS expires_at,
            e->>4 AS notice_version
            FROM {source} s CROSS JOIN LATERAL jsonb_array_elements(s.consents) AS e"""
    item = "json_extract(e.value, '$[{}]')".format
    return f"""SELECT s.customer_id, s.created, {item(0)} AS purpose, {item(1)} AS status,
        {item(2)} AS effective_at, {item(3)} AS expires_at, {item(4)} AS notice_version
        FROM {source} s, json_each(s.consents) AS e"""


def _iso(value: datetime) -> str:
    return value.isoformat()


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
    id_columns=("offer_id",),
)


class OfferWriter(Writer):
    stage_tables = (OFFER_STAGE,)
    merged_models = (Offer,)

    def __init__(self, *, now: datetime | None = None) -> None:
        super().__init__()
        self.now = now or timezone.now()

    def _stage_rows(self, records: Sequence[OfferRecord]) -> list[list[tuple]]:
        return [
            [
                (r.external_id, r.title, r.category, r.description, r.price, r.unit_cost)
                for r in records
            ]
        ]

    def _merge(self, rows: int) -> dict[str, int]:
        offer = table_name(Offer)
        execute_sql(
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
        OFFER_STAGE.fill_ids("offer_id", Offer, "external_id", created_at=self.now)
        existing = scalar_sql(f"SELECT COUNT(*) FROM {OFFER_STAGE.name} WHERE created = false")
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
    id_columns=("customer_id", "offer_id"),
)


class InteractionWriter(Writer):
    stage_tables = (INTERACTION_STAGE,)
    merged_models = (Interaction,)

    def _stage_rows(self, records: Sequence[InteractionRecord]) -> list[list[tuple]]:
        return [
            [
                (
                    r.customer_external_id,
                    r.offer_external_id,
                    r.kind,
                    r.occurred_at,
                    r.value,
                    r.campaign,
                )
                for r in records
            ]
        ]

    def _merge(self, rows: int) -> dict[str, int]:
        interaction, stage = table_name(Interaction), INTERACTION_STAGE.name
        INTERACTION_STAGE.fill_ids("customer_id", Customer, "customer_external_id")
        INTERACTION_STAGE.fill_ids("offer_id", Offer, "offer_external_id")
        existing = scalar_sql(
            f"""SELECT COUNT(*) FROM {stage} s WHERE (
                SELECT i.id FROM {interaction} i WHERE i.customer_id = s.customer_id
                AND i.offer_id = s.offer_id AND i.kind = s.kind AND i.occurred_at = s.occurred_at
            ) IS NOT NULL"""
        )
        execute_sql(
            f"""
            INSERT INTO {interaction} (customer_id, offer_id, kind, occurred_at, value, campaign)
            SELECT customer_id, offer_id, kind, occurred_at, value, campaign FROM {stage}
            WHERE customer_id IS NOT NULL AND offer_id IS NOT NULL
            ON CONFLICT (customer_id, offer_id, kind, occurred_at) DO UPDATE SET
                value = COALESCE(excluded.value, {interaction}.value),
                campaign = COALESCE(NULLIF(excluded.campaign, ''), {interaction}.campaign)
            """
        )
        return {"created": rows - existing, "updated": existing}
