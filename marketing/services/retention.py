"""Retention: data older than its configured period is purged (``settings.RETENTION_DAYS``).

Each kind has its own period in days; 0 keeps that kind forever. Export records stay when
their files go (who received which people, when, with which checksum), and upload rows stay
when only their error files go. Files are deleted once the database change is committed.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from marketing.filestore import media_remove
from marketing.models import AuditEvent, Export, Interaction, Job, Upload
from marketing.services.audit import audit_log

logger = logging.getLogger(__name__)


def _delete_stored_files_on_commit(names: list[str]) -> None:
    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete)


def _purge_interactions(cutoff: datetime) -> int:
    deleted, _ = Interaction.objects.filter(occurred_at__lt=cutoff).delete()
    return deleted


def _purge_uploads(cutoff: datetime) -> int:
    old = Upload.objects.filter(created_at__lt=cutoff)
    names = [name for pair in old.values_list("file", "error_file") for name in pair if name]
    count = old.count()
    old.delete()
    _delete_stored_files_on_commit(names)
    return count


def _purge_upload_error_files(cutoff: datetime) -> int:
    old = Upload.objects.filter(created_at__lt=cutoff).exclude(error_file="")
    names = list(old.values_list("error_file", flat=True))
    old.update(error_file="")
    _delete_stored_files_on_commit(names)
    return len(names)


def _purge_export_files(cutoff: datetime) -> int:
    old = Export.objects.filter(created_at__lt=cutoff).exclude(file_path="")
    names = list(old.values_list("file_path", flat=True))
    old.update(file_path="", file_size=0)
    transaction.on_commit(lambda: media_remove(names))
    return len(names)


def _purge_job_logs(cutoff: datetime) -> int:
    """Finished jobs with their messages, parameters and errors; a job that a run or an
    export still refers to stays with it."""
    kept_by = {
        f"{relation.name}__isnull": True
        for relation in Job._meta.related_objects
        if relation.on_delete is models.PROTECT
    }
    old = Job.objects.filter(status__in=Job.FINISHED, finished_at__lt=cutoff, **kept_by)
    count = old.count()
    old.delete()
    return count


PURGERS: dict[str, Callable[[datetime], int]] = {
    "interactions": _purge_interactions,
    # Before the error files: an upload that goes takes its error file with it.
    "uploads": _purge_uploads,
    "upload_error_files": _purge_upload_error_files,
    "export_files": _purge_export_files,
    "job_logs": _purge_job_logs,
}


@transaction.atomic
def expired_tokens_purge(*, now: datetime | None = None) -> int:
    """Delete the API tokens past their expiry (a token is refused once expired; the check
    of a request deletes only the token it was sent: ``marketing.api.tokens``)."""
    from knox.models import get_token_model

    return get_token_model().objects.filter(expiry__lt=now or timezone.now()).delete()[0]


def retention_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Purge every kind whose period is set; returns the number purged per kind."""
    now = now or timezone.now()
    days = {kind: d for kind, d in settings.RETENTION_DAYS.items() if d}
    unknown = set(days) - set(PURGERS)
    if unknown:
        raise ValueError(f"RETENTION_DAYS has unknown kinds: {', '.join(sorted(unknown))}")
    purged = {kind: PURGERS[kind](now - timedelta(days=d)) for kind, d in days.items()}
    audit_log(
        actor=None,
        action=AuditEvent.Action.RETENTION,
        target_type="retention",
        details={"purged": purged, "days": days},
    )
    logger.info("Retention purge: %s", purged or "nothing to purge (no period set)")
    return purged
