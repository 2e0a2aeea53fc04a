import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketing.pseudonyms import key_fingerprint
from marketing.services.pseudonym_keys import (
    DEFAULT_BATCH_SIZE,
    PseudonymKeyError,
    pseudonym_key_rotate,
)


class Command(BaseCommand):
    help = (
        "Re-key every stored pseudonym (customers, audit trail, audience members, export "
        "exclusions, model lineage) from the current PSEUDONYM_KEY to a new key, in batches. "
        "Stop the web app and the workers first. Interrupted, it continues where it stopped "
        "when run again with the same keys. Keys are read from environment variables, never "
        "from the command line (which shell histories and process lists keep)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--old-key-env",
            metavar="NAME",
            help="environment variable holding the old key (default: the PSEUDONYM_KEY setting)",
        )
        parser.add_argument(
            "--new-key-env",
            metavar="NAME",
            default="NEW_PSEUDONYM_KEY",
            help="environment variable holding the new key (default: NEW_PSEUDONYM_KEY)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help="rows re-keyed per transaction",
        )

    def handle(
        self,
        *args,
        old_key_env: str | None,
        new_key_env: str,
        batch_size: int,
        verbosity: int,
        **options,
    ) -> None:
        old_key = _key_from(old_key_env) if old_key_env else settings.PSEUDONYM_KEY
        new_key = _key_from(new_key_env)
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        self.stdout.write(
            f"Re-keying pseudonyms from key {key_fingerprint(old_key)} to key "
            f"{key_fingerprint(new_key)}."
        )

        def report(step: str, rows: int) -> None:
            if verbosity > 1:
                self.stdout.write(f"  {step}: {rows:,} re-keyed")

        try:
            rotation = pseudonym_key_rotate(
                old_key=old_key, new_key=new_key, batch_size=batch_size, on_batch=report
            )
        except PseudonymKeyError as exc:
            raise CommandError(str(exc)) from exc
        for step, rows in rotation.counts.items():
            self.stdout.write(f"  {step}: {rows:,}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Done. Now set PSEUDONYM_KEY to the new key (fingerprint "
                f"{rotation.new_key_fingerprint}) for the web app and every worker, restart them, "
                f"and remove {new_key_env} from the environment. Imports are refused until then."
            )
        )


def _key_from(name: str) -> str:
    key = os.environ.get(name, "")
    if not key:
        raise CommandError(f"Set the environment variable {name} to the key.")
    return key
