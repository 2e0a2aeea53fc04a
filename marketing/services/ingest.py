"""CSV ingest: upload a file, map its columns, preview, then import it as a Job.

``upload_create`` refuses files that cannot be read at all (too large, empty, not in the
chosen encoding, a header that cannot be split, duplicate or blank column names, rows with
the wrong number of fields) before anything is stored. The import checks every row, stages
the valid ones in a temporary table and writes them in one transaction: in "all or nothing"
mode any invalid row means nothing is written; in "valid rows" mode the valid rows are
written and the others reported. Every row problem goes to the upload's error file.

Row numbers count data rows from 1 without the header; "line" is the file's line where the
row starts, the header being line 1 (what a spreadsheet shows as the row number).
"""

import gc
import io
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import IO, Any, TypeVar, cast

from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_noop, override

from marketing.dbstats import analyze
from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.exporters.hashing import HASHED, HASHED_FIELDS
from marketing.filestore import local_copy
from marketing.ingest import IngestError
from marketing.ingest.catalogue import AttributeSpec, catalogue_attributes
from marketing.ingest.csvfile import (
    blank_columns,
    clean_encoding,
    guess_foreign_delimiter,
    inspect_file,
    iter_records,
)
from marketing.ingest.fields import (
    ATTRIBUTE_PREFIX,
    ERROR_FILE_LEAD,
    TARGET_FIELDS,
    FieldSpec,
    clean_mapping,
    guess_mapping,
    required_fields,
)
from marketing.ingest.rows import CHECKERS, Checked, RowChecker, RowError
from marketing.ingest.values import CATEGORY, TEXT, common_values, suggest_type
from marketing.ingest.wording import (
    AND_MORE,
    HEADER_NOT_SPLIT,
    HEADER_NOT_SPLIT_HINT,
    IMPORT_TITLES,
    MAPPING_PROBLEMS,
    NONE_IMPORTED,
    NOT_A_KIND,
    NOT_A_MODE,
    NOT_A_TYPE,
    NOTHING_IMPORTED,
    NUL_ROW,
    NUL_ROW_COLUMN,
    PROGRESS_CHECKED,
    PROGRESS_IMPORTED,
    TOO_LARGE,
    UNEXPECTED,
)
from marketing.ingest.writers import (
    CustomerRecord,
    CustomerWriter,
    InteractionWriter,
    OfferWriter,
    Prepared,
)
from marketing.models import AuditEvent, ConsentRecord, Job, ProfileField, Upload
from marketing.selectors.uploads import identifier_columns
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.figures import figures_refresh_all
from marketing.services.jobs import (
    JobCancelled,
    Progress,
    job_create,
    register_ended,
    register_runner,
    reset_broken_connection,
)

__all__ = [
    "TARGET_FIELDS",
    "FieldSpec",
    "IngestError",
    "upload_create",
    "upload_import",
    "upload_preview",
    "upload_remove_identifiers",
    "upload_set_mapping",
]

# What an import stores as its job's message on failure, besides the messages
# ``marketing.stored_texts`` lists: read there to show it in the reader's language.
MESSAGES = (MAPPING_PROBLEMS, NUL_ROW_COLUMN, NUL_ROW)

# Rows checked and staged per step; progress is reported after each.
CHUNK_ROWS = 20_000
# Row problems kept in messages, previews and job results (the error file has them all).
ERRORS_SHOWN = 50
# The error file: each problem row once, its problems first, then its cells as uploaded, so
# that it can be corrected and uploaded again (the mapping step skips these three columns).
ERROR_FILE_COLUMNS = ERROR_FILE_LEAD

logger = logging.getLogger(__name__)
T = TypeVar("T")


