"""Checking the rows of an upload: each row becomes a record for a writer, or RowErrors.

A checker is built from the file's headers and the column mapping. ``check`` looks at one
row on its own (types, required values, duplicates within the file); ``check_chunk`` looks
at a batch of checked rows against the database (e.g. unknown customers).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, cast

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from marketing.exporters.hashing import HASHED_FIELDS
from marketing.ingest.fields import ATTRIBUTE_PREFIX, CONSENT_PREFIX, TARGET_FIELDS
from marketing.ingest.values import (
    DATE,
    NULL_TOKENS,
    PROFILE_PARSERS,
    TEXT,
    TEXT_TYPES,
    BadValue,
    cached,
    max_length,
    phone_for_country,
    to_consent_status,
    to_country,
    to_date,
    to_datetime,
    to_email,
    to_money,
    to_phone,
    to_signed_money,
)
from marketing.ingest.wording import (
    EMPTY_REQUIRED,
    FIELD_COUNT,
    LONGER_THAN,
    OVERRIDES,
    PROBLEM,
    PROBLEM_COLUMN,
    PROBLEM_COLUMN_VALUE,
    PROBLEM_VALUE,
    REPEATS_CUSTOMER,
    REPEATS_OFFER,
    REPEATS_RESPONSE,
)
from marketing.ingest.writers import (
    IDENTITY_FIELDS,
    ConsentStatement,
    CustomerRecord,
    Identity,
    InteractionRecord,
    OfferRecord,
)
from marketing.models import ConsentRecord, Customer, Interaction, Offer
from marketing.pii import mask_value
from marketing.selectors.consent import StandingRefusal, standing_refusals
from marketing.stored_texts import english

_SHOWN_VALUE = 200
_within_32 = max_length(32)
# Distinct combinations of consent cells whose statements are kept for the following rows.
_STATEMENTS_KEPT = 100_000
# Consent dates may be a little ahead of the server clock (time zones), not more.
_FUTURE_SLACK = timedelta(days=1)
# Rows of refused grants named in the audit event (the error file lists every one).
_REFUSED_ROWS_KEPT = 50


@dataclass(frozen=True)
class RowError:
    row: int  # data row, the header not counted
    line: int  # line of the file where the row starts (the header is line 1)
    column: str  # the file's header, "" for the whole row
    value: str
    reason: str  # completes "'<value>' ..." ("is not a number"), or stands alone

    def as_dict(self, *, identity_field: str = "") -> dict[str, Any]:
        """The problem as kept and shown: a value from a column of personal identifiers
        (``identity_field``, e.g. "email") is masked, "masked" says whether it is."""
        masked = bool(identity_field and self.value)
        value = mask_value(identity_field, self.value) if masked else self.value
        return {
            "row": self.row,
            "line": self.line,
            "column": self.column,
            "value": value,
            "masked": masked,
            "reason": self.reason,
            "message": problem_message(self.row, self.line, self.column, value, self.reason),
        }


def problem_message(row: int, line: int, column: str, value: str, reason: str) -> str:
    """ "Row 4 (line 5), column 'email': 'j***@***' is not an email address"."""
    params = {"row": row, "line": line, "column": column, "value": value, "reason": reason}
    if column:
        return (PROBLEM_COLUMN_VALUE if value else PROBLEM_COLUMN) % params
    return (PROBLEM_VALUE if value else PROBLEM) % params


def _error(row: int, line: int, column: str, value: str, reason: str) -> RowError:
    if len(value) > _SHOWN_VALUE:
        value = value[:_SHOWN_VALUE] + "…"
    return RowError(row, line, column, value, reason)


Checked = list[tuple[int, int, Any]]  # (row, line, record)


class RowChecker:
    """Common parts: column positions, the field-count check and duplicate detection."""

    kind = ""

    def __init__(
        self,
        headers: list[str],
        mapping: dict[str, str],
        *,
        attribute_types: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.headers = headers
        self.width = len(headers)
        self.mapping = mapping
        self._index = {header: i for i, header in enumerate(headers)}
        self._columns = {
            target: (self._index[header], header) for target, header in mapping.items() if header
        }
        self._labels = {spec.name: spec.label for spec in TARGET_FIELDS[self.kind]}
        # key -> (row << 32 | line) of its first row, packed to keep a million keys small.
        self._first_seen: dict[Any, int] = {}

    def column(self, target: str) -> tuple[int, str] | None:
        """(position, header) of the column mapped to ``target``; None when unmapped."""
        return self._columns.get(target)

    def check(self, row: int, line: int, fields: list[str]) -> Any | list[RowError]:
        if len(fields) != self.width:
            return [
                _error(
                    row,
                    line,
                    "",
                    "",
                    FIELD_COUNT % {"fields": len(fields), "width": self.width},
                )
            ]
        return self._check(row, line, fields)

    def _check(self, row: int, line: int, fields: list[str]) -> Any | list[RowError]:
        raise NotImplementedError

    def check_chunk(self, checked: Checked) -> tuple[Checked, list[RowError]]:
        return checked, []

    def count_existing(self, records: list[Any]) -> int:
        raise NotImplementedError

    def _required(
        self,
        target: str,
        fields: list[str],
        row: int,
        line: int,
        errors: list[RowError],
        limit: int = 128,
    ) -> str:
        index, header = self._columns[target]  # required, so always mapped
        text = fields[index].strip()
        if not text:
            errors.append(
                _error(row, line, header, "", EMPTY_REQUIRED % {"label": self._labels[target]})
            )
        elif len(text) > limit:
            errors.append(_error(row, line, header, text, LONGER_THAN % {"limit": limit}))
        return text

    def _once(
        self,
        key: Any,
        row: int,
        line: int,
        header: str,
        value: str,
        repeats: str,
        errors: list[RowError],
    ) -> None:
        """``repeats``: the reason, a template of the first row's "row" and "line"."""
        first = self._first_seen.setdefault(key, row << 32 | line)
        if first != row << 32 | line:
            errors.append(
                _error(
                    row,
                    line,
                    header,
                    value,
                    repeats % {"row": first >> 32, "line": first & 0xFFFFFFFF},
                )
            )

    def _optional(
        self,
        target: str,
        parse: Callable[[str], Any],
        fields: list[str],
        row: int,
        line: int,
        errors: list[RowError],
        default: Any = "",
    ) -> Any:
        value = self._cell(self.column(target), parse, fields, row, line, errors)
        return default if value is None else value

    @staticmethod
    def _cell(
        column: tuple[int, str] | None,
        parse: Callable[[str], Any],
        fields: list[str],
        row: int,
        line: int,
        errors: list[RowError],
    ) -> Any:
        """The parsed value of an optional column; None when unmapped, blank or invalid."""
        if column is None:
            return None
        text = fields[column[0]].strip()
        if not text:
            return None
        try:
            return parse(text)
        except BadValue as bad:
            errors.append(_error(row, line, column[1], text, str(bad)))
            return None


