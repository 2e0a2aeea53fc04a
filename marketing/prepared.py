"""Queries built once and run again with new values, for the paths a request takes many
times a second (the next best offers, the API's token and role checks).

Django builds a queryset's SQL anew each time it is evaluated. For a read of one indexed
row with a subquery or two, that costs more CPU than the database spends answering it
(about a millisecond of Python per query here). A ``PreparedQuery`` builds its queryset
once per database connection, with a stand-in for each value that changes between requests,
notes where each stand-in's database form sits among the SQL's parameters, and then runs
the same SQL with the real values in those places, converting the rows as the queryset
itself would (JSON, booleans, dates from the database's forms).

The queryset still comes from the selectors (the consent rule, the champion's read), so the
rules live in one place; only their translation into SQL is kept.

On PostgreSQL the server keeps it too: the SQL is prepared once per database session
(``PREPARE``, with the query's own constants written in and a parameter per named value)
and planned once for any value (the connection's ``plan_cache_mode``, set in the
settings); each request runs the prepared statement (``EXECUTE``), so that the server does
not parse and plan it again (planning the customer's read took half a millisecond, running
it less than a tenth). ``DB_PREPARED_STATEMENTS=false`` turns this off for a connection
pooler that hands a session's statements to other clients (PgBouncer in transaction mode).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, QuerySet


def _stand_in(field: Field, number: int) -> Any:
    """A value of ``field``'s kind that no real request sends, different for each slot."""
    kind = field.get_internal_type()
    if kind in ("CharField", "TextField"):
        return f"\x1f prepared stand-in {number} \x1f"
    if kind == "DateTimeField":
        return datetime(1901, 2, 3, 4, 5, 6, 700_000 + number, tzinfo=UTC)
    if kind in ("IntegerField", "BigIntegerField", "AutoField", "BigAutoField"):
        return -987_654_321 - number
    raise ImproperlyConfigured(f"No stand-in for a value of a {kind}")


# Statement names, one per prepared query of the process.
_names = itertools.count(1)
# Django's placeholders and its escaped percent sign.
_PLACEHOLDER = re.compile(r"%[%s]")


class _Statement(NamedTuple):
    """The SQL prepared on the server under ``name``: ``prepare`` with ``constants`` (the
    query's own values, written into the statement so that the server plans with them),
    then ``execute`` with one value per slot name, in ``names`` order."""

    prepare: str
    constants: list[Any]
    execute: str
    names: list[str]


def _statement(name: str, sql: str, params: list[Any], slots: dict[str, list[int]]) -> _Statement:
    number_at = {at: number for number, ats in enumerate(slots.values(), 1) for at in ats}
    constants: list[Any] = []
    positions = itertools.count()

    def placeholder(found: re.Match) -> str:
        if found[0] == "%%":
            return "%%"
        at = next(positions)
        if at in number_at:
            return f"${number_at[at]}"
        constants.append(params[at])
        return "%s"

    body = _PLACEHOLDER.sub(placeholder, sql)
    arguments = f"({', '.join(['%s'] * len(slots))})" if slots else ""
    return _Statement(
        f"PREPARE {name} AS {body}", constants, f"EXECUTE {name}{arguments}", list(slots)
    )


class _Compiled(NamedTuple):
    sql: str
    # The stand-ins' parameters; ``slots``: where each named value goes among them.
    params: list[Any]
    slots: dict[str, list[int]]
    compiler: Any
    # Reading the database's forms (JSON text, 0/1, date text) as the queryset would.
    converters: dict
    # Prepared on the server (PostgreSQL), or None: the SQL is sent each time.
    statement: _Statement | None


class PreparedQuery:
    """``build(**values)`` gives the queryset (``values_list``, sliced as wanted);
    ``fields`` names each value and the model field whose database form it takes (the field
    it is compared with). ``rows(**values)`` returns what ``list(build(**values))`` would."""

    def __init__(
        self, build: Callable[..., QuerySet], *, using: str = DEFAULT_DB_ALIAS, **fields: Field
    ) -> None:
        self._build = build
        self._using = using
        self._fields = fields
        self._name = f"campaign_studio_prepared_{next(_names)}"
        # Database connections belong to a thread, and so does the SQL built on one.
        self._local = threading.local()

    def _compiled(self, connection: Any) -> _Compiled:
        kept = getattr(self._local, "kept", None)
        if kept is not None and kept[0] is connection:
            return kept[1]
        stand_ins = {
            name: _stand_in(field, number)
            for number, (name, field) in enumerate(self._fields.items())
        }
        queryset = self._build(**stand_ins)
        if queryset._iterable_class.__name__ != "ValuesListIterable":
            raise ImproperlyConfigured("A prepared query reads a values_list()")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots: dict[str, list[int]] = {}
        for name, value in stand_ins.items():
            form = self._fields[name].get_db_prep_value(value, connection, prepared=False)
            slots[name] = [at for at, param in enumerate(params) if param == form]
            if not slots[name]:
                raise ImproperlyConfigured(f"The query does not use the value {name!r}")
        columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ImproperlyConfigured("A prepared query reads no composite field")
        statement = (
            _statement(self._name, sql, list(params), slots)
            if connection.vendor == "postgresql" and settings.DATABASE_PREPARED_STATEMENTS
            else None
        )
        compiled = _Compiled(
            sql, list(params), slots, compiler, compiler.get_converters(columns), statement
        )
        self._local.kept = (connection, compiled)
        return compiled

    def rows(self, **values: Any) -> list[tuple]:
        if values.keys() != self._fields.keys():
            raise TypeError(f"Values for {sorted(self._fields)} are needed, not {sorted(values)}")
        connection = connections[self._using]
        compiled = self._compiled(connection)
        params = list(compiled.params)
        for name, value in values.items():
            form = self._fields[name].get_db_prep_value(value, connection, prepared=False)
            for at in compiled.slots[name]:
                params[at] = form
        with connection.cursor() as cursor:
            statement = compiled.statement
            if statement is None:
                cursor.execute(compiled.sql, params)
            else:
                # A session's prepared statements end with it: prepared again on a new one.
                session = connection.connection
                if getattr(self._local, "prepared_on", None) is not session:
                    cursor.execute(statement.prepare, statement.constants)
                    self._local.prepared_on = session
                cursor.execute(
                    statement.execute, [params[compiled.slots[name][0]] for name in statement.names]
                )
            fetched = cursor.fetchall()
        if compiled.converters:
            fetched = compiled.compiler.apply_converters(fetched, compiled.converters)
        return [tuple(row) for row in fetched]