def upload_create(*, kind: str, file: File, by: Actor, encoding: str | None = None) -> Upload:
    """Check and store an uploaded CSV, with a guessed column mapping."""
    if kind not in TARGET_FIELDS:
        raise IngestError(NOT_A_KIND % {"kind": kind, "kinds": ", ".join(TARGET_FIELDS)})
    _check_size(file.size)
    encoding = clean_encoding(encoding)
    shape = inspect_file(file, encoding=encoding, max_columns=settings.MAX_UPLOAD_COLUMNS)
    mapping = guess_mapping(kind, shape.headers)
    _check_header_split(kind, shape.headers, mapping)
    upload = Upload(
        kind=kind,
        original_name=os.path.basename(file.name or "upload.csv")[:255],
        size_bytes=file.size,
        encoding=encoding,
        delimiter=shape.delimiter,
        headers=shape.headers,
        mapping=mapping,
        row_count=shape.row_count,
        summary={
            "column_types": {h: suggest_type(shape.column(h), h) for h in shape.headers},
            # Profile attribute columns only: identifier columns are never quoted.
            "column_examples": {
                header: _examples(shape.column(header))
                for target, header in mapping.items()
                if header and target.startswith(ATTRIBUTE_PREFIX)
            },
            "missing_required": [
                spec.name for spec in required_fields(kind) if not mapping[spec.name]
            ],
        },
        created_by=stored_user(by),
    )
    file.seek(0)
    upload.file.save(upload.original_name, file, save=False)
    upload.save()
    audit_log(
        actor=by,
        action=AuditEvent.Action.UPLOAD,
        target_type="upload",
        target_ref=upload.pk,
        details={
            "kind": kind,
            "file": upload.original_name,
            "bytes": upload.size_bytes,
            "rows": upload.row_count,
        },
    )
    return upload


def _check_size(size: int) -> None:
    limit = settings.MAX_UPLOAD_BYTES
    if size == 0:
        raise IngestError(gettext_noop("The file is empty."))
    if size > limit:
        raise IngestError(
            TOO_LARGE
            % {
                "size": _size(size),
                "bytes": f"{size:,}",
                "limit_size": _size(limit),
                "limit": f"{limit:,}",
            }
        )


def _size(n: int) -> str:
    with override("en"):  # the message is the API's too
        return filesizeformat(n).replace("\xa0", " ")


_SEPARATOR_NAMES = {
    ":": gettext_noop("colons"),
    " ": gettext_noop("spaces"),
    "/": gettext_noop("slashes"),
    "~": gettext_noop("tildes"),
    "^": gettext_noop("carets"),
    "#": gettext_noop("hashes"),
}


def _check_header_split(kind: str, headers: list[str], mapping: dict[str, str]) -> None:
    """One column where the kind needs several means the delimiter was not recognised."""
    required = required_fields(kind)
    if len(headers) > 1 or (len(required) == 1 and mapping[required[0].name]):
        return
    separator = guess_foreign_delimiter(headers[0])
    raise IngestError(
        (HEADER_NOT_SPLIT_HINT if separator else HEADER_NOT_SPLIT)
        % {
            "kind": kind,
            "needed": ", ".join(spec.name for spec in required),
            "header": headers[0][:80],
            "separator": _SEPARATOR_NAMES[separator] if separator else "",
        }
    )


EXAMPLES_SHOWN = 3


def _examples(cells: Iterable[str]) -> list[str]:
    """The first few distinct non-blank values of a column, for the mapping step."""
    seen: list[str] = []
    for cell in cells:
        cell = cell.strip()[:40]
        if cell and cell not in seen:
            seen.append(cell)
            if len(seen) == EXAMPLES_SHOWN:
                break
    return seen


def upload_set_mapping(
    *,
    upload: Upload,
    mapping: dict[str, str],
    mode: str,
    by: Actor,
    types: dict[str, str] | None = None,
) -> Upload:
    """Set the column mapping (target field -> header, "" = unmapped), the import mode and
    the types the user chose for profile attribute columns (header -> type)."""
    _check_not_imported(upload)
    if mode not in Upload.Mode.values:
        choices = " or ".join(Upload.Mode.values)
        raise IngestError(NOT_A_MODE % {"mode": mode, "choices": choices})
    upload.mapping = clean_mapping(upload.kind, mapping, upload.headers)
    attribute_headers = {
        header
        for target, header in upload.mapping.items()
        if header and target.startswith(ATTRIBUTE_PREFIX)
    }
    chosen: dict[str, str] = {}
    for header, data_type in (types or {}).items():
        if header not in attribute_headers:
            continue
        if data_type not in ProfileField.DataType.values:
            names = ", ".join(ProfileField.DataType.values)
            raise IngestError(NOT_A_TYPE % {"header": header, "type": data_type, "names": names})
        chosen[header] = data_type
    upload.mode = mode
    upload.status = Upload.Status.MAPPED
    upload.summary = {**upload.summary, "missing_required": [], "chosen_types": chosen}
    upload.save(update_fields=["mapping", "mode", "status", "summary"])
    return upload


