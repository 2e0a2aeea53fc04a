from django.conf import settings
from django.core.management.base import BaseCommand

from marketing.services.retention import expired_tokens_purge, retention_purge


class Command(BaseCommand):
    help = (
        "Purge interactions, uploads, error files, export files and job logs older than their "
        "retention period (RETENTION_DAYS_* settings), and expired API tokens, as the daily "
        "scheduled purge does."
    )

    def handle(self, *args, **options) -> None:
        purged = retention_purge()
        for kind, days in settings.RETENTION_DAYS.items():
            if days:
                self.stdout.write(f"{kind}: {purged[kind]} purged (older than {days} days)")
            else:
                self.stdout.write(f"{kind}: kept forever")
        self.stdout.write(f"expired API tokens: {expired_tokens_purge()} deleted")
