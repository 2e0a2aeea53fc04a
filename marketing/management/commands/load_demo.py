from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser, OutputWrapper
from django.test.utils import override_settings

from marketing.ingest.demo import load_demo_data
from marketing.roles import ROLE_USERS, role_users_create
from marketing.services.figures import figures_refresh_all


class Command(BaseCommand):
    help = (
        "Load the bundled demo data (UCI Bank Marketing, CC BY 4.0): 41,188 customers with "
        "consent records, the term-deposit offer and the calls' outcomes. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, help="load only the first N rows of the file")
        parser.add_argument(
            "--users",
            action="store_true",
            help="also create the demo logins marketer, steward and viewer",
        )
        parser.add_argument(
            "--password",
            default="demo-password-123",
            help="password of the demo logins (the default is for local demos)",
        )

    def handle(self, *args, limit: int | None, users: bool, password: str, **options) -> None:
        counts = load_demo_data(limit=limit)
        self.stdout.write(
            f"Demo data: {counts['customers']:,} customers ({counts['customers_created']:,} new), "
            f"{counts['consents_added']:,} consent records added, "
            f"{counts['interactions']:,} interactions ({counts['interactions_created']:,} new)."
        )
        count_the_base(self.stdout)
        if users:
            for username, role, _ in role_users_create({u: password for u, _ in ROLE_USERS}):
                self.stdout.write(f"Login: {username} / {password} (role {role})")


def count_the_base(stdout: OutputWrapper) -> None:
    """Count the customer base and the segments, as an import does, so that the overview
    shows the loaded data at once. The in-process queue's threads end with the command: the
    counts run here; a Celery queue's workers take them."""
    if settings.JOB_QUEUE == "thread":
        with override_settings(JOB_QUEUE="inline"):
            jobs = figures_refresh_all(by=None)
        stdout.write(f"Customer base and {len(jobs) - 1} segment(s) counted.")
    else:
        figures_refresh_all(by=None)
        stdout.write("Counting the customer base and the segments on the job queue.")
