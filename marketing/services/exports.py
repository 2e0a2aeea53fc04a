"""Exporting a frozen audience to an ad platform's file format, as a Job ("export").

One pass over the audience's contacted members (its control group is never read): the
database evaluates the consent gate for each member
(``marketing.selectors.audiences.export_gate_q``) and hands over identifiers only for those
who pass; they are normalised, hashed and written in chunks, so memory stays flat
however large the audience. The members left out are recorded (``ExportExclusion``) and
counted by reason. The file is hashed with SHA-256 as it is written and moved into place only
when complete.
"""

import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from marketing.bulkwrite import append_rows
from marketing.errors import ApplicationError
from marketing.exporters.base import Member, WriteResult
from marketing.exporters.countries import GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.formats import FORMATS, ExportFormat
from marketing.filestore import media_fetch, media_put
from marketing.models import (
    Audience,
    AuditEvent,
    Customer,
    Export,
    ExportExclusion,
    Job,
    Purpose,
    Suppression,
)
from marketing.selectors.audiences import export_rows, export_size_warning, left_out_counts
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create, register_runner

EXPORT_DIR = "exports"
CHUNK_ROWS = 10_000
# Each progress report is a committed UPDATE: often enough for the page, not per chunk.
PROGRESS_EVERY_S = 1.0


class ExportError(ApplicationError, ValueError):
    """The export cannot be made as asked; the message says why."""


class ExportFileMissing(ApplicationError, LookupError):
    """The export has no file to download (not finished, failed, or the file is gone)."""

    status_code = 404


def export_create(*, audience: Audience, platform: str, by: Actor) -> Export:
    """Record an export and start its job; raises ``ExportError``."""
    fmt = FORMATS.get(platform)
    if fmt is None:
        raise ExportError(_("Unknown platform format %(format)s.") % {"format": repr(platform)})
    if not audience.is_frozen:
        raise ExportError(_("Freeze the audience before exporting it."))
    creator = stored_user(by)
    # The job's title is stored: in English, whoever asks.
    with translation.override("en"):
        title = f"Export “{audience.name}” · {fmt.label}"
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.EXPORT,
            title=title,
            params={"audience": audience.pk, "platform": platform},
            by=by,
        )
        export = Export.objects.create(
            job=job, audience=audience, platform=platform, created_by=creator
        )
        audit_log(
            actor=by,
            action=AuditEvent.Action.EXPORT,
            target_type="export",
            target_ref=export.pk,
            details={
                "event": "requested",
                "audience": audience.pk,
                "platform": platform,
                "job": job.pk,
            },
        )
    return Export.objects.select_related("job", "audience").get(pk=export.pk)


@register_runner(Job.Kind.EXPORT)
def run_export(job: Job, progress: Progress) -> dict[str, Any]:
    export = Export.objects.select_related("audience").get(job=job)
    return _ExportWriter(export, progress).run()


