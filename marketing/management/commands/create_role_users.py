import secrets

from django.core.management.base import BaseCommand, CommandParser

from marketing.roles import ROLE_USERS, role_users_create


class Command(BaseCommand):
    help = (
        "Create one login per role (marketer, steward, viewer) and nothing else: the start of "
        "a base loaded with your own data. Each new login gets a random password, printed "
        "once, unless --password is given; existing logins are left alone unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default="",
            help="one password for the three logins (default: a random one each)",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="also give existing logins the password and their role again",
        )

    def handle(self, *args, password: str, reset: bool, **options) -> None:
        passwords = {username: password or secrets.token_urlsafe(12) for username, _ in ROLE_USERS}
        for username, role, was_set in role_users_create(passwords, reset=reset):
            if was_set:
                self.stdout.write(f"Login: {username} / {passwords[username]} (role {role})")
            else:
                self.stdout.write(f"Login: {username} exists (role {role}); --reset to reset it")
