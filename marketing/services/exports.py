"""Exporting a frozen audience to an ad platform's file format, as a Job ("export").

At export time the consent gate is applied again in the database: the members who may be
exported are copied into ``ExportMember`` in one ``INSERT ... SELECT`` and the others are
counted by reason. The file is then written streaming from those rows (identifiers are read
in chunks, normalised, hashed and written), hashed with SHA-256 as it is written, and moved
into place only when complete.
"""

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketing.exporters.base import Member, WriteResult
from marketing.exporters.countries import GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.formats import FORMATS, ExportFormat
from marketing.models import (
    Audience,
    AuditEvent,
    Customer,
    Export,
    ExportMember,
    Job,
    Purpose,
    Suppression,
)
from marketing.selectors.audiences import (
    IDENTITY_FIELDS,
    audience_customers,
    export_gate_q,
    left_out_counts,
)
from marketing.services.audiences import insert_select
from marketing.services.audit import audit_log
from marketing.services.jobs import Progress, job_create, register_runner

EXPORT_DIR = "exports"
CHUNK_ROWS = 10_000
_DELETE_BATCH = 1000


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why."""


class ExportFileMissing(LookupError):
    """The export has no file to download (not finished, failed, or the file is gone)."""


def export_create(*, audience: Audience, platform: str, by) -> Export:
    """Record an export and start its job; raises ``ExportError``."""
    fmt = FORMATS.get(platform)
    if fmt is None:
        raise ExportError(f"Unknown platform format {platform!r}.")
    if not audience.is_frozen:
        raise ExportError("Freeze the audience before exporting it.")
    creator = by if getattr(by, "is_authenticated", False) else None
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.EXPORT,
            title=f"Export “{audience.name}” · {fmt.label}",
            params={"audience": audience.pk, "platform": platform},
            by=by,
        )
        export = Export.objects.create(
            job=job, audience=audience, platform=platform, created_by=creator
        )
        audit_log(
            actor=by, action=AuditEvent.Action.EXPORT, target_type="export",
            target_ref=export.pk,
            details={"event": "requested", "audience": audience.pk, "platform": platform,
                     "job": job.pk},
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

    def write(self, data) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)


class _ExportWriter:
    def __init__(self, export: Export, progress: Progress) -> None:
        self.export = export
        self.fmt: ExportFormat = FORMATS[export.platform]
        self.progress = progress
        self.at = timezone.now()
        self.result = WriteResult()
        self.skipped = 0
        self.relative = f"{EXPORT_DIR}/export-{export.pk}-{self.fmt.key}.{self.fmt.extension}"
        self.path = Path(settings.MEDIA_ROOT) / self.relative
        self.partial = self.path.with_name(self.path.name + ".part")

    def run(self) -> dict[str, Any]:
        export = self.export
        self.progress(1, "Checking consent")
        members = audience_customers(export.audience)
        left_out = left_out_counts(members, fmt=self.fmt, at=self.at)
        try:
            eligible = self.snapshot_members()
            members_now = eligible + sum(left_out.values())
            self.progress(5, f"Writing {eligible:,} rows")
            size, checksum = self.write_file(eligible)
        except BaseException:
            # A cancelled or failed export leaves neither a half file nor members behind.
            self.partial.unlink(missing_ok=True)
            ExportMember.objects.filter(export=export).delete()
            raise
        left_out["no_identifier"] = self.skipped
        snapshot = self.consent_snapshot(left_out, members_now)
        Export.objects.filter(pk=export.pk).update(
            row_count=self.result.rows, left_out=left_out, file_path=self.relative,
            file_size=size, checksum=checksum, consent_snapshot=snapshot,
        )
        audit_log(
            actor=export.created_by, action=AuditEvent.Action.EXPORT, target_type="export",
            target_ref=export.pk,
            details={"event": "written", "audience": export.audience_id,
                     "platform": export.platform, "rows": self.result.rows,
                     "left_out": left_out, "sha256": checksum},
        )
        return {"export": export.pk, "rows": self.result.rows, "left_out": left_out,
                "sha256": checksum, "bytes": size}

    def snapshot_members(self) -> int:
        """Copy the members who pass the gate now into ExportMember, best rank first."""
        source = (
            Customer.objects.filter(audience_memberships__audience=self.export.audience_id)
            .filter(export_gate_q(self.fmt, at=self.at))
            .order_by(F("audience_memberships__rank").asc(nulls_last=True), "pk")
            .values_list("pk", "pseudonym", "audience_memberships__score")
        )
        return insert_select(
            ExportMember, ["customer", "pseudonym", "score"], source,
            constants={"export": self.export.pk},
        )

    def rows(self, total: int) -> Iterator[Member]:
        identity = [f"customer__identity__{name}" for name in IDENTITY_FIELDS]
        rows = (
            ExportMember.objects.filter(export=self.export)
            .order_by("pk")
            .values_list("pseudonym", "score", *identity)
            .iterator(chunk_size=CHUNK_ROWS)
        )
        done = 0
        make = Member._make
        for row in rows:
            yield make(row)
            done += 1
            if done % CHUNK_ROWS == 0:
                self.forget_skipped()
                self.progress(5 + 94 * done / max(total, 1), f"Wrote {done:,} of {total:,} rows")
        self.forget_skipped()

    def forget_skipped(self) -> None:
        """Members without anything to match on are not in the file: not members either."""
        skipped = self.result.skipped
        for start in range(0, len(skipped), _DELETE_BATCH):
            ExportMember.objects.filter(
                export=self.export, pseudonym__in=skipped[start:start + _DELETE_BATCH]
            ).delete()
        self.skipped += len(skipped)
        skipped.clear()

    def write_file(self, total: int) -> tuple[int, str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.partial, "wb") as file:
            sink = _HashingSink(file)
            buffered = io.BufferedWriter(sink, buffer_size=1 << 20)
            text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
            self.fmt.write(self.rows(total), text, result=self.result)
            text.flush()
            buffered.flush()
        os.replace(self.partial, self.path)
        return sink.size, sink.digest.hexdigest()

    def consent_snapshot(self, left_out: dict[str, int], members: int) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "at": self.at.isoformat(),
            "required": [Purpose.AD_TARGETING.value],
            "suppression_list_size": Suppression.objects.count(),
            "members": members,
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
    if export.job.status != Job.Status.SUCCEEDED or not export.file_path:
        raise ExportFileMissing("This export has no file (it has not finished or it failed).")
    path = Path(settings.MEDIA_ROOT) / export.file_path
    if not path.is_file():
        raise ExportFileMissing("The export's file is no longer on the server.")
    return path


def export_download(*, export: Export, by) -> tuple[IO[bytes], str]:
    """Open the export's file for download (audit-logged); returns (file, file name)."""
    path = export_file(export)
    audit_log(
        actor=by, action=AuditEvent.Action.EXPORT, target_type="export", target_ref=export.pk,
        details={"event": "downloaded", "platform": export.platform, "sha256": export.checksum},
    )
    return open(path, "rb"), path.name
