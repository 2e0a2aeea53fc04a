"""What the benchmarks share: a quiet torch on a fixed number of threads, timestamped progress
on stderr (stdout carries only the JSON), the machine's load next to every timing, benchmark
databases of their own, generated customer files, the product's import, and pages timed
through the Django test client with the jobs they start."""

from __future__ import annotations

import csv
import os
import random
import re
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def quiet_torch(threads: int) -> None:
    """Fix torch's CPU threads and silence the progress bars and warnings of the libraries."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: on 2 cores anything above ~2 slows every timing."""
    return [round(value, 2) for value in os.getloadavg()]


# ---- benchmark databases ----------------------------------------------------------------------


def postgres_server_url() -> str:
    """``DATABASE_URL``, which must name a PostgreSQL server (its database is left alone)."""
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test"
        )
    return server_url


def server_connection(server_url: str):
    """An autocommit connection to the server's ``postgres`` database (to create and drop)."""
    import psycopg2

    connection = psycopg2.connect(urlunsplit(urlsplit(server_url)._replace(path="/postgres")))
    connection.autocommit = True
    return connection


def database_url(server_url: str, name: str, *, fresh: bool) -> tuple[str, bool]:
    """The URL of database ``name`` on the server of ``server_url``, created when missing (or
    dropped first when ``fresh``); and whether it was created now."""
    connection = server_connection(server_url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
        if exists and fresh:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}")), not exists


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; returns its URL."""
    return database_url(server_url, name, fresh=True)[0]


def drop_database(server_url: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    connection = server_connection(server_url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def backend_cpu_seconds(wrapper) -> float:
    """CPU time used so far by the PostgreSQL backend of a Django connection (same machine)."""
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU time used so far by this process (all its threads) and by the PostgreSQL backend
    of its connection, which inline jobs write through. On a shared machine these say what
    the work costs when the wall-clock time is stretched by other work."""
    from django.db import connection

    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"python": own.ru_utime + own.ru_stime, "postgres": backend_cpu_seconds(connection)}


# ---- generated customers ----------------------------------------------------------------------

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
PROFILE_HEADER = [
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
]
# Consent columns of the generated file: email marketing granted to 70 %, denied to 20 %,
# unknown for the rest; any other purpose granted to 85 %, denied otherwise.
DEFAULT_PURPOSES = ("email_marketing", "model_training")


def customer_id(number: int) -> str:
    return f"CUST-{number:07d}"


def generate(
    path: Path,
    rows: int,
    seed: int = 7,
    *,
    start: int = 1,
    purposes: Iterable[str] = DEFAULT_PURPOSES,
) -> None:
    """A customers CSV as a marketer would upload it: customers ``start`` to
    ``start + rows - 1`` with PII, profile attributes, one consent column per purpose and the
    consent date."""
    purposes = list(purposes)
    rng = random.Random(seed)
    first_day = date(2018, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [*PROFILE_HEADER, *(f"consent_{purpose}" for purpose in purposes), "consent_date"]
        )
        for i in range(start, start + rows):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            country = rng.randrange(len(COUNTRIES))
            signup = first_day + timedelta(days=rng.randrange(2500))
            consents = []
            for purpose in purposes:
                draw = rng.random()
                if purpose == "email_marketing":
                    consents.append("granted" if draw < 0.7 else ("denied" if draw < 0.9 else ""))
                else:
                    consents.append("granted" if draw < 0.85 else "denied")
            writer.writerow(
                [
                    customer_id(i),
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
                    *consents,
                    (signup + timedelta(days=rng.randrange(30))).isoformat(),
                ]
            )


def import_through_product(path: Path, *, by=None) -> dict[str, Any]:
    """The product's import of a customers CSV, timed from the upload to the finished import
    job: ``upload_create`` -> ``upload_set_mapping`` -> ``upload_import``. The job runs in
    whatever way ``JOB_QUEUE`` says; with a worker queue this waits for the Job row."""
    from django.core.files import File

    from marketing.models import Job, Upload
    from marketing.services.ingest import upload_create, upload_import, upload_set_mapping

    cpu_before = cpu_seconds()
    started = time.perf_counter()
    with path.open("rb") as handle:
        upload = upload_create(kind="customers", file=File(handle, name=path.name), by=by)
    uploaded = time.perf_counter()
    upload_set_mapping(
        upload=upload, mapping=upload.mapping, mode=Upload.Mode.ALL_OR_NOTHING, by=by
    )
    job = wait_for_job(upload_import(upload=upload, by=by).pk)
    finished = time.perf_counter()
    cpu = {key: value - cpu_before[key] for key, value in cpu_seconds().items()}
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"import job {job.status}: {job.message}")
    return {
        "seconds": finished - started,
        "upload_seconds": uploaded - started,
        "import_seconds": finished - uploaded,
        "result": job.result,
        "cpu_seconds": cpu,
    }