def _check_not_imported(upload: Upload) -> None:
    if upload.status == Upload.Status.IMPORTING:
        raise IngestError(
            gettext_noop(
                "This upload is already importing; upload the file again to import it again."
            )
        )
    if upload.status == Upload.Status.IMPORTED:
        raise IngestError(
            gettext_noop(
                "This upload is already imported; upload the file again to import it again."
            )
        )
    if upload.summary.get("identifiers_removed"):
        raise IngestError(
            gettext_noop(
                "The identifiers were removed from this upload's stored file after its import "
                "(they are kept only hashed); upload the file again to import it again."
            )
        )


def upload_preview(*, upload: Upload, sample_size: int = 20) -> dict[str, Any]:
    """A dry run over the whole file with the current mapping: writes no data, only the
    upload's error file (the rows with problems, to correct before the import)."""
    mapping = clean_mapping(upload.kind, upload.mapping, upload.headers)
    checker = _checker(upload, mapping, _attribute_specs(upload, mapping), timezone.now())
    columns = {
        target: column
        for target, header in mapping.items()
        if header and (column := checker.column(target)) is not None
    }
    hidden = set(HASHED_FIELDS) if settings.HASH_IDENTIFIERS_ON_UPLOAD else set()
    sample: list[dict[str, Any]] = []
    rows = valid = existing = 0
    # The problems shown are masked as an import's are (the page or API shows the values to
    # those who may see them); the dry run's error file replaces the upload's last one, so
    # the rows can be corrected before the import.
    # An imported upload keeps its import's error file.
    keep_file = upload.status not in (Upload.Status.IMPORTING, Upload.Status.IMPORTED)
    if keep_file:
        _drop_error_file(upload)
    with _collector_paused, _error_log(upload, mapping, keep_file=keep_file) as errors:
        with upload.file.open("rb") as binary:
            for chunk in _checked_chunks(binary, upload, checker, keep_raw=True):
                checked, problems = checker.check_chunk(chunk.checked)
                errors.add(chunk.errors + problems, chunk.raw)
                rows += chunk.rows
                valid += len(checked)
                existing += checker.count_existing([record for _, _, record in checked])
                wanted = {row for row, _, _ in checked[: sample_size - len(sample)]}
                sample += [
                    {
                        target: HASHED if target in hidden else fields[index]
                        for target, (index, _) in columns.items()
                    }
                    for row, _, fields in chunk.raw or ()
                    if row in wanted
                ]
        errors.save_to(upload)
    return {
        "rows": rows,
        "valid": valid,
        "invalid": rows - valid,
        "errors": errors.shown,
        "sample": sample,
        "new": valid - existing,
        "updates": existing,
    }


def upload_import(*, upload: Upload, by: Actor) -> Job:
    """Start the import Job for an upload (its result: counts and the first errors)."""
    _check_not_imported(upload)
    clean_mapping(upload.kind, upload.mapping, upload.headers)
    with transaction.atomic():
        claimed = (
            Upload.objects.filter(pk=upload.pk)
            .exclude(status__in=(Upload.Status.IMPORTING, Upload.Status.IMPORTED))
            .update(status=Upload.Status.IMPORTING)
        )
        if not claimed:
            raise IngestError(gettext_noop("This upload is already being imported."))
        job = job_create(
            kind=Job.Kind.IMPORT,
            title=(IMPORT_TITLES[upload.kind] % {"file": upload.original_name})[:200],
            params={"upload_id": upload.pk, "mode": upload.mode},
            by=by,
        )
        Upload.objects.filter(pk=upload.pk).update(job=job)
    upload.refresh_from_db()
    job.refresh_from_db()
    return job


@register_runner(Job.Kind.IMPORT, restartable=True)
def run_import(job: Job, progress: Progress) -> dict[str, Any]:
    upload = Upload.objects.get(pk=job.params["upload_id"])
    result = None
    try:
        result = _import(upload, job, progress)
    except (IngestError, JobCancelled) as exc:
        _import_failed(upload, job, "Cancelled" if isinstance(exc, JobCancelled) else str(exc))
        raise
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            reset_broken_connection()
        # Anything else may quote the rows it failed on (a database error quotes values):
        # the job and the upload get a message of our own, the log gets the exception.
        failure = IngestError(UNEXPECTED % {"error": type(exc).__name__, "job": job.pk})
        _import_failed(upload, job, str(failure))
        raise failure from exc
    finally:
        # Hashing on upload: whatever the outcome, the stored copy keeps no plain identifiers.
        upload_remove_identifiers(upload=upload)
        # The base changed: the overview's and the segments' counts are made again. After a
        # failed import too: the counts may have waited for it (see figures.IMPORT_WAITING).
        _refresh_figures(job, after_failure=result is None)
    return result


