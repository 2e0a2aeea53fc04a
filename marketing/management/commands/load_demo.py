from django.core.management.base import BaseCommand, CommandParser

from marketing.ingest.demo import load_demo_data
from marketing.roles import ROLE_USERS, role_users_create


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
        if users:
            for username, role, _ in role_users_create({u: password for u, _ in ROLE_USERS}):
                self.stdout.write(f"Login: {username} / {password} (role {role})")