# ---- jobs -------------------------------------------------------------------------------------


def last_job_id() -> int:
    from marketing.models import Job

    return Job.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def wait_for_job(job_id: int, *, timeout_s: float = 6 * 3600, poll_s: float = 0.2):
    """The Job row once it has finished (at once for inline jobs)."""
    from marketing.models import Job

    deadline = time.monotonic() + timeout_s
    while True:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} ({job.kind}) still {job.status} after {timeout_s} s")
        time.sleep(poll_s)


def jobs_since(job_id: int, *, wait: bool = True) -> list[dict[str, Any]]:
    """The jobs created after ``job_id`` (what a request started), finished when ``wait``:
    kind, status, seconds from start to finish and from creation to finish."""
    from marketing.models import Job

    ids = list(Job.objects.filter(pk__gt=job_id).order_by("pk").values_list("pk", flat=True))
    jobs = [wait_for_job(pk) if wait else Job.objects.get(pk=pk) for pk in ids]
    return [
        {
            "job": job.pk,
            "kind": job.kind,
            "status": job.status,
            "seconds": _between(job.started_at, job.finished_at),
            "seconds_from_request": _between(job.created_at, job.finished_at),
            "error": job.error[:500],
        }
        for job in jobs
    ]


def _between(start, end) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


# ---- pages ------------------------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return round(time.perf_counter() - started, 3), result


def logged_in_client(username: str, role: str):
    """A Django test client logged in as a user holding ``role`` (created when missing)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user, _ = User.objects.get_or_create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


def page_time(
    request: Callable[[], Any], *, repeat: int, expect: Iterable[int] = (200,)
) -> dict[str, Any]:
    """One warm-up request, then ``repeat`` timed ones: their median, all of them, and the jobs
    the requests started (waited for after each request, so that they do not overlap the next
    timing; a page that starts a job is judged on its own time, the job on its duration)."""
    expected = tuple(expect)
    seconds: list[float] = []
    jobs: list[dict[str, Any]] = []
    for attempt in range(repeat + 1):
        before = last_job_id()
        elapsed, response = timed(request)
        if response.status_code not in expected:
            raise SystemExit(
                f"{getattr(response, 'request', {}).get('PATH_INFO', '?')}: HTTP "
                f"{response.status_code}, expected {expected}"
            )
        started = jobs_since(before)
        if attempt:
            seconds.append(elapsed)
            jobs.extend(started)
    return {
        "median_s": round(statistics.median(seconds), 3),
        "all_s": seconds,
        "status": response.status_code,
        "jobs": _job_summary(jobs),
    }


def _job_summary(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per job kind: how many ran and the median duration."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        kinds.setdefault(job["kind"], []).append(job)
    return [
        {
            "kind": kind,
            "count": len(rows),
            "failed": sum(row["status"] != "succeeded" for row in rows),
            "median_s": statistics.median([row["seconds"] or 0.0 for row in rows]),
        }
        for kind, rows in kinds.items()
    ]


NEXT_LINK = re.compile(
    r'<a\b[^>]*?href="(?P<a>[^"]+)"[^>]*\brel="next"'
    r'|<a\b[^>]*?rel="next"[^>]*?href="(?P<b>[^"]+)"'
    r'|<a\b[^>]*?href="(?P<c>[^"]+)"[^>]*>\s*Next\b',
    re.IGNORECASE,
)


def next_link(html: str) -> str | None:
    """The href of a page's "next page" link (``rel="next"`` or the text "Next")."""
    match = NEXT_LINK.search(html)
    if match is None:
        return None
    import html as html_lib

    return html_lib.unescape(match.group("a") or match.group("b") or match.group("c"))
