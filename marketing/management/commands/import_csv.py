from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings

from marketing.ingest.fields import KINDS
from marketing.models import Job, Upload
from marketing.services.ingest import (
    IngestError,
    upload_create,
    upload_import,
    upload_set_mapping,
)


class Command(BaseCommand):
    help = (
        "Import a CSV file of customers, offers or interactions through the same path as the "
        "upload wizard, with the column mapping guessed from its header."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--mode", choices=Upload.Mode.values, default=Upload.Mode.ALL_OR_NOTHING
        )
        parser.add_argument("--encoding", help="the file's encoding (default UTF-8)")
        parser.add_argument("--user", help="username recorded as the uploader")
        parser.add_argument(
            "--background",
            action="store_true",
            help="hand the import to the job queue instead of running it here",
        )

    def handle(
        self,
        *args,
        kind: str,
        path: Path,
        mode: str,
        encoding: str | None,
        user: str | None,
        background: bool,
        **options,
    ) -> None:
        by = get_user_model().objects.get(username=user) if user else None
        queue = settings.JOB_QUEUE if background else "inline"
        try:
            with path.open("rb") as handle:
                upload = upload_create(
                    kind=kind, file=File(handle, name=path.name), by=by, encoding=encoding
                )
            upload_set_mapping(upload=upload, mapping=upload.mapping, mode=mode, by=by)
            with override_settings(JOB_QUEUE=queue):
                job = upload_import(upload=upload, by=by)
        except (IngestError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        job.refresh_from_db()
        if background:
            self.stdout.write(f"Import queued as job {job.pk}.")
            return
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"Import failed: {job.message}")
        result = job.result
        self.stdout.write(
            f"Imported {result['valid']:,} of {result['rows']:,} rows: {result['created']:,} new, "
            f"{result['updated']:,} updated."
        )
        if result["invalid"]:
            self.stdout.write(
                f"Rows with problems: {result['invalid']:,}; see "
                f"{Path(settings.MEDIA_ROOT) / result['error_file']}"
            )
