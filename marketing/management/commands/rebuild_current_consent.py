from django.core.management.base import BaseCommand, CommandParser

from marketing.services.current_consent import RebuildCounts, current_consent_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the current consent table from the consent history, a batch of customers "
        "per transaction; rows already right are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=20_000, help="customers per transaction"
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        def report(counts: RebuildCounts) -> None:
            if options["verbosity"] > 1:
                self.stdout.write(f"batch {counts.batches}: {counts.customers} customers so far")

        counts = current_consent_rebuild(batch_size=batch_size, report=report)
        self.stdout.write(
            f"customers: {counts.customers} in {counts.batches} batches\n"
            f"current consent rows: {counts.rows}\n"
            f"rows added or corrected: {counts.written}\n"
            f"rows without history removed: {counts.removed}"
        )