def _refresh_figures(job: Job, *, after_failure: bool) -> None:
    try:
        figures_refresh_all(by=job.created_by)
    except Exception:
        if not after_failure:
            raise
        # The import's own failure is on its way out and is the one the job reports; this
        # one goes to the log.
        logger.exception("job %s: the counts after the import could not be started", job.pk)


@register_ended(Job.Kind.IMPORT)
def _import_ended(job: Job, message: str) -> None:
    """An import job that ended without running to its end (cancelled while queued, or its
    worker lost for good): the upload can be imported again, and says why it was not."""
    upload = Upload.objects.filter(
        pk=job.params.get("upload_id"), status=Upload.Status.IMPORTING
    ).first()
    if upload is not None:
        Upload.objects.filter(pk=upload.pk, status=Upload.Status.IMPORTING).update(
            status=Upload.Status.FAILED, summary={**upload.summary, "error": message}
        )


def _import_failed(upload: Upload, job: Job, reason: str) -> None:
    upload.refresh_from_db(fields=["summary"])
    Upload.objects.filter(pk=upload.pk).update(
        status=Upload.Status.FAILED, summary={**upload.summary, "error": reason}
    )
    audit_log(
        actor=job.created_by,
        action=AuditEvent.Action.IMPORT,
        target_type="upload",
        target_ref=upload.pk,
        details={"kind": upload.kind, "job": job.pk, "outcome": "failed", "reason": reason[:500]},
    )


def _drop_error_file(upload: Upload) -> None:
    """A new error file replaces the last one: no stale copy of rows stays behind where
    erasure (which follows the upload's current error file) would not look."""
    if upload.error_file:
        upload.error_file.delete(save=False)
        Upload.objects.filter(pk=upload.pk).update(error_file="")


