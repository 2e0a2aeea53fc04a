"""Staging tables for bulk writes: a temporary table private to the database connection,
loaded with COPY on PostgreSQL (executemany on SQLite), and the small SQL helpers the
writers' set-based merges use."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection


def table_name(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@dataclass(frozen=True)
class StageTable:
    """A temporary table private to this database connection."""

    name: str
    # (column, PostgreSQL type) loaded from records. Text columns hold "" for blanks.
    columns: tuple[tuple[str, str], ...]
    # Filled in by the merge (see ``fill_ids``): the stored row's id, and whether this
    # import created that row.
    id_columns: tuple[str, ...] = ()

    def create(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            if connection.vendor == "postgresql":
                cols = [f"{name} {kind}" for name, kind in self.columns]
                cols += [f"{name} bigint" for name in self.id_columns]
                cols.append("created boolean")
            else:
                # Untyped columns keep values exactly as given (JSON text, timestamps).
                cols = [name for name, _ in self.columns] + list(self.id_columns)
                cols.append("created")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({', '.join(cols)})")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def encode(self, rows: list[tuple], *, postgres: bool, ops) -> Any:
        """Rows ready for ``load``: COPY text for PostgreSQL, or adapted tuples. Uses no
        database connection, so it may run on another thread."""
        if postgres:
            return _copy_text(rows, len(self.columns))
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
                cursor.copy_expert(
                    f"COPY {self.name} ({', '.join(names)}) FROM STDIN",
                    io.BytesIO(payload),
                    len(payload),  # one read: each read waits for the reading thread's GIL
                )
            else:
                placeholders = ", ".join(["%s"] * len(names))
                cursor.executemany(
                    f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({placeholders})",
                    payload,
                )

    def fill_ids(
        self, id_column: str, model, key: str, *, created_at: datetime | None = None
    ) -> None:
        """Look up the stored row's id for every staged row by external id; with
        ``created_at`` (the import's time), also whether the import created that row.

        A scalar subquery per row is an index lookup; a join could scan the whole table
        again for every chunk.
        """
        table = f"{table_name(model)} t WHERE t.external_id = {self.name}.{key}"
        if created_at is None:
            execute_sql(f"UPDATE {self.name} SET {id_column} = (SELECT t.id FROM {table})")
        else:
            execute_sql(
                f"UPDATE {self.name} SET ({id_column}, created) = "
                f"(SELECT t.id, t.created_at = %s FROM {table})",
                [created_at],
            )

    def clear(self) -> None:
        with connection.cursor() as cursor:
            verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
            cursor.execute(f"{verb} {self.name}")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: list[tuple], width: int) -> bytes:
    """Rows in COPY's text format: tab-separated, one line each, \\N for NULL.

    Most rows are all text with nothing to escape; joining them as they are and checking
    the line afterwards is several times faster than a csv writer (which quotes every JSON
    value). Any other row takes the slow path, value by value.
    """
    lines = []
    tabs = width - 1
    for row in rows:
        try:
            line = "\t".join(row)
        except TypeError:  # a value that is not text: None, a number, a time
            line = None
        if line is None or line.count("\t") != tabs or "\\" in line or "\n" in line or "\r" in line:
            line = "\t".join([_copy_value(value) for value in row])
        lines.append(line)
    lines.append("")
    return "\n".join(lines).encode()


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def adapted_params(params: Sequence[Any]) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(p) if isinstance(p, datetime) else p for p in params]


def execute_sql(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, adapted_params(params))
        return cursor.rowcount


def scalar_sql(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]