_within_254 = max_length(254)
_PHONE_SLOT = IDENTITY_FIELDS.index("phone")
_COUNTRY_SLOT = IDENTITY_FIELDS.index("country")


def _to_email(text: str) -> str:
    return to_email(_within_254(text))


class CustomerRows(RowChecker):
    kind = "customers"
    _IDENTITY_PARSERS: dict[str, Callable[[str], str]] = {
        "email": _to_email,
        "phone": to_phone,
        "first_name": max_length(100),
        "last_name": max_length(100),
        "country": to_country,
        "postal_code": max_length(20),
    }

    def __init__(
        self,
        headers: list[str],
        mapping: dict[str, str],
        *,
        attribute_types: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        super().__init__(headers, mapping)
        self.now = now or timezone.now()
        types = attribute_types or {}
        # (attribute, column index, header, parser or None for text)
        self.attributes = []
        for target, header in mapping.items():
            if target.startswith(ATTRIBUTE_PREFIX) and header:
                name = target[len(ATTRIBUTE_PREFIX) :]
                data_type = types.get(name, TEXT)
                parse = None if data_type in TEXT_TYPES else PROFILE_PARSERS[data_type]
                if data_type == DATE:
                    parse = cached(to_date)
                self.attributes.append((name, self._index[header], header, parse))
        self.identity = [
            (slot, *column, self._IDENTITY_PARSERS[name])
            for slot, name in enumerate(IDENTITY_FIELDS)
            if (column := self.column(name)) is not None
        ]
        self._phone_column = self.column("phone")
        # Hashing on upload: a bad identifier is reported without its value, which would
        # otherwise be kept in the error file and the job's messages.
        self._hidden_slots = (
            {slot for slot, name in enumerate(IDENTITY_FIELDS) if name in HASHED_FIELDS}
            if settings.HASH_IDENTIFIERS_ON_UPLOAD
            else set()
        )
        self.consents = [
            (spec.name[len(CONSENT_PREFIX) :], *column)
            for spec in TARGET_FIELDS[self.kind]
            if spec.data_type == "consent" and (column := self.column(spec.name)) is not None
        ]
        self.consent_date = self.column("consent_date")
        self.consent_expires = self.column("consent_expires")
        self.notice_version = self.column("notice_version")
        self._latest_consent_date = self.now + _FUTURE_SLACK
        # Consent dates repeat across rows; parse each distinct one once.
        self._to_datetime = cached(to_datetime)
        # Rows repeat the same consent cells (answers, date, expiry, notice) far more often
        # than not: the statements of each distinct combination are made once.
        consent_columns = [index for _, index, _ in self.consents] + [
            column[0]
            for column in (self.consent_date, self.consent_expires, self.notice_version)
            if column is not None
        ]
        self._consent_cells = itemgetter(*consent_columns) if self.consents else None
        self._statements: dict[Any, tuple[ConsentStatement, ...]] = {}
        self._id_index, self._id_header = self._columns["external_id"]
        self._consent_header = {purpose: header for purpose, _, header in self.consents}
        # Grants refused because they would override a person's or a steward's refusal: how
        # many, and the first rows, for the audit trail.
        self.refused_grants = 0
        self.refused_rows: list[int] = []

    def _check(self, row: int, line: int, fields: list[str]) -> Any | list[RowError]:
        errors: list[RowError] = []
        external_id = fields[self._id_index].strip()
        if external_id and len(external_id) <= 128:
            seen = row << 32 | line
            if self._first_seen.setdefault(external_id, seen) != seen:
                self._once(
                    external_id, row, line, self._id_header, external_id, REPEATS_CUSTOMER, errors
                )
        else:
            self._required("external_id", fields, row, line, errors)

        attributes: dict[str, Any] = {}
        for name, index, header, parse in self.attributes:
            text = fields[index].strip()
            if not text:
                continue
            if parse is None:
                attributes[name] = text
                continue
            try:
                attributes[name] = parse(text)
            except BadValue as bad:
                if text.lower() not in NULL_TOKENS:
                    errors.append(_error(row, line, header, text, str(bad)))

        identity = None
        if self.identity:
            values = ["", "", "", "", "", ""]
            for slot, index, header, parse in self.identity:
                text = fields[index].strip()
                if text:
                    try:
                        values[slot] = parse(text)
                    except BadValue as bad:
                        shown = "" if slot in self._hidden_slots else text
                        errors.append(_error(row, line, header, shown, str(bad)))
            if values[_PHONE_SLOT] and self._phone_column is not None:
                # Stored in E.164, a national number read as one of the row's country.
                index, header = self._phone_column
                try:
                    values[_PHONE_SLOT] = phone_for_country(
                        values[_PHONE_SLOT], values[_COUNTRY_SLOT]
                    )
                except BadValue as bad:
                    shown = "" if _PHONE_SLOT in self._hidden_slots else fields[index].strip()
                    errors.append(_error(row, line, header, shown, str(bad)))
                    values[_PHONE_SLOT] = ""
            if any(values):
                identity = cast(Identity, tuple(values))

        consents: tuple[ConsentStatement, ...] = ()
        if self._consent_cells is not None:
            cells = self._consent_cells(fields)
            known = self._statements.get(cells)
            if known is not None:
                consents = known
            else:
                consents = self._consents(fields, row, line, errors)
                if not errors and len(self._statements) < _STATEMENTS_KEPT:
                    self._statements[cells] = consents
        if errors:
            return errors
        return CustomerRecord(external_id, attributes, identity, consents)

    def _consents(self, fields, row, line, errors) -> tuple[ConsentStatement, ...]:
        stated = []
        for purpose, index, header in self.consents:
            text = fields[index].strip()
            if text:
                try:
                    stated.append((purpose, to_consent_status(text)))
                except BadValue as bad:
                    errors.append(_error(row, line, header, text, str(bad)))
        if not stated:
            return ()
        given = self._cell(self.consent_date, self._to_datetime, fields, row, line, errors)
        expires = self._cell(self.consent_expires, self._to_datetime, fields, row, line, errors)
        notice = self._cell(self.notice_version, _within_32, fields, row, line, errors) or ""
        if given is not None and given > self._latest_consent_date:
            errors.append(
                _error(
                    row,
                    line,
                    self.consent_date[1],  # type: ignore[index]
                    fields[self.consent_date[0]].strip(),  # type: ignore[index]
                    gettext_noop("is in the future"),
                )
            )
        if expires is not None and expires <= (given or self.now):
            errors.append(
                _error(
                    row,
                    line,
                    self.consent_expires[1],  # type: ignore[index]
                    fields[self.consent_expires[0]].strip(),  # type: ignore[index]
                    gettext_noop("is not after the consent date"),
                )
            )
        return tuple(
            ConsentStatement(purpose, status, given, expires, notice) for purpose, status in stated
        )

    def check_chunk(self, checked: Checked) -> tuple[Checked, list[RowError]]:
        """Refuse rows whose grant would override a withdrawal or denial that the person or a
        data steward recorded (any source but a CSV import): dated on or after it, or undated
        (an undated cell is no evidence of a consent given after it). One query a chunk."""
        granting = {
            r.external_id: r
            for _, _, r in checked
            if any(s.status == ConsentRecord.Status.GRANTED for s in r.consents)
        }
        if not granting:
            return checked, []
        refusals = standing_refusals(granting, self._consent_header)
        if not refusals:
            return checked, []
        kept: Checked = []
        errors: list[RowError] = []
        for row, line, record in checked:
            problems = [
                _error(row, line, self._consent_header[s.purpose], s.status, _overrides(s, refusal))
                for s in record.consents
                if s.status == ConsentRecord.Status.GRANTED
                and (refusal := refusals.get((record.external_id, s.purpose))) is not None
                and (s.effective_at is None or s.effective_at >= refusal.effective_at)
            ]
            if problems:
                errors += problems
                self.refused_grants += len(problems)
                if len(self.refused_rows) < _REFUSED_ROWS_KEPT:
                    self.refused_rows.append(row)
            else:
                kept.append((row, line, record))
        return kept, errors

    def count_existing(self, records: list[CustomerRecord]) -> int:
        return Customer.objects.filter(external_id__in=[r.external_id for r in records]).count()


def _overrides(statement: ConsentStatement, refusal: StandingRefusal) -> str:
    dated = statement.effective_at is not None
    withdrawn = refusal.status == ConsentRecord.Status.WITHDRAWN
    return OVERRIDES[dated, withdrawn] % {
        "given": f"{statement.effective_at:%Y-%m-%d}" if dated else "",
        "date": f"{refusal.effective_at:%Y-%m-%d}",
        "source": english(ConsentRecord.Source(refusal.source).label),
    }


class OfferRows(RowChecker):
    kind = "offers"

    def _check(self, row: int, line: int, fields: list[str]) -> Any | list[RowError]:
        errors: list[RowError] = []
        external_id = self._required("external_id", fields, row, line, errors)
        if external_id:
            self._once(
                external_id,
                row,
                line,
                self.mapping["external_id"],
                external_id,
                REPEATS_OFFER,
                errors,
            )
        title = self._required("title", fields, row, line, errors, limit=255)
        record = OfferRecord(
            external_id,
            title,
            category=self._optional("category", max_length(100), fields, row, line, errors),
            description=self._optional("description", str, fields, row, line, errors),
            price=self._optional("price", to_money, fields, row, line, errors, None),
            unit_cost=self._optional("unit_cost", to_money, fields, row, line, errors, None),
        )
        return errors or record

    def count_existing(self, records: list[OfferRecord]) -> int:
        return Offer.objects.filter(external_id__in=[r.external_id for r in records]).count()


INTERACTION_KINDS = {kind.value: kind.value for kind in Interaction.Kind} | {
    "view": Interaction.Kind.IMPRESSION.value,
    "impressions": Interaction.Kind.IMPRESSION.value,
    "clicks": Interaction.Kind.CLICK.value,
    "purchase": Interaction.Kind.CONVERSION.value,
    "conversions": Interaction.Kind.CONVERSION.value,
}


def _to_interaction_kind(text: str) -> str:
    try:
        return INTERACTION_KINDS[text.lower()]
    except KeyError:
        raise BadValue(
            gettext_noop("is not a kind of interaction (impression, click or conversion)")
        ) from None


class InteractionRows(RowChecker):
    kind = "interactions"

    def _check(self, row: int, line: int, fields: list[str]) -> Any | list[RowError]:
        errors: list[RowError] = []
        customer = self._required("customer_external_id", fields, row, line, errors)
        offer = self._required("offer_external_id", fields, row, line, errors)
        kind = self._parse_required("kind", _to_interaction_kind, fields, row, line, errors)
        occurred_at = self._parse_required("occurred_at", to_datetime, fields, row, line, errors)
        value = self._optional("value", to_signed_money, fields, row, line, errors, None)
        campaign = self._optional("campaign", max_length(100), fields, row, line, errors)
        if errors:
            return errors
        self._once(
            (customer, offer, kind, occurred_at),
            row,
            line,
            self.mapping["kind"],
            kind,
            REPEATS_RESPONSE,
            errors,
        )
        return errors or InteractionRecord(customer, offer, kind, occurred_at, value, campaign)

    def _parse_required(self, target, parse, fields, row, line, errors):
        text = self._required(target, fields, row, line, errors)
        if not text:
            return None
        try:
            return parse(text)
        except BadValue as bad:
            errors.append(_error(row, line, self.mapping[target], text, str(bad)))
            return None

    def check_chunk(self, checked: Checked) -> tuple[Checked, list[RowError]]:
        customers = _known(Customer, (r.customer_external_id for _, _, r in checked))
        offers = _known(Offer, (r.offer_external_id for _, _, r in checked))
        kept: Checked = []
        errors: list[RowError] = []
        for row, line, record in checked:
            bad = False
            if record.customer_external_id not in customers:
                errors.append(
                    _error(
                        row,
                        line,
                        self.mapping["customer_external_id"],
                        record.customer_external_id,
                        gettext_noop("is not a known customer (import the customers first)"),
                    )
                )
                bad = True
            if record.offer_external_id not in offers:
                errors.append(
                    _error(
                        row,
                        line,
                        self.mapping["offer_external_id"],
                        record.offer_external_id,
                        gettext_noop("is not a known offer (import the offers first)"),
                    )
                )
                bad = True
            if not bad:
                kept.append((row, line, record))
        return kept, errors

    def count_existing(self, records: list[InteractionRecord]) -> int:
        keys = {
            (r.customer_external_id, r.offer_external_id, r.kind, r.occurred_at) for r in records
        }
        stored = Interaction.objects.filter(
            customer__external_id__in={k[0] for k in keys},
            offer__external_id__in={k[1] for k in keys},
        ).values_list("customer__external_id", "offer__external_id", "kind", "occurred_at")
        return len(keys & set(stored))


def _known(model, external_ids: Iterable[str], batch: int = 5000) -> set[str]:
    wanted = list(set(external_ids))
    known: set[str] = set()
    for start in range(0, len(wanted), batch):  # SQLite limits the parameters of a query
        known.update(
            model.objects.filter(external_id__in=wanted[start : start + batch]).values_list(
                "external_id", flat=True
            )
        )
    return known


CHECKERS: dict[str, type[RowChecker]] = {
    "customers": CustomerRows,
    "offers": OfferRows,
    "interactions": InteractionRows,
}