def _import(upload: Upload, job: Job, progress: Progress) -> dict[str, Any]:
    _drop_error_file(upload)
    now = timezone.now()
    mapping = clean_mapping(upload.kind, upload.mapping, upload.headers)
    attributes = _attribute_specs(upload, mapping)
    checker = _checker(upload, mapping, attributes, now)
    writer = _writer(upload.kind, by=job.created_by, now=now)
    all_or_nothing = upload.mode == Upload.Mode.ALL_OR_NOTHING
    total = upload.row_count or 0
    rows = valid = 0
    sampled = False  # text attributes get sample values from the first valid rows
    summary: dict[str, Any] = dict(upload.summary)
    summary.pop("error", None)  # an earlier attempt's failure is not this one's
    # Rows that need the database to be checked (interactions) are prepared on this thread.
    prepare_ahead = None if upload.kind == "interactions" else writer.prepare
    # Customers' database check (withdrawals an import may not override) reads only records
    # made by others, never this import's: on PostgreSQL it runs on the reading thread, on a
    # connection of its own, while this one writes the previous chunk. Inside a caller's
    # transaction (or on SQLite) another connection would not see what the caller sees.
    check_ahead = (
        checker.check_chunk
        if prepare_ahead is not None
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        else None
    )

    with (
        _error_log(upload, mapping) as errors,
        _visible_progress(progress) as report,
        _collector_paused,
    ):
        report(1, gettext_noop("Reading the file"))
        try:
            with writer, transaction.atomic(), upload.file.open("rb") as binary:
                for chunk in _in_background(
                    _checked_chunks(
                        binary, upload, checker, prepare_ahead, check_ahead, keep_raw=True
                    ),
                    # On the reading thread: its own connection, not this one.
                    cleanup=(lambda: connection.close()) if check_ahead else None,
                ):
                    if check_ahead is None:
                        checked, problems = checker.check_chunk(chunk.checked)
                    else:
                        checked, problems = chunk.checked, []
                    errors.add(chunk.errors + problems, chunk.raw)
                    rows += chunk.rows
                    valid += len(checked)
                    if attributes and checked and not sampled:
                        attributes = _with_samples(attributes, [r for _, _, r in checked])
                        sampled = True
                    # All or nothing: after the first problem, only check the rest.
                    if checked and not (all_or_nothing and errors.count):
                        prepared = None if problems else chunk.prepared
                        writer.write(prepared or writer.prepare([r for _, _, r in checked]))
                    report(
                        2 + 93 * rows / max(total, 1),
                        (PROGRESS_CHECKED if all_or_nothing and errors.count else PROGRESS_IMPORTED)
                        % {
                            "rows": f"{rows:,}",
                            "total": f"{total:,}",
                            "invalid": f"{rows - valid:,}",
                        },
                    )
                summary.update(rows=rows, valid=valid, invalid=rows - valid, errors=errors.shown)
                if valid < rows and all_or_nothing:
                    raise IngestError(_nothing_imported(rows, valid, errors))
                if valid == 0:
                    raise IngestError(
                        NONE_IMPORTED % {"rows": f"{rows:,}", "problems": _first(errors)}
                    )
                if attributes:
                    catalogue_attributes(attributes)
                counts = dict(writer.counts)
                summary.update(counts)
                Upload.objects.filter(pk=upload.pk).update(
                    status=Upload.Status.IMPORTED, summary=summary, row_count=rows
                )
                audit_log(
                    actor=job.created_by,
                    action=AuditEvent.Action.IMPORT,
                    target_type="upload",
                    target_ref=upload.pk,
                    details={
                        "kind": upload.kind,
                        "job": job.pk,
                        "outcome": "imported",
                        "mode": upload.mode,
                        "rows": rows,
                        "invalid": rows - valid,
                        **counts,
                    },
                )
        except IngestError:
            Upload.objects.filter(pk=upload.pk).update(summary=summary)
            raise
        finally:
            errors.save_to(upload)
            _audit_refused_grants(checker, upload, job)
    # The planner learns of the rows now, not when autovacuum comes round.
    analyze(*writer.merged_models)
    return {
        "upload_id": upload.pk,
        "kind": upload.kind,
        "mode": upload.mode,
        "rows": rows,
        "valid": valid,
        "invalid": rows - valid,
        **counts,
        "errors": errors.shown,
        "error_file": upload.error_file.name or "",
    }


def _audit_refused_grants(checker: RowChecker, upload: Upload, job: Job) -> None:
    """Grants refused because they would override a withdrawal or denial are a consent
    matter: a data steward finds them in the audit trail, whether or not the import went on."""
    refused = getattr(checker, "refused_grants", 0)
    if not refused:
        return
    audit_log(
        actor=job.created_by,
        action=AuditEvent.Action.CONSENT_CHANGE,
        target_type="upload",
        target_ref=upload.pk,
        details={
            "change": "import_refused",
            "job": job.pk,
            "statements": refused,
            "rows": checker.refused_rows,  # type: ignore[attr-defined]
            "reason": "a grant would override a withdrawal or denial recorded by the "
            "customer or a data steward",
        },
    )


def upload_remove_identifiers(*, upload: Upload) -> None:
    """Hashing on upload: once the import has run (whatever its outcome), the stored copy of a
    customers file keeps no plain identifiers; its rows and row numbers stay (erasure and the
    error file refer to them)."""
    if not settings.HASH_IDENTIFIERS_ON_UPLOAD or upload.kind != Upload.Kind.CUSTOMERS:
        return
    columns = {
        upload.headers.index(header)
        for name in HASHED_FIELDS
        if (header := (upload.mapping or {}).get(name)) and header in upload.headers
    }
    if columns and upload.file.storage.exists(str(upload.file.name)):
        with local_copy(upload.file) as path:
            blank_columns(
                path, encoding=upload.encoding, delimiter=upload.delimiter, columns=columns
            )
    upload.refresh_from_db(fields=["summary"])
    upload.summary = {**upload.summary, "identifiers_removed": True}
    Upload.objects.filter(pk=upload.pk).update(summary=upload.summary)


def _nothing_imported(rows: int, valid: int, errors: "ErrorLog") -> str:
    return NOTHING_IMPORTED % {
        "invalid": f"{rows - valid:,}",
        "rows": f"{rows:,}",
        "problems": _first(errors),
    }


