from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser

from marketing.ingest.demo import load_demo_data
from marketing.roles import DATA_STEWARD, MARKETER, VIEWER, sync_role_groups

DEMO_USERS = (("marketer", MARKETER), ("steward", DATA_STEWARD), ("viewer", VIEWER))


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
            sync_role_groups()
            for username, role in DEMO_USERS:
                user, _ = User.objects.get_or_create(username=username)
                user.set_password(password)
                # The admin console is the data steward's (data and consent); marketers and
                # viewers work in the app, which shows them what their role allows.
                user.is_staff = role == DATA_STEWARD
                user.save()
                user.groups.set([Group.objects.get(name=role)])
                self.stdout.write(f"Login: {username} / {password} (role {role})")
