"""Ingest benchmark: generated customers through the real CSV import path into PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ingest_customers.py

It creates (and afterwards drops) its own database, ``bench_ingest`` on the same server, so
test databases are left alone. It writes N realistic customer rows (PII, profile attributes,
two consent columns) to a temporary CSV, then times the product's path: ``upload_create`` ->
``upload_set_mapping`` -> ``upload_import`` (the Job runs inline). For comparison, the same run
times a plain Django ORM path (``bulk_create`` with ``update_conflicts``) on a slice of the file.
It prints one JSON object.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    drop_database,
    fresh_database,
    generate,
    import_through_product,
    postgres_server_url,
)

TARGET_ROWS_PER_S = 20_000


def empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE marketing_consentrecord, marketing_customeridentity, marketing_interaction,"
            " marketing_customer, marketing_profilefield RESTART IDENTITY CASCADE"
        )


def run_baseline(path: Path, rows: int) -> dict:
    """A plain Django ORM import of the first ``rows`` rows: DictReader + bulk_create upserts."""
    from django.db import transaction
    from django.utils import timezone

    from marketing.models import ConsentRecord, Customer, CustomerIdentity
    from marketing.pseudonyms import pseudonym_for

    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        data = list(islice(reader, rows))
    now = timezone.now()
    with transaction.atomic():
        customers = [
            Customer(
                external_id=r["customer_id"],
                pseudonym=pseudonym_for(r["customer_id"]),
                attributes={
                    "age": int(r["age"]),
                    "city": r["city"],
                    "plan": r["plan"],
                    "lifetime_value": float(r["lifetime_value"]),
                    "newsletter": r["newsletter"] == "yes",
                    "signup_date": r["signup_date"],
                },
            )
            for r in data
        ]
        Customer.objects.bulk_create(
            customers,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=["attributes", "updated_at"],
        )
        ids = dict(Customer.objects.values_list("external_id", "id"))
        CustomerIdentity.objects.bulk_create(
            [
                CustomerIdentity(
                    customer_id=ids[r["customer_id"]],
                    email=r["email"],
                    phone=r["phone"],
                    first_name=r["first_name"],
                    last_name=r["last_name"],
                    country=r["country"],
                    postal_code=r["postal_code"],
                )
                for r in data
            ],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["customer"],
            update_fields=["email", "phone", "first_name", "last_name", "country", "postal_code"],
        )
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    customer_id=ids[r["customer_id"]],
                    purpose=purpose,
                    status=r[f"consent_{purpose}"],
                    effective_at=now,
                    source=ConsentRecord.Source.CSV_IMPORT,
                )
                for r in data
                for purpose in ("email_marketing", "model_training")
                if r[f"consent_{purpose}"]
            ],
            batch_size=2000,
        )
    seconds = time.perf_counter() - started
    return {
        "method": "Django ORM: csv.DictReader + bulk_create(update_conflicts=True)",
        "rows": len(data),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(data) / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument(
        "--database", default="bench_ingest", help="database created (and dropped) for the run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    server_url = postgres_server_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    os.environ.update(
        DATABASE_URL=fresh_database(server_url, args.database),
        DATA_DIR=str(workdir),
        JOB_QUEUE="inline",
        CELERY_BROKER_URL="",
        DJANGO_SETTINGS_MODULE="marketing.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        csv_path = workdir / "customers.csv"
        generate(csv_path, args.rows)
        load_before = os.getloadavg()[0]
        measured = import_through_product(csv_path)
        # Peak resident memory of this process so far: generating the file and importing it.
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        empty_tables()
        baseline = run_baseline(csv_path, min(args.baseline_rows, args.rows))
        rows_per_s = args.rows / measured["seconds"]
        result = measured["result"]
        report = {
            "benchmark": "ingest_customers",
            "database": "postgresql",
            "rows": args.rows,
            "file_mb": round(csv_path.stat().st_size / 1e6, 1),
            "seconds": round(measured["seconds"], 2),
            "upload_seconds": round(measured["upload_seconds"], 2),
            "import_seconds": round(measured["import_seconds"], 2),
            "rows_per_s": round(rows_per_s),
            "created": result["created"],
            "consents_added": result["consents_added"],
            "peak_rss_mb": round(peak_rss_mb),
            "cpu_count": os.cpu_count(),
            # Other work on the machine slows both the import and PostgreSQL: the load
            # before and after the import, and the CPU time the import itself used.
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "cpu_seconds": {key: round(value, 2) for key, value in measured["cpu_seconds"].items()},
            "cpu_us_per_row": {
                key: round(1e6 * value / args.rows, 1)
                for key, value in measured["cpu_seconds"].items()
            },
            "baseline": baseline,
            "speedup_vs_baseline": round(rows_per_s / baseline["rows_per_s"], 1),
            "target_rows_per_s": TARGET_ROWS_PER_S,
            "pass": rows_per_s >= TARGET_ROWS_PER_S and result["created"] == args.rows,
        }
    finally:
        if not args.keep:
            drop_database(server_url, args.database)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