def _first(errors: "ErrorLog", shown: int = 3) -> str:
    """The first few problems, and how many more, joined with "; "."""
    problems = [e["message"] for e in errors.shown[:shown]]
    if errors.count > shown:
        problems.append(AND_MORE % {"count": f"{errors.count - shown:,}"})
    return "; ".join(problems)


def _checker(
    upload: Upload, mapping: dict[str, str], attributes: list[AttributeSpec], now: datetime
) -> RowChecker:
    types = {spec.name: spec.data_type for spec in attributes}
    return CHECKERS[upload.kind](upload.headers, mapping, attribute_types=types, now=now)


def _attribute_specs(upload: Upload, mapping: dict[str, str]) -> list[AttributeSpec]:
    """Profile attributes of a customers upload; the type the user chose on the mapping step
    wins, then a type already in the catalogue, then the type guessed from this file."""
    columns = {
        target[len(ATTRIBUTE_PREFIX) :]: header
        for target, header in mapping.items()
        if target.startswith(ATTRIBUTE_PREFIX) and header
    }
    if not columns:
        return []
    stored = dict(ProfileField.objects.filter(name__in=columns).values_list("name", "data_type"))
    guessed = upload.summary.get("column_types", {})
    chosen = upload.summary.get("chosen_types", {})
    return [
        AttributeSpec(
            name,
            header,
            chosen.get(header) or stored.get(name) or guessed.get(header, TEXT),
            chosen=header in chosen,
        )
        for name, header in columns.items()
    ]


def _with_samples(specs: list[AttributeSpec], records: list[CustomerRecord]) -> list[AttributeSpec]:
    return [
        AttributeSpec(
            spec.name,
            spec.label,
            spec.data_type,
            tuple(
                common_values(r.attributes[spec.name] for r in records if spec.name in r.attributes)
            )
            if spec.data_type in (TEXT, CATEGORY)
            else (),
            chosen=spec.chosen,
        )
        for spec in specs
    ]


def _writer(
    kind: str, *, by: Actor, now: datetime
) -> CustomerWriter | OfferWriter | InteractionWriter:
    if kind == "customers":
        return CustomerWriter(source=ConsentRecord.Source.CSV_IMPORT, by=by, now=now)
    if kind == "offers":
        return OfferWriter(now=now)
    return InteractionWriter()


class ErrorLog:
    """Row problems: all of them in a CSV file for download, the first few for messages.

    The first few are kept on the job and the upload (``shown``): there values from columns
    of personal identifiers (``identifiers``: header -> identity field) are masked, so that
    no stored text or message quotes them.

    The file (``headers``: the upload's) has one line per row with problems: the row and
    line numbers, the problems in words, then the row's cells as uploaded, so that it can be
    corrected and uploaded again. It keeps identifiers as uploaded (downloaded masked by those
    who may not see them), except those the settings hash on upload (``blank``: header
    indexes), which are left empty.
    """

    def __init__(
        self,
        *,
        keep_file: bool,
        headers: list[str] | None = None,
        identifiers: dict[str, str] | None = None,
        blank: set[int] | None = None,
    ) -> None:
        self.count = 0
        self._identifiers = identifiers or {}
        self._blank = blank or set()
        self.shown: list[dict[str, Any]] = []
        self._file: io.TextIOWrapper | None = None
        self._writer: Any = None
        if keep_file:
            # utf-8-sig: spreadsheets open the file with the right encoding.
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8-sig", newline="")
            self._writer = SafeCSVWriter(self._file)
            self._writer.writerow([*ERROR_FILE_COLUMNS, *(headers or [])])

    def __enter__(self) -> "ErrorLog":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            self._file.close()

    def add(self, errors: list[RowError], raw: list[tuple[int, int, list[str]]] | None) -> None:
        """A chunk's problems, with the chunk's rows as read (``raw``) for the file."""
        # A chunk's errors come from two passes (reading, then checking): list them in row
        # order, as the user reads the file.
        errors = sorted(errors, key=lambda e: e.row)
        self.count += len(errors)
        for error in errors[: ERRORS_SHOWN - len(self.shown)]:
            self.shown.append(error.as_dict(identity_field=self._identifiers.get(error.column, "")))
        if self._writer is None or not errors:
            return
        by_row: dict[int, list[RowError]] = {}
        for error in errors:
            by_row.setdefault(error.row, []).append(error)
        cells = {row: fields for row, _, fields in raw or () if row in by_row}
        for row, problems in by_row.items():
            fields = cells.get(row, [])
            if self._blank:
                fields = ["" if i in self._blank else v for i, v in enumerate(fields)]
            words = "; ".join(f"{e.column}: {e.reason}" if e.column else e.reason for e in problems)
            self._writer.writerow([row, problems[0].line, words, *fields])

    def save_to(self, upload: Upload) -> None:
        if self._file is None or not self.count:
            return
        self._file.flush()
        self._file.seek(0)
        stem = os.path.splitext(upload.original_name)[0]
        upload.error_file.save(
            f"{stem}-errors.csv", File(cast(IO[bytes], self._file.buffer)), save=False
        )
        Upload.objects.filter(pk=upload.pk).update(error_file=upload.error_file.name)


