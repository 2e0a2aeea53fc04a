"""Erasure (GDPR Art. 17): the customer and everything stored about them is deleted.

That covers the database rows, the person's rows in the stored upload files (and the error
files made from them), and the audience files exported with the person in them. What must
outlive the person (the audit trail, the frozen audience membership, the list of models
trained on their data) keeps only the pseudonym.
"""

import csv
import mmap
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.ingest.csvfile import text_stream
from marketing.models import AuditEvent, Customer, CustomerIdentity, Export, Upload
from marketing.selectors.audiences import exports_holding
from marketing.services.audit import audit_log
from marketing.services.training import training_runs_flag_erasure

# The upload column that names the customer, per kind of upload.
CUSTOMER_KEY_FIELD = {
    Upload.Kind.CUSTOMERS: "external_id",
    Upload.Kind.INTERACTIONS: "customer_external_id",
}


@transaction.atomic
def customer_erase(*, customer: Customer, by) -> dict[str, int]:
    """Delete the customer, identity, interactions and consent history, blank their rows in
    stored uploads and remove the export files that held them; audit by pseudonym.

    Files are changed before the rows are deleted: if a file cannot be rewritten the erasure
    fails as a whole and can simply be run again.
    """
    counts = {
        "identity": CustomerIdentity.objects.filter(customer=customer).count(),
        "interactions": customer.interactions.count(),
        "consent_records": customer.consents.count(),
    }
    pseudonym = customer.pseudonym
    counts["upload_rows"], uploads_changed = _blank_upload_rows(customer.external_id)
    held = list(exports_holding(pseudonym).exclude(file_path=""))
    # A trained model cannot forget the person: its run is flagged for retraining without them.
    models_flagged = training_runs_flag_erasure(pseudonym=pseudonym)
    # A queryset delete cascades in SQL; ConsentRecord.delete() (which refuses single
    # deletions to protect the history) is deliberately not involved.
    Customer.objects.filter(pk=customer.pk).delete()
    _remove_export_files(held)
    counts["export_files"] = len(held)
    audit_log(
        actor=by,
        action=AuditEvent.Action.ERASURE,
        target_type="customer",
        target_ref=pseudonym,
        details={
            **counts,
            "models_flagged": models_flagged,
            "uploads_changed": uploads_changed,
            "export_files_removed": [export.pk for export in held],
        },
    )
    return counts


def _remove_export_files(exports: list[Export]) -> None:
    """The export records stay (who got what, when, with which checksum); their files go once
    the erasure is committed. ``export_file`` then tells why the file is missing."""
    paths = [Path(settings.MEDIA_ROOT) / export.file_path for export in exports]
    Export.objects.filter(pk__in=[export.pk for export in exports]).update(
        file_path="", file_size=0
    )

    def unlink() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    transaction.on_commit(unlink)


def _blank_upload_rows(external_id: str) -> tuple[int, list[int]]:
    """Replace the customer's rows in every stored upload with empty lines, so the other rows
    keep their row numbers (the error files and messages refer to them), and drop the error
    file rows about the blanked rows. Returns (rows blanked, ids of the uploads changed)."""
    blanked = 0
    changed: list[int] = []
    uploads = Upload.objects.filter(kind__in=list(CUSTOMER_KEY_FIELD)).exclude(
        Q(file="") | Q(file__isnull=True)
    )
    for upload in uploads.order_by("pk"):
        header = (upload.mapping or {}).get(CUSTOMER_KEY_FIELD[upload.kind])
        if not header or header not in upload.headers:
            continue
        path = Path(upload.file.path)
        if not path.is_file() or not _may_contain(path, external_id, upload.encoding):
            continue
        rows = _blank_rows(path, upload, upload.headers.index(header), external_id)
        if not rows:
            continue
        blanked += len(rows)
        changed.append(upload.pk)
        if upload.error_file:
            _drop_error_rows(Path(upload.error_file.path), rows)
    return blanked, changed


def _may_contain(path: Path, external_id: str, encoding: str) -> bool:
    """A fast byte search that rules out most files without parsing them."""
    codec = _codec(encoding)
    if codec.lower().startswith(("utf-16", "utf-32")):
        return True  # their byte order marks and widths rule out a plain byte search
    try:
        needle = external_id.encode(codec)
    except (LookupError, UnicodeEncodeError):
        return True
    if path.stat().st_size == 0:
        return False
    with path.open("rb") as binary, mmap.mmap(binary.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(needle) != -1


def _codec(encoding: str) -> str:
    return "utf-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else encoding


def _blank_rows(path: Path, upload: Upload, column: int, external_id: str) -> set[int]:
    """Rewrite the file with the customer's data rows as empty lines; their row numbers."""
    rows: set[int] = set()
    with path.open("rb") as binary, _replacing(path, upload.encoding) as out:
        with text_stream(binary, upload.encoding) as text:
            reader = csv.reader(text, delimiter=upload.delimiter)
            writer = csv.writer(out, delimiter=upload.delimiter, lineterminator="\r\n")
            header = next(reader, None)
            if header is not None:
                writer.writerow(header)
            for row_no, record in enumerate(reader, start=1):
                if len(record) > column and record[column].strip() == external_id:
                    rows.add(row_no)
                    out.write("\r\n")
                else:
                    writer.writerow(record)
        if not rows:
            raise _Unchanged
    return rows


def _drop_error_rows(path: Path, rows: set[int]) -> None:
    if not path.is_file():
        return
    with path.open("rb") as binary, _replacing(path, "utf-8-sig") as out:
        with text_stream(binary, "utf-8-sig") as text:
            reader = csv.reader(text)
            writer = SafeCSVWriter(out)
            header = next(reader, None)
            if header is None:
                raise _Unchanged
            writer.writerow(header)
            for record in reader:
                if record and record[0].isdigit() and int(record[0]) in rows:
                    continue
                writer.writerow(record)


class _Unchanged(Exception):
    """Raised inside ``_replacing`` to keep the original file."""


@contextmanager
def _replacing(path: Path, encoding: str) -> Iterator[IO[str]]:
    """Write a new version of ``path`` beside it and swap it in atomically at the end (or
    leave the original alone when the block raises)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as out:
            yield out
        os.replace(tmp, path)
    except _Unchanged:
        os.unlink(tmp)
    except BaseException:
        os.unlink(tmp)
        raise
