from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketing.ingest import IngestError
from marketing.management.commands.load_demo import count_the_base
from marketing.services.demo import movielens_load


class Command(BaseCommand):
    help = (
        "Import MovieLens 100K from a folder you downloaded (ml-100k from GroupLens; its "
        "licence forbids redistribution): 943 customers with consent records, 1,682 movies "
        "as offers and 100,000 ratings as responses. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "folder", type=Path, help="the unzipped ml-100k folder (u.data, u.item, u.user...)"
        )

    def handle(self, *args, folder: Path, **options) -> None:
        try:
            counts = movielens_load(folder=folder)
        except IngestError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"MovieLens 100K: {counts['customers']:,} customers "
            f"({counts['customers_created']:,} new), "
            f"{counts['consents_added']:,} consent records added, "
            f"{counts['offers']:,} movies ({counts['offers_created']:,} new), "
            f"{counts['impressions']:,} ratings as impressions and "
            f"{counts['conversions']:,} as conversions "
            f"({counts['interactions_created']:,} interactions new)."
        )
        count_the_base(self.stdout)