def _error_log(upload: Upload, mapping: dict[str, str], *, keep_file: bool = True) -> ErrorLog:
    """The error log of an import or dry run of ``upload`` with ``mapping``."""
    hidden = (
        {
            upload.headers.index(header)
            for target, header in mapping.items()
            if header and target in HASHED_FIELDS and header in upload.headers
        }
        if settings.HASH_IDENTIFIERS_ON_UPLOAD
        else set()
    )
    return ErrorLog(
        keep_file=keep_file,
        headers=upload.headers,
        identifiers=identifier_columns(upload),
        blank=hidden,
    )


@dataclass
class Chunk:
    rows: int
    checked: list[tuple[int, int, Any]]
    errors: list[RowError]
    # The checked records encoded for the writer, when prepared ahead on the reading thread.
    prepared: Prepared | None = None
    # The cells as read, kept only for a preview's sample.
    raw: list[tuple[int, int, list[str]]] | None = None


def _checked_chunks(
    binary: IO[bytes],
    upload: Upload,
    checker: RowChecker,
    prepare: Callable[[list[Any]], Prepared] | None = None,
    check_in_database: Callable[[Checked], tuple[Checked, list[RowError]]] | None = None,
    *,
    keep_raw: bool = False,
) -> Iterator[Chunk]:
    """The file's rows in chunks, each row checked on its own (no database involved), then,
    with ``check_in_database``, each chunk against the stored data (on this thread's
    connection)."""
    records = iter_records(binary, encoding=upload.encoding, delimiter=upload.delimiter)
    while raw := list(islice(records, CHUNK_ROWS)):
        checked: Checked = []
        errors: list[RowError] = []
        for row, line, fields in raw:
            result = checker.check(row, line, fields)
            if type(result) is list:
                errors += result
            else:
                checked.append((row, line, result))
        if check_in_database is not None and checked:
            checked, problems = check_in_database(checked)
            errors += problems
        prepared = prepare([r for _, _, r in checked]) if prepare and checked else None
        yield Chunk(len(raw), checked, errors, prepared, raw if keep_raw else None)


_END = object()


def _in_background(
    items: Iterator[T], ahead: int = 1, *, cleanup: Callable[[], None] | None = None
) -> Iterator[T]:
    """Iterate ``items`` on another thread, up to ``ahead`` items in advance; ``cleanup``
    runs on that thread when it ends (closing its database connection, say).

    Reading and checking rows is Python work and writing them is database work; overlapping
    the two keeps both CPU cores busy. Exceptions reach the consumer; stopping early stops
    the producer.
    """
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            if cleanup is not None:
                cleanup()

    producer = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    producer.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while files are read.

    A chunk of rows is hundreds of thousands of small objects that live until the chunk is
    written; each chunk would make the collector run again and scan every live object, a
    third of the reading time. They hold no reference cycles, so reference counting frees them
    all the same. The collector is process-wide: it runs again once no import holds the pause.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


_collector_paused = _CollectorPause()


@contextmanager
def _visible_progress(progress: Progress) -> Iterator[Progress]:
    """Progress reports that others can read while the import's transaction is open.

    On PostgreSQL they go through a thread of their own, and so its own connection. SQLite
    has one writer at a time, and inside a caller's transaction another connection cannot
    see the job, so there the reports stay on this connection (seen at commit).
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield progress
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-progress") as reporter:

        def report(percent: float, message: str = "") -> None:
            reporter.submit(progress, percent, message).result()

        try:
            yield report
        finally:
            reporter.submit(_close_connection).result()


def _close_connection() -> None:
    connection.close()