class _HashingSink(io.RawIOBase):
    """Writes bytes to a file and feeds them to a SHA-256 on the way."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)


class _ExportWriter:
    """One export run: a single pass over the audience, the file, then the record."""

    def __init__(self, export: Export, progress: Progress) -> None:
        self.export = export
        self.fmt: ExportFormat = FORMATS[export.platform]
        self.progress = progress
        self.at = timezone.now()
        self.result = WriteResult()
        self.members_seen = 0
        self.skipped = 0
        # Left-out members not recorded yet: (customer id, pseudonym).
        self.excluded: list[tuple[int, str]] = []
        self.relative = f"{EXPORT_DIR}/export-{export.pk}-{self.fmt.key}.{self.fmt.extension}"
        self.path = Path(settings.MEDIA_ROOT) / self.relative
        self.partial = self.path.with_name(self.path.name + ".part")

    def run(self) -> dict[str, Any]:
        export = self.export
        self.progress(1, gettext_noop("Checking consent and writing the file"))
        try:
            size, checksum = self.write_file()
            left_out = self.left_out()
        except BaseException:
            # A cancelled or failed export leaves neither a half file nor records behind.
            self.partial.unlink(missing_ok=True)
            ExportExclusion.objects.filter(export=export).delete()
            raise
        Export.objects.filter(pk=export.pk).update(
            row_count=self.result.rows,
            left_out=left_out,
            file_path=self.relative,
            file_size=size,
            checksum=checksum,
            consent_snapshot=self.consent_snapshot(left_out),
        )
        audit_log(
            actor=export.created_by,
            action=AuditEvent.Action.EXPORT,
            target_type="export",
            target_ref=export.pk,
            details={
                "event": "written",
                "audience": export.audience_id,
                "platform": export.platform,
                "rows": self.result.rows,
                "left_out": left_out,
                "sha256": checksum,
            },
        )
        result = {
            "export": export.pk,
            "rows": self.result.rows,
            "left_out": left_out,
            "sha256": checksum,
            "bytes": size,
        }
        # Stored with the job's result: in English, whoever started it.
        with translation.override("en"):
            warning = export_size_warning(export.platform, self.result.rows)
        if warning:
            result["warning"] = warning
        return result

    def write_file(self) -> tuple[int, str]:
        self.path.parent.mkdir(
            mode=settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS, parents=True, exist_ok=True
        )
        # Created with the private mode, so that no other user can open it even while written.
        fd = os.open(
            self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, settings.FILE_UPLOAD_PERMISSIONS
        )
        with os.fdopen(fd, "wb") as file:
            sink = _HashingSink(file)
            buffered = io.BufferedWriter(sink, buffer_size=1 << 20)
            text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
            self.fmt.write(self.members(), text, result=self.result)
            text.flush()
            buffered.flush()
        os.replace(self.partial, self.path)
        media_put(self.relative)
        return sink.size, sink.digest.hexdigest()

    def members(self) -> Iterator[Member]:
        """The members who pass the gate, as plain tuples in Member's field order (the
        writers unpack them by position); the others are recorded as left out."""
        audience = self.export.audience
        total = (audience.size - audience.control_size) or 1  # the control is never read
        reported = time.monotonic()
        for chunk in export_rows(self.export.audience, self.fmt, chunk_size=CHUNK_ROWS):
            yield from [row[2:] for row in chunk if row[1]]  # type: ignore[misc]
            self.leave_out(chunk)
            self.members_seen += len(chunk)
            if time.monotonic() - reported >= PROGRESS_EVERY_S:
                reported = time.monotonic()
                self.progress(
                    1 + 98 * min(self.members_seen / total, 1),
                    f"{self.members_seen:,} of {total:,} members",
                )
        self.record_exclusions()

    def leave_out(self, chunk: list[tuple]) -> None:
        """Note the chunk's members that are not in the file, once the writer has seen the
        whole chunk: refused by the gate, or skipped by the writer (nothing to match on)."""
        skipped = set(self.result.skipped)
        self.skipped += len(skipped)
        self.result.skipped.clear()
        self.excluded += [(row[0], row[2]) for row in chunk if not row[1] or row[2] in skipped]
        if len(self.excluded) >= CHUNK_ROWS:
            self.record_exclusions()

    def record_exclusions(self) -> None:
        append_rows(
            ExportExclusion,
            ["export", "customer", "pseudonym"],
            [(self.export.pk, customer_id, pseudonym) for customer_id, pseudonym in self.excluded],
        )
        self.excluded = []

    def left_out(self) -> dict[str, int]:
        """Why members were left out, counted on the recorded exclusions only."""
        left = Customer.objects.filter(export_exclusions__export=self.export)
        counts = left_out_counts(left, fmt=self.fmt)
        counts["no_identifier"] = self.skipped
        return counts

    def consent_snapshot(self, left_out: dict[str, int]) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "at": self.at.isoformat(),
            "required": [Purpose.AD_TARGETING.value],
            "suppression_list_size": Suppression.objects.count(),
            "members": self.members_seen,
            "exported": self.result.rows,
            "left_out": left_out,
        }
        if self.fmt.needs_google_consents:
            snapshot["google_eu_user_consent"] = {
                "required": [Purpose.AD_USER_DATA.value, Purpose.AD_PERSONALIZATION.value],
                "countries": sorted(GOOGLE_CONSENT_COUNTRIES),
                "unknown_country": "required",
            }
        return snapshot


def export_file(export: Export) -> Path:
    """The export's file; raises ``ExportFileMissing``."""
    if export.job.status != Job.Status.SUCCEEDED:
        raise ExportFileMissing("This export has no file (it has not finished or it failed).")
    if not export.file_path:
        raise ExportFileMissing(
            "This export's file was deleted (a customer in it was erased, or it passed its "
            "retention period); export the audience again."
        )
    path = media_fetch(export.file_path)
    if path is None:
        raise ExportFileMissing("The export's file is no longer on the server.")
    return path


def export_download(*, export: Export, by: Actor) -> tuple[IO[bytes], str]:
    """Open the export's file for download (audit-logged); returns (file, file name)."""
    path = export_file(export)
    audit_log(
        actor=by,
        action=AuditEvent.Action.EXPORT,
        target_type="export",
        target_ref=export.pk,
        details={"event": "downloaded", "platform": export.platform, "sha256": export.checksum},
    )
    return open(path, "rb"), path.name
