"""Scale benchmark: the dashboard, the audience freeze and the Meta export at 1 M and 10 M
customers, every customer loaded through the product's import.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scale_10m.py [--sizes 1000000,10000000] [--keep]

It creates its own database (``--database``, dropped at the end unless ``--keep``) on the
server of ``DATABASE_URL``. For each size, smallest first, it brings the base up to that size
by importing generated customer files (``--rows-per-file`` rows each, written to a temporary
folder and deleted once uploaded) through the product's path: every file uploaded and mapped
(``upload_create`` -> ``upload_set_mapping``), then their import Jobs started together, as a
marketer loading a large base would; the uploads are deleted after the imports. It runs
VACUUM ANALYZE as autovacuum would after such a load, waits for autovacuum to finish before
timing pages, then measures as a logged-in marketer through the Django test client (DEBUG
off, jobs on the in-process worker queue):

- pages: the overview, the segment list, a consent-rule segment's page, the segment builder's
  live count of a consent rule (``POST /api/segments/preview/``), the customer list filtered
  on consent (first page, and a deep page: the last page while the list is numbered, else the
  page after the product's next-page link), a customer search by external-id prefix and the
  audience page. Each figure is the median of ``--repeat`` requests after one warm-up. When a
  request starts jobs (a count that moved to the worker, say) the page is judged on its own
  time and the jobs' durations are reported beside it (found through the Job rows);
- the freeze of an audience of everyone with ad-targeting consent (the builder's form) and the
  Meta Custom Audiences export of it (the audience page's export button), as request time and
  job duration, with the export's rows/s.

It prints one JSON document: the figures at each size, and for each page the ratio of its time
at the largest size to its time at the smallest, with the targets (a page under 500 ms at the
largest size and at most 1.5 times its time at the smallest, an import of at least 20,000
rows/s, an export of at least 50,000 rows/s) and a pass flag for each.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    customer_id,
    drop_database,
    fresh_database,
    generate,
    jobs_since,
    last_job_id,
    load_average,
    log,
    logged_in_client,
    next_link,
    page_time,
    postgres_server_url,
    timed,
    wait_for_job,
)

PAGE_TARGET_S = 0.5
RATIO_TARGET = 1.5
IMPORT_TARGET_ROWS_PER_S = 20_000
EXPORT_TARGET_ROWS_PER_S = 50_000
# Disk a customer takes at the end: the database measured 1.4 kB per customer at 100,000
# (rows, indexes, audience members) and the export file 0.5 kB per member; doubled for WAL,
# indexes yet to come and headroom.
DISK_BYTES_PER_CUSTOMER = 4_500
# A generated row is 148 bytes; the check leaves room for longer ids and names.
FILE_BYTES_PER_ROW = 180
PURPOSES = ("email_marketing", "ad_targeting", "model_training")
PLATFORM = "meta_custom_audience"
EMAIL_CONSENT = {
    "op": "and",
    "rules": [{"field": "consent:email_marketing", "operator": "has_consent"}],
}
AD_CONSENT = {"op": "and", "rules": [{"field": "consent:ad_targeting", "operator": "has_consent"}]}
PLAN_IN_BERLIN = {
    "op": "and",
    "rules": [
        {"field": "attr:plan", "operator": "eq", "value": "premium"},
        {"field": "attr:city", "operator": "eq", "value": "Berlin"},
    ],
}


def check_disk(sizes: list[int], rows_per_file: int, workdir: Path, server_url: str) -> dict:
    """Refuse to start when the temporary folder or the database's disk lacks room."""
    # The uploads of the largest step wait for their imports together.
    needed_files = (max(sizes) - (min(sizes) if len(sizes) > 1 else 0)) * FILE_BYTES_PER_ROW
    needed_database = max(sizes) * DISK_BYTES_PER_CUSTOMER
    free = {"temp": shutil.disk_usage(workdir).free}
    data_directory = _data_directory(server_url)
    if data_directory is not None and Path(data_directory).exists():
        free["database"] = shutil.disk_usage(data_directory).free
    same_disk = data_directory is None or not Path(data_directory).exists()
    if same_disk or os.stat(workdir).st_dev == os.stat(data_directory).st_dev:
        # One disk for both (or the server's disk cannot be seen from here: then the check
        # is on the temporary folder's, which is right for a server on this machine).
        problems = free["temp"] < needed_files + needed_database
    else:
        problems = free["temp"] < needed_files or free["database"] < needed_database
    report = {
        "free_gb": {key: round(value / 1e9, 1) for key, value in free.items()},
        "needed_gb": round((needed_files + needed_database) / 1e9, 1),
    }
    if problems:
        raise SystemExit(
            f"Too little disk for {max(sizes):,} customers: {report['needed_gb']} GB needed "
            f"({DISK_BYTES_PER_CUSTOMER} bytes per customer and the uploads of the largest step), "
            f"free: {report['free_gb']} GB."
        )
    return report


