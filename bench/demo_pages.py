"""A marketer's pages on the demo data, as the browser asks for them: JSON on stdout.

    .venv/bin/python bench/demo_pages.py                 # embedded defaults (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/demo_pages.py

The bank demo is loaded by the product's loader into a fresh database (SQLite in a temporary
folder, or a database of its own on the PostgreSQL server that DATABASE_URL names), with the
product's in-process job queue. A click model is trained through the training form (a short
time budget: the pages do not depend on how good it is) and every customer is scored through
the scoring form with its default scorer. Then, through the Django test client (one warm-up,
then the median of ``--repeat`` requests; jobs a request starts are waited for and timed on
their own), as a marketer:

- the overview and a segment's page;
- the audience builder's live preview (the API call its panel makes) without a cut, then with
  each score cut (top 10 %, top 1,000, score at least the median);
- the builder's "Freeze" (the form post; its freeze and figures jobs timed from their rows)
  without a cut and with a top 10 % cut;
- the first export request of each platform on the frozen, cut audience.

Target: each request under 500 ms on this machine, the calls with a cut beside the same calls
without one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    database_url,
    drop_database,
    jobs_since,
    last_job_id,
    load_average,
    log,
    logged_in_client,
    page_time,
    quiet_torch,
    timed,
    wait_for_job,
)

TARGET_S = 0.5
DATABASE = "bench_demo_pages"
AGE_RULES = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 30}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per call")
    parser.add_argument("--limit", type=int, help="load only the first N demo customers")
    parser.add_argument("--train-minutes", type=int, default=1, help="the model's time budget")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="demo-pages-"))
    server_url = os.environ.get("DATABASE_URL", "")
    postgres = server_url.startswith(("postgres://", "postgresql://"))
    try:
        if postgres:
            url, _ = database_url(server_url, DATABASE, fresh=True)
        else:
            url = f"sqlite:///{folder / 'bench.sqlite3'}"
        report = run(args, folder, url)
    finally:
        if postgres:
            from django.db import connections

            connections.close_all()
            drop_database(server_url, DATABASE)
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(report, indent=1))


def run(args: argparse.Namespace, folder: Path, url: str) -> dict[str, Any]:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DATABASE_URL=url,
        DATA_DIR=str(folder),
        CELERY_BROKER_URL="",
        FILE_STORE_URL="",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    os.environ.pop("JOB_QUEUE", None)  # the product's default: the in-process queue
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from marketing.roles import MARKETER
    from marketing.services.jobs import job_threads

    quiet_torch(job_threads())
    log(f"database {settings.DATABASES['default']['ENGINE']}, queue {settings.JOB_QUEUE}")
    call_command("migrate", verbosity=0, stdout=io.StringIO())
    log("loading the demo data")
    said = io.StringIO()  # stdout carries only the JSON
    seconds, _ = timed(lambda: call_command("load_demo", limit=args.limit, stdout=said))
    log(said.getvalue().strip())
    client, _ = logged_in_client("bench-marketer", MARKETER)
    from marketing.models import Customer

    customers = Customer.objects.count()
    log(f"{customers:,} customers loaded in {seconds} s")
    segment = make_segment(client)
    scoring_run = train_and_score(client, args.train_minutes)
    calls = measure(client, segment, scoring_run, args.repeat)
    return {
        "benchmark": "demo_pages",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "job_queue": settings.JOB_QUEUE,
        "customers": customers,
        "segment_figures": segment_figures(segment),
        "repeat": args.repeat,
        "calls": calls,
        "target_s": TARGET_S,
        "checks": checks(calls),
        "load_average": load_average(),
    }


def segment_figures(segment) -> dict[str, Any]:
    from marketing.models import SegmentFigures

    row = SegmentFigures.objects.filter(segment=segment).first()
    return row.figures if row else {}


def make_segment(client):
    from marketing.models import Segment

    before = last_job_id()
    response = client.post(
        "/api/segments/",
        data={"name": "Aged 30 and over", "rules": AGE_RULES},
        content_type="application/json",
    )
    if response.status_code != 201:
        raise SystemExit(f"segment: HTTP {response.status_code} {response.content[:300]!r}")
    jobs_since(before)
    return Segment.objects.get(name="Aged 30 and over")


def train_and_score(client, minutes: int):
    from marketing.models import Job, Offer, ScoringRun, TrainingRun

    offer = Offer.objects.order_by("pk").first()
    log(f"training a click model for {minutes} min through the form")
    before = last_job_id()
    response = client.post(
        "/models/new/",
        {
            "time_budget_minutes": minutes,
            "name": "bench model",
            "offer": offer.pk,
            "target": TrainingRun.Target.CONVERSION,
            "base_model": django_setting("CLICK_MODEL_BASE"),
            "mode": TrainingRun.Mode.LORA,
            "batch_size": 64,
            "max_length": 64,
        },
    )
    if response.status_code != 302:
        raise SystemExit(f"training form: HTTP {response.status_code}")
    for job in jobs_since(before):
        if job["status"] != Job.Status.SUCCEEDED:
            raise SystemExit(f"training job {job['status']}: {job['error']}")
    run = TrainingRun.objects.get(name="bench model")
    log("scoring every customer through the scoring form (its default scorer)")
    before = last_job_id()
    response = client.post(f"/models/{run.pk}/score/", {"segment": ""})
    if response.status_code != 302:
        raise SystemExit(f"scoring form: HTTP {response.status_code}")
    jobs_since(before)
    scoring_run = ScoringRun.objects.filter(training_run=run).latest("pk")
    job = wait_for_job(scoring_run.job_id)
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"scoring job {job.status}: {job.error}")
    log(f"{scoring_run.rows_scored:,} customers scored")
    return scoring_run


def django_setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)


def median_score(scoring_run) -> float:
    from marketing.models import CustomerScore

    scores = CustomerScore.objects.filter(scoring_run=scoring_run)
    count = scores.count()
    return float(scores.order_by("score").values_list("score", flat=True)[count // 2])


def measure(client, segment, scoring_run, repeat: int) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def call(name: str, request, **kwargs) -> None:
        log(f"timing {name}")
        calls[name] = page_time(request, repeat=repeat, **kwargs)

    call("overview", lambda: client.get("/"))
    call("segment_page", lambda: client.get(f"/segments/{segment.pk}/"))
    cuts = {
        "no_cut": ("all", None),
        "top_10_percent": ("top_percent", 10.0),
        "top_1000": ("top_n", 1000),
        "score_at_least_median": ("threshold", round(median_score(scoring_run), 4)),
    }
    for name, (cut, value) in cuts.items():
        body = {"segment": segment.pk, "scoring_run": scoring_run.pk, "cut": cut}
        body["cut_value"] = value
        call(
            f"audience_preview_{name}",
            lambda body=body: client.post(
                "/api/audiences/preview/", data=body, content_type="application/json"
            ),
        )
    freezes = {"no_cut": ("all", ""), "top_10_percent": ("top_percent", "10")}
    frozen: dict[str, int] = {}
    for name, (cut, value) in freezes.items():
        calls[f"audience_freeze_{name}"], frozen[name] = freeze(
            client, segment, scoring_run, cut, value, repeat
        )
    for platform in ("google_customer_match", "meta_custom_audience_csv", "tiktok_customer_file"):
        calls[f"first_export_{platform}"] = first_export(client, frozen["top_10_percent"], platform)
    return calls


def freeze(client, segment, scoring_run, cut: str, value: str, repeat: int):
    """The builder's form post, ``repeat`` times (a new audience each): request times, and the
    jobs it starts (freeze, figures) from their own rows."""
    from marketing.models import Audience

    log(f"timing audience_freeze_{cut}")
    seconds, jobs, last = [], [], 0
    for attempt in range(repeat + 1):
        name = f"bench {cut} {attempt}"
        before = last_job_id()
        elapsed, response = timed(
            lambda name=name: client.post(
                "/audiences/new/",
                {
                    "name": name,
                    "segment": segment.pk,
                    "scoring_run": scoring_run.pk,
                    "offer": "",
                    "cut": cut,
                    "cut_value": value,
                },
            )
        )
        if response.status_code != 302:
            raise SystemExit(f"audience builder: HTTP {response.status_code}")
        started = jobs_since(before)
        audience = Audience.objects.get(name=name)
        if not audience.is_frozen:
            raise SystemExit(f"audience {audience.pk} is {audience.status} after its jobs")
        last = audience.pk
        if attempt:
            seconds.append(elapsed)
            jobs.extend(started)
    import statistics

    by_kind: dict[str, list[float]] = {}
    for job in jobs:
        by_kind.setdefault(job["kind"], []).append(job["seconds"] or 0.0)
    return {
        "median_s": round(statistics.median(seconds), 3),
        "all_s": seconds,
        "members": Audience.objects.get(pk=last).size,
        "jobs": [
            {"kind": kind, "count": len(values), "median_s": round(statistics.median(values), 3)}
            for kind, values in by_kind.items()
        ],
    }, last


def first_export(client, audience_pk: int, platform: str) -> dict[str, Any]:
    from marketing.models import Export

    log(f"timing the first {platform} export")
    before = last_job_id()
    seconds, response = timed(
        lambda: client.post(f"/audiences/{audience_pk}/export/", {"platform": platform})
    )
    if response.status_code != 302:
        raise SystemExit(f"export: HTTP {response.status_code}")
    jobs = jobs_since(before)
    export = Export.objects.filter(audience=audience_pk, platform=platform).latest("pk")
    return {"median_s": seconds, "all_s": [seconds], "rows": export.row_count, "jobs": jobs}


def checks(calls: dict[str, Any]) -> dict[str, Any]:
    slowest = max(calls.items(), key=lambda item: item[1]["median_s"])
    return {
        "every_request_under_target": all(c["median_s"] < TARGET_S for c in calls.values()),
        "slowest": {"call": slowest[0], "median_s": slowest[1]["median_s"]},
        "preview_cut_over_no_cut": {
            name: round(
                calls[name]["median_s"] / max(calls["audience_preview_no_cut"]["median_s"], 1e-3),
                2,
            )
            for name in calls
            if name.startswith("audience_preview_") and name != "audience_preview_no_cut"
        },
        "freeze_cut_over_no_cut": round(
            calls["audience_freeze_top_10_percent"]["median_s"]
            / max(calls["audience_freeze_no_cut"]["median_s"], 1e-3),
            2,
        ),
    }


if __name__ == "__main__":
    main()
