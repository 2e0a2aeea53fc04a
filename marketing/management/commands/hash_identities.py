from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketing.services.identity_hashing import DEFAULT_BATCH_SIZE, identities_hash_stored


class Command(BaseCommand):
    help = (
        "After switching HASH_IDENTIFIERS_ON_UPLOAD on: replace the plain email, phone, names "
        "and postal codes already stored by the ad platforms' digests, and remove them from "
        "the stored customer uploads (which then cannot be imported again). Safe to rerun."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help="identities hashed per transaction",
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if not settings.HASH_IDENTIFIERS_ON_UPLOAD:
            raise CommandError(
                "Set HASH_IDENTIFIERS_ON_UPLOAD=true for the web app and the workers first; "
                "otherwise new uploads would store plain identifiers again."
            )
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        counts = identities_hash_stored(batch_size=batch_size)
        self.stdout.write(
            self.style.SUCCESS(
                f"Hashed {counts['identities']:,} identities; removed the identifiers from "
                f"{counts['uploads']:,} stored uploads."
            )
        )
