"""Keyset (cursor) pagination for the lists that grow with the customer base.

A page is the rows after (or before) the last row shown, in an order that an index holds:
one field and the id as tiebreaker, compared as a row, ``(created_at, id) < (t, 42)``. The
database starts reading where the previous page stopped, so page 40,000 costs what page 1
costs, where ``OFFSET`` reads and throws away every row before the page.

A cursor is opaque to the client (signed, so a changed one is refused rather than followed)
and names the ordering it was made for. Nothing here counts the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.core import signing
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy

# Django's own row-value comparison (it backs composite primary keys): ``(a, b) < (x, y)`` on
# PostgreSQL, which an index on (a, b) answers; the equivalent ORs on SQLite.
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

from marketing.errors import ApplicationError

M = TypeVar("M", bound=models.Model)

CURSOR_SALT = "marketing.keyset.cursor"
TIEBREAKER = "id"


class BadCursor(ApplicationError):
    """A cursor that was changed, cut short or made for another list or ordering."""

    def __init__(self, reason: str) -> None:
        super().__init__(errors={"cursor": f"This page link is not valid ({reason}); start again."})


@dataclass(frozen=True)
class KeysetOrdering:
    """One offered order of a list: ``field`` (``-`` for descending), ties broken by id."""

    key: str
    fields: tuple[str, ...]
    descending: bool

    @classmethod
    def of(cls, model: type[models.Model], key: str) -> KeysetOrdering:
        """The ordering ``key`` ("-created_at", "external_id", "id") of ``model``. A field that
        is unique on its own needs no tiebreaker; every field must be NOT NULL, since a row
        comparison with NULL is never true and such rows would fall out of every page."""
        name = key.removeprefix("-")
        fields = (name,) if _is_unique(model, name) else (name, TIEBREAKER)
        for field_name in fields:
            field = model._meta.get_field(field_name)
            if not isinstance(field, models.Field) or field.null:
                raise ImproperlyConfigured(
                    f"{model.__name__}.{field_name} cannot order a keyset list (it may be null)"
                )
        return cls(key=key, fields=fields, descending=key.startswith("-"))

    def order_by(self, *, backwards: bool = False) -> list[OrderBy]:
        descending = self.descending != backwards
        return [F(name).desc() if descending else F(name).asc() for name in self.fields]

    def position(self, row: models.Model) -> tuple[Any, ...]:
        return tuple(getattr(row, name) for name in self.fields)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, ``backwards``, before) the row at ``position``."""

    position: tuple[Any, ...]
    backwards: bool


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    rows: list[M]
    # Opaque tokens for the next and the previous page; None at either end.
    next_cursor: str | None
    previous_cursor: str | None


def encode_cursor(ordering: KeysetOrdering, position: tuple[Any, ...], *, backwards: bool) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in position]
    return signing.dumps({"o": ordering.key, "p": values, "b": backwards}, salt=CURSOR_SALT)


def decode_cursor(token: str, ordering: KeysetOrdering, model: type[models.Model]) -> Cursor:
    """The cursor ``token`` stands for; raises ``BadCursor`` for anything else."""
    try:
        data = signing.loads(token, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise BadCursor("it was changed or cut short") from None
    if not isinstance(data, dict) or set(data) != {"o", "p", "b"}:
        raise BadCursor("it is not a cursor of this list")
    if data["o"] != ordering.key:
        raise BadCursor("it was made for another order of the list")
    values = data["p"]
    if not isinstance(values, list) or len(values) != len(ordering.fields):
        raise BadCursor("it is not a cursor of this list")
    position = []
    for name, value in zip(ordering.fields, values, strict=True):
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field) or value is None:
            raise BadCursor("it is not a cursor of this list")
        try:
            position.append(field.to_python(value))
        except ValidationError:
            raise BadCursor(f"its {name} is not valid") from None
    return Cursor(position=tuple(position), backwards=data["b"] is True)


def keyset_page(
    queryset: QuerySet[M], ordering: KeysetOrdering, *, size: int, cursor: str | None = None
) -> KeysetPage[M]:
    """One page of ``queryset`` in ``ordering``, starting at ``cursor`` (None: the first
    page). Reads ``size + 1`` rows to know whether there is a next page, never a count."""
    start = decode_cursor(cursor, ordering, queryset.model) if cursor else None
    backwards = start is not None and start.backwards
    rows = queryset.order_by(*ordering.order_by(backwards=backwards))
    if start is not None:
        after = TupleLessThan if ordering.descending != backwards else TupleGreaterThan
        rows = rows.filter(after(Tuple(*(F(name) for name in ordering.fields)), start.position))
    found = list(rows[: size + 1])
    if backwards and not found:
        # Nothing is left before this point (rows were deleted): the list starts here.
        return keyset_page(queryset, ordering, size=size)
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    # An empty page after a cursor (the rows after it were deleted) still leads back.
    first = ordering.position(found[0]) if found else start.position if start else None
    last = ordering.position(found[-1]) if found else None
    # Coming back from a later page there is always a next one; coming forward, a previous.
    has_next = more if not backwards else start is not None
    has_previous = more if backwards else start is not None
    return KeysetPage(
        rows=found,
        next_cursor=encode_cursor(ordering, last, backwards=False)
        if has_next and last is not None
        else None,
        previous_cursor=encode_cursor(ordering, first, backwards=True)
        if has_previous and first is not None
        else None,
    )


def _is_unique(model: type[models.Model], name: str) -> bool:
    field = model._meta.get_field(name)
    if getattr(field, "primary_key", False) or getattr(field, "unique", False):
        return True
    return any(
        isinstance(c, models.UniqueConstraint)
        and tuple(c.fields) == (name,)
        and c.condition is None
        and not c.expressions
        for c in model._meta.constraints
    )
