"""What every exporter reads and returns."""

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from marketing.exporters.normalise import sha256_hex


class Member(NamedTuple):
    """One audience member as the exporters see it: the pseudonym, the frozen score and the
    raw identifiers (None where the customer has no identity row) and the platform digests
    stored in their place at import (HASH_IDENTIFIERS_ON_UPLOAD; ``stored_digests`` reads
    them). Writers unpack members by position, so a plain tuple in this order will do."""

    pseudonym: str
    score: float | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    postal_code: str | None = None
    digests: dict[str, str] | str | None = None


def stored_digests(value: dict[str, str] | str | None) -> dict[str, str]:
    """The digests stored with an identity, as the ORM gives them (a dict) or as raw SQL
    does on SQLite (JSON text); {} for none."""
    if not value:
        return {}
    if isinstance(value, str):
        return json.loads(value) if value != "{}" else {}
    return value


def member_identifiers(
    member: Sequence[Any],
    made: tuple[str, ...],
    plain: tuple[Any, ...],
    platform: str,
    fields: tuple[str, ...],
) -> tuple[str, ...]:
    """``made`` (from the member's plain identifiers), with the digests stored at import in
    place of blank identifiers; the stored digests are the member's ninth value, if any."""
    stored = member[8] if len(member) > 8 else None
    if not stored or stored == "{}":
        return made
    return with_stored(made, plain, stored_digests(stored), platform, fields)


def with_stored(
    made: tuple[str, ...],
    plain: tuple[Any, ...],
    stored: dict[str, str],
    platform: str,
    fields: tuple[str, ...],
) -> tuple[str, ...]:
    """Per field: the value ``made`` from the plain identifier where there is one, otherwise
    the platform's digest stored in its place at import ("" where there is neither)."""
    if not stored:
        return made
    return tuple(
        value if raw else stored.get(f"{platform}:{name}", "")
        for value, raw, name in zip(made, plain, fields, strict=True)
    )


@dataclass
class WriteResult:
    rows: int = 0
    # Pseudonyms of members left out of the file because nothing in it could be matched.
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Readiness:
    """Which identifiers of one member survive the platform's normalisation; None: the
    platform does not match on that kind of identifier."""

    email: bool | None
    phone: bool | None
    address: bool | None

    @property
    def matchable(self) -> bool:
        return bool(self.email or self.phone or self.address)


K = TypeVar("K", bound=Hashable)


def cached_hasher(normalise: Callable[[K], str], limit: int = 10_000) -> Callable[[K], str]:
    """``sha256_hex(normalise(key))`` remembered per key, for fields with few distinct values
    (names, countries, postcodes). Made per export and dropped with it, so no digest outlives
    the file it was made for.
    """
    cache: dict[K, str] = {}

    def hashed(key: K) -> str:
        digest = cache.get(key)
        if digest is None:
            if len(cache) >= limit:
                cache.clear()
            digest = cache[key] = sha256_hex(normalise(key))
        return digest

    return hashed