def _data_directory(server_url: str) -> str | None:
    from bench.common import server_connection

    connection = server_connection(server_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            return cursor.fetchone()[0]
    except Exception:  # only superusers may read it; the caller then checks the temp disk
        return None
    finally:
        connection.close()


def grow_to(size: int, rows_per_file: int, workdir: Path, marketer) -> dict[str, Any]:
    """Import customers until the base holds ``size``, as a marketer loads a large base: the
    files are uploaded and mapped first (each generated file deleted once uploaded), then
    their imports are started together and run one after another on the job queue. The
    import time runs from the first import's start to the last one's end."""
    from django.core.files import File

    from marketing.models import Customer, Job, Upload
    from marketing.services.ingest import upload_create, upload_import, upload_set_mapping

    first = Customer.objects.count() + 1
    rows = size - first + 1
    if rows <= 0:
        raise SystemExit(f"the base holds {first - 1:,} customers already, more than {size:,}")
    uploads = []
    for start in range(first, size + 1, rows_per_file):
        count = min(rows_per_file, size + 1 - start)
        path = workdir / f"customers-{start}.csv"
        generate(path, count, seed=start, start=start, purposes=PURPOSES)
        log(f"uploading customers {start:,}-{start + count - 1:,}")
        with path.open("rb") as handle:
            upload = upload_create(kind="customers", file=File(handle, name=path.name), by=marketer)
        upload_set_mapping(
            upload=upload, mapping=upload.mapping, mode=Upload.Mode.ALL_OR_NOTHING, by=marketer
        )
        path.unlink()
        uploads.append((upload, count))
    log(f"importing {len(uploads)} files")
    before = last_job_id()
    jobs = [upload_import(upload=upload, by=marketer).pk for upload, _ in uploads]
    finished = [wait_for_job(pk) for pk in jobs]
    for job, (upload, count) in zip(finished, uploads, strict=True):
        if job.status != Job.Status.SUCCEEDED:
            raise SystemExit(f"import job {job.pk} {job.status}: {job.message}")
        if job.result["created"] != count:
            created = job.result["created"]
            raise SystemExit(f"the import of {upload.original_name} created {created}")
    seconds = (finished[-1].finished_at - finished[0].started_at).total_seconds()
    # The counts the imports started (overview, segments): made once, after the last file.
    counts = [job for job in jobs_since(before) if job["kind"] != Job.Kind.IMPORT]
    for upload, _ in uploads:
        upload.file.delete(save=False)
    return {
        "rows": rows,
        "files": len(uploads),
        "file_seconds": [
            round((job.finished_at - job.started_at).total_seconds(), 2) for job in finished
        ],
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "target_rows_per_s": IMPORT_TARGET_ROWS_PER_S,
        "pass": rows / seconds >= IMPORT_TARGET_ROWS_PER_S,
        "counts_after": [
            {key: job[key] for key in ("kind", "status", "seconds")} for job in counts
        ],
    }


def vacuum_analyze() -> float:
    """What autovacuum does after a large load (statistics, and the visibility map that
    index-only scans rely on), at once rather than while pages are being timed."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return round(time.perf_counter() - started, 2)


def autovacuum_done(timeout_s: float = 1800) -> float:
    """Wait until no autovacuum worker runs on this database (after the freeze has written
    its members, say), so that pages are timed on a quiet server; the seconds waited."""
    from django.db import connection

    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity "
                "WHERE backend_type = 'autovacuum worker' AND datname = current_database()"
            )
            if cursor.fetchone()[0] == 0:
                break
        time.sleep(1)
    return round(time.perf_counter() - started, 1)


def database_figures(customers: int) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
    return {"database_mb": round(size / 1e6), "bytes_per_customer": round(size / customers)}


def deep_customer_page(client, first_url: str, repeat: int) -> dict[str, Any]:
    """A deep page of the consent-filtered list. While the list is numbered (``page=``), the
    last page (the largest OFFSET). With a cursor, the next-page link taken from the first
    page; a cursor's depth does not change the work it asks for, which is its point."""
    html = client.get(first_url).content.decode()
    link = next_link(html)
    if link is None:
        raise SystemExit(f"{first_url}: no next-page link on the first page")
    if "page=" in link:
        url = f"{first_url}&page=last"
        how = "numbered pages: page=last"
    else:
        url = link if link.startswith("/") else f"/customers/{link}"
        how = "cursor: the first page's next-page link"
    return {"url": url, "how": how, **page_time(lambda: client.get(url), repeat=repeat)}


def measure_pages(client, segments: dict, audience_pk: int | None, repeat: int) -> dict:
    consent_list = "/customers/?consent=email_marketing"
    search = f"/customers/?q={customer_id(12)[:-1]}"  # 10 customers at any size
    pages: dict[str, Any] = {}

    def get(name: str, url: str) -> None:
        log(f"timing {name}")
        pages[name] = {"url": url, **page_time(lambda: client.get(url), repeat=repeat)}

    get("overview", "/")
    get("segment_list", "/segments/")
    get("segment_detail_consent_rule", f"/segments/{segments['email'].pk}/")
    log("timing consent_live_count")
    pages["consent_live_count"] = {
        "url": "POST /api/segments/preview/",
        **page_time(
            lambda: client.post(
                "/api/segments/preview/",
                data={"rules": EMAIL_CONSENT},
                content_type="application/json",
            ),
            repeat=repeat,
            expect=(200, 201, 202),
        ),
    }
    get("customer_list_consent_first_page", consent_list)
    log("timing customer_list_consent_deep_page")
    pages["customer_list_consent_deep_page"] = deep_customer_page(client, consent_list, repeat)
    get("customer_search_external_id_prefix", search)
    if audience_pk is not None:
        get("audience_page", f"/audiences/{audience_pk}/")
    return pages


def freeze_audience(client, segment, size: int) -> tuple[int, dict[str, Any]]:
    """The audience builder's form: everyone with ad-targeting consent, frozen."""
    from marketing.models import Audience

    name = f"bench · ad consent · {size:,}"
    before = last_job_id()
    seconds, response = timed(
        lambda: client.post(
            "/audiences/new/",
            {"name": name, "segment": segment.pk, "scoring_run": "", "offer": "", "cut": "all"},
        )
    )
    if response.status_code != 302:
        raise SystemExit(f"audience builder: HTTP {response.status_code}")
    jobs = jobs_since(before)
    audience = Audience.objects.get(name=name)
    if not audience.is_frozen:
        raise SystemExit(f"audience {audience.pk} is {audience.status} after its jobs")
    return audience.pk, {
        "request_s": seconds,
        "jobs": jobs,
        # The freeze's own duration: its job's when it runs as one, else the request's.
        "seconds": sum(job["seconds"] or 0 for job in jobs) if jobs else seconds,
        "members": audience.size,
    }


def export_audience(client, audience_pk: int) -> dict[str, Any]:
    """The audience page's export button for Meta Custom Audiences, to the end of its job."""
    from django.conf import settings

    from marketing.models import Export

    before = last_job_id()
    seconds, response = timed(
        lambda: client.post(f"/audiences/{audience_pk}/export/", {"platform": PLATFORM})
    )
    if response.status_code != 302:
        raise SystemExit(f"audience export: HTTP {response.status_code}")
    jobs = jobs_since(before)
    export = Export.objects.select_related("job").get(job__pk__gt=before, audience=audience_pk)
    if export.job.status != "succeeded":
        raise SystemExit(f"export job {export.job.status}: {export.job.error}")
    job_seconds = (export.job.finished_at - export.job.started_at).total_seconds()
    (Path(settings.MEDIA_ROOT) / export.file_path).unlink(missing_ok=True)
    rows_per_s = export.row_count / job_seconds if job_seconds else float("inf")
    return {
        "request_s": seconds,
        "jobs": jobs,
        "seconds": round(job_seconds, 3),
        "rows": export.row_count,
        "file_mb": round(export.file_size / 1e6, 1),
        "rows_per_s": round(rows_per_s),
        "target_rows_per_s": EXPORT_TARGET_ROWS_PER_S,
        "pass": rows_per_s >= EXPORT_TARGET_ROWS_PER_S,
    }


def make_segments(marketer) -> dict:
    from marketing.services.segments import segment_create

    return {
        "email": segment_create(name="bench · email consent", rules=EMAIL_CONSENT, by=marketer),
        "ads": segment_create(name="bench · ad consent", rules=AD_CONSENT, by=marketer),
        "plan": segment_create(name="bench · premium in Berlin", rules=PLAN_IN_BERLIN, by=marketer),
    }


def checks(at_size: dict[int, dict]) -> dict[str, Any]:
    """Each page against the targets: its time at the largest size, and that time over its
    time at the smallest; the freeze's growth is reported the same way, without a target."""
    smallest, largest = at_size[min(at_size)], at_size[max(at_size)]
    pages = {}
    for name, big in largest["pages"].items():
        small = smallest["pages"].get(name)
        ratio = big["median_s"] / small["median_s"] if small and small["median_s"] else None
        under = big["median_s"] < PAGE_TARGET_S
        ratio_ok = ratio is not None and ratio <= RATIO_TARGET
        # A page that hands its work to a job passes only when the job succeeds.
        jobs_ok = all(job["failed"] == 0 for job in big["jobs"])
        pages[name] = {
            "smallest_s": small["median_s"] if small else None,
            "largest_s": big["median_s"],
            "ratio": round(ratio, 2) if ratio is not None else None,
            "under_500_ms": under,
            "ratio_ok": ratio_ok,
            "jobs_at_largest": big["jobs"],
            "pass": under and ratio_ok and jobs_ok,
        }
    freeze_ratio = largest["audience_freeze"]["seconds"] / max(
        smallest["audience_freeze"]["seconds"], 1e-3
    )
    return {
        "pages": pages,
        "audience_freeze_ratio": round(freeze_ratio, 2),
        "import": {size: figures["import"]["pass"] for size, figures in at_size.items()},
        "export": {size: figures["meta_export"]["pass"] for size, figures in at_size.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated, ascending")
    parser.add_argument("--database", default="bench_scale_10m")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed requests per page")
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.sizes.split(",")})
    if sizes[0] < 1000:
        raise SystemExit("--sizes: at least 1,000 customers each")

    server_url = postgres_server_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        disk = check_disk(sizes, args.rows_per_file, workdir, server_url)
    except SystemExit:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    os.environ.update(
        DATABASE_URL=fresh_database(server_url, args.database),
        DATA_DIR=str(workdir),
        # Jobs run on the in-process worker, so that a page that starts one answers at once
        # and the job's duration is read from its row.
        JOB_QUEUE="thread",
        CELERY_BROKER_URL="",
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from marketing.roles import MARKETER

    at_size: dict[int, dict] = {}
    try:
        if settings.MAX_UPLOAD_BYTES < args.rows_per_file * FILE_BYTES_PER_ROW:
            raise SystemExit(
                f"--rows-per-file {args.rows_per_file:,} makes files above MAX_UPLOAD_BYTES "
                f"({settings.MAX_UPLOAD_BYTES:,}); use fewer rows per file"
            )
        call_command("migrate", verbosity=0)
        client, marketer = logged_in_client("bench-marketer", MARKETER)
        segments = None
        for size in sizes:
            figures: dict[str, Any] = {
                "import": grow_to(size, args.rows_per_file, workdir, marketer)
            }
            figures["vacuum_analyze_s"] = vacuum_analyze()
            # The attribute rule needs the profile fields of the first import.
            segments = segments or make_segments(marketer)
            figures.update(database_figures(size))
            figures["load_average"] = load_average()
            audience_pk, figures["audience_freeze"] = freeze_audience(client, segments["ads"], size)
            figures["autovacuum_wait_s"] = autovacuum_done()
            figures["pages"] = measure_pages(client, segments, audience_pk, args.repeat)
            log("exporting the audience")
            figures["meta_export"] = export_audience(client, audience_pk)
            at_size[size] = figures
            log(f"{size:,} customers measured")
        result = checks(at_size)
        report = {
            "benchmark": "scale_10m",
            "database": "postgresql",
            "sizes": sizes,
            "rows_per_file": args.rows_per_file,
            "repeat": args.repeat,
            "cpu_count": os.cpu_count(),
            "disk": disk,
            "at_size": at_size,
            "targets": {
                "page_s_at_largest": PAGE_TARGET_S,
                "ratio_largest_to_smallest": RATIO_TARGET,
                "import_rows_per_s": IMPORT_TARGET_ROWS_PER_S,
                "export_rows_per_s": EXPORT_TARGET_ROWS_PER_S,
            },
            "checks": result,
            "failing_pages": [name for name, page in result["pages"].items() if not page["pass"]],
            "pass": (
                all(page["pass"] for page in result["pages"].values())
                and all(result["import"].values())
                and all(result["export"].values())
            ),
        }
    finally:
        if not args.keep:
            drop_database(server_url, args.database)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
