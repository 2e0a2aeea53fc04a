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
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_ROWS_PER_S = 20_000

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Maja",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
]
LAST_NAMES = [
    "Müller",
    "Smith",
    "García",
    "Rossi",
    "Dubois",
    "Novak",
    "Jensen",
    "Kowalski",
    "Silva",
    "Nagy",
    "Andersson",
    "Murphy",
    "Costa",
    "Weber",
    "Fischer",
    "O'Brien",
]
COUNTRIES = ["DE", "FR", "GB", "ES", "IT", "NL", "PL", "SE", "PT", "IE", "AT", "DK"]
CITIES = [
    "Berlin",
    "Paris",
    "London",
    "Madrid",
    "Rome",
    "Amsterdam",
    "Warsaw",
    "Stockholm",
    "Lisbon",
    "Dublin",
    "Vienna",
    "Copenhagen",
]
PLANS = ["free", "basic", "plus", "premium"]
HEADER = [
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "postal_code",
    "age",
    "city",
    "plan",
    "lifetime_value",
    "newsletter",
    "signup_date",
    "consent_email_marketing",
    "consent_model_training",
    "consent_date",
]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = date(2018, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            country = rng.randrange(len(COUNTRIES))
            signup = start + timedelta(days=rng.randrange(2500))
            consent = rng.random()
            writer.writerow(
                [
                    f"CUST-{i:07d}",
                    f"{first.lower().encode('ascii', 'ignore').decode()}.{i}@example.com",
                    first,
                    last,
                    f"+49 30 {rng.randrange(1000000, 9999999)}",
                    COUNTRIES[country],
                    f"{rng.randrange(10000, 99999)}",
                    rng.randrange(18, 90),
                    CITIES[country],
                    rng.choice(PLANS),
                    f"{rng.uniform(0, 5000):.2f}",
                    "yes" if rng.random() < 0.4 else "no",
                    signup.isoformat(),
                    "granted" if consent < 0.7 else ("denied" if consent < 0.9 else ""),
                    "granted" if rng.random() < 0.85 else "denied",
                    (signup + timedelta(days=rng.randrange(30))).isoformat(),
                ]
            )


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; returns its URL."""
    import psycopg2

    parts = urlsplit(server_url)
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    import psycopg2
    from django.db import connections

    connections.close_all()
    parts = urlsplit(server_url)
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE marketing_consentrecord, marketing_customeridentity, marketing_interaction,"
            " marketing_customer, marketing_profilefield RESTART IDENTITY CASCADE"
        )


def run_service(path: Path) -> dict:
    """The product's path, timed from the upload to the finished import job."""
    from django.core.files import File

    from marketing.models import Job, Upload
    from marketing.services.ingest import upload_create, upload_import, upload_set_mapping

    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with path.open("rb") as handle:
        upload = upload_create(kind="customers", file=File(handle, name=path.name), by=None)
    uploaded = time.perf_counter()
    upload_set_mapping(
        upload=upload, mapping=upload.mapping, mode=Upload.Mode.ALL_OR_NOTHING, by=None
    )
    job = upload_import(upload=upload, by=None)
    finished = time.perf_counter()
    cpu = {key: value - cpu_before[key] for key, value in _cpu_seconds().items()}
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"import job {job.status}: {job.message}")
    return {
        "seconds": finished - started,
        "upload_seconds": uploaded - started,
        "import_seconds": finished - uploaded,
        "result": job.result,
        "cpu_seconds": cpu,
    }


def _cpu_seconds() -> dict[str, float]:
    """CPU time used so far by this process (all its threads) and by the PostgreSQL backend
    of its connection, which the inline import job writes through. On a shared machine these
    say what the import costs when the wall-clock time is stretched by other work."""
    from django.db import connection

    own = resource.getrusage(resource.RUSAGE_SELF)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "python": own.ru_utime + own.ru_stime,
        "postgres": (int(fields[11]) + int(fields[12])) / ticks,
    }


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

    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test"
        )
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
        measured = run_service(csv_path)
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
