"""Scoring benchmark: the product's scoring job over 1 M customers with the fast path, on one
and then two Celery worker processes, beside the int8 and BERT scorers on a 20,000-customer
slice.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scoring_fanout.py [--customers 1000000] [--keep]

It creates its own database (``--database``, dropped at the end unless ``--keep``) on the
server of ``DATABASE_URL`` and uses Redis database 9 of ``BENCH_REDIS_URL``
(redis://127.0.0.1:6379 by default) as the broker. What it does, all through the product:

- imports ``--customers`` generated customers with profiling and training consent (the
  product's import, files of 250,000 rows, jobs inline);
- records that an offer was shown to the first ``--responders`` customers and which of them
  converted (a rule on plan, age and lifetime value), and trains a click model on them with
  the product's training job (packaged MiniLM, LoRA, the product's defaults but for
  ``--train-rows`` rows), which measures the three scorers and stores the fast path;
- starts a real Celery worker (``celery -A marketing worker --concurrency N``, prefork, the
  product's settings: each process takes the machine's cores divided by N) and asks for
  scoring runs as the scoring form does (``scoring_run_create``): every customer with the fast
  path on 1 process, then on 2 processes; then the int8 copy and the served model on the
  segment "premium plan in Berlin" (about 2 % of the base: 20,800 customers at 1 M) on 2.

Each run's time is its job's, from start to end (planning, chunks sent to the workers,
scoring, writing and the summary). It prints one JSON document with rows/s for each run, the
speed-up of 2 processes over 1, the rows/s per process, the parts each process scored, the
machine's busy cores and CPU cost per 1,000 rows of each run, and the targets (2 processes
>= 1.6 x one; the fast path >= 20,000 rows/s per process) with a pass flag. Beside them (not
judged) the same two runs with one thread per process (WORKER_THREADS=1).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    drop_database,
    fresh_database,
    generate,
    load_average,
    log,
    postgres_server_url,
    wait_for_job,
)

SPEEDUP_TARGET = 1.6
FAST_TARGET_ROWS_PER_S_PER_PROCESS = 20_000
PURPOSES = ("profiling", "model_training")
ROWS_PER_FILE = 250_000
SLICE_RULES = {
    "op": "and",
    "rules": [
        {"field": "attr:plan", "operator": "eq", "value": "premium"},
        {"field": "attr:city", "operator": "eq", "value": "Berlin"},
    ],
}


def load_customers(count: int, workdir: Path, marketer) -> dict[str, Any]:
    from django.core.files import File

    from marketing.models import Job, Upload
    from marketing.services.ingest import upload_create, upload_import, upload_set_mapping

    started = time.perf_counter()
    for start in range(1, count + 1, ROWS_PER_FILE):
        rows = min(ROWS_PER_FILE, count + 1 - start)
        path = workdir / f"customers-{start}.csv"
        generate(path, rows, seed=start, start=start, purposes=PURPOSES)
        log(f"importing customers {start:,}-{start + rows - 1:,}")
        with path.open("rb") as handle:
            upload = upload_create(kind="customers", file=File(handle, name=path.name), by=marketer)
        path.unlink()
        upload_set_mapping(
            upload=upload, mapping=upload.mapping, mode=Upload.Mode.ALL_OR_NOTHING, by=marketer
        )
        job = wait_for_job(upload_import(upload=upload, by=marketer).pk)
        if job.status != Job.Status.SUCCEEDED:
            raise SystemExit(f"import job {job.pk} {job.status}: {job.message}")
        upload.file.delete(save=False)
    return {"customers": count, "seconds": round(time.perf_counter() - started, 1)}


def record_responses(responders: int):
    """An offer shown to the first ``responders`` customers, and their conversions."""
    from datetime import timedelta

    from django.utils import timezone

    from marketing.models import Customer, Interaction, Offer

    offer = Offer.objects.create(external_id="BENCH-OFFER", title="Premium upgrade")
    rng = random.Random(3)
    shown = timezone.now() - timedelta(days=20)
    interactions = []
    for pk, attributes in Customer.objects.order_by("pk").values_list("pk", "attributes")[
        :responders
    ]:
        interactions.append(
            Interaction(customer_id=pk, offer=offer, kind="impression", occurred_at=shown)
        )
        value = float(attributes.get("lifetime_value") or 0)
        chance = 0.05 + 0.25 * (attributes.get("plan") == "premium") + 0.1 * (value > 3000)
        chance += 0.1 * (int(attributes.get("age") or 0) < 30)
        if rng.random() < chance:
            interactions.append(
                Interaction(
                    customer_id=pk,
                    offer=offer,
                    kind="conversion",
                    occurred_at=shown + timedelta(hours=2),
                )
            )
    Interaction.objects.bulk_create(interactions, batch_size=5000)
    return offer


def train(offer, rows: int, marketer) -> Any:
    from marketing.models import Job
    from marketing.services.training import training_run_create

    run = training_run_create(
        name="bench · fan-out",
        segment=None,
        offer=offer,
        target="conversion",
        base_model="",
        mode="lora",
        params={"max_rows": rows, "time_budget_s": 900},
        by=marketer,
    )
    job = wait_for_job(run.job_id)
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"training {job.status}: {job.message}\n{job.error}")
    run.refresh_from_db()
    return run


class Worker:
    """``celery -A marketing worker`` with ``processes`` prefork processes."""

    def __init__(
        self, processes: int, broker_url: str, workdir: Path, *, threads: int | None = None
    ) -> None:
        self.log_path = workdir / f"worker-{processes}-{threads}.log"
        env = {
            **os.environ,
            "CELERY_BROKER_URL": broker_url,
            "JOB_QUEUE": "celery",
            "PYTHONUNBUFFERED": "1",
            **({"WORKER_THREADS": str(threads)} if threads else {}),
        }
        celery = Path(sys.executable).parent / "celery"
        with self.log_path.open("wb") as handle:
            self.process = subprocess.Popen(
                [
                    str(celery),
                    "-A",
                    "marketing",
                    "worker",
                    "-Q",
                    "default",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(processes),
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench-{processes}@%h",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self.log()}")
            time.sleep(0.5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def score(run, segment, scorer: str, marketer, worker: Worker) -> dict[str, Any]:
    from django.db.models import Max, Min

    from marketing.models import Job, ScoringChunk
    from marketing.services.scoring import scoring_run_create

    busy_before = machine_busy_seconds()
    requested = time.perf_counter()
    scoring = scoring_run_create(training_run=run, segment=segment, by=marketer, scorer=scorer)
    job = wait_for_job(scoring.job_id, poll_s=0.5)
    waited = time.perf_counter() - requested
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"scoring {job.status}: {job.message}\n{job.error}\n{worker.log()}")
    busy = machine_busy_seconds() - busy_before
    # The jobs a scoring run starts when it ends (its audience diversity) finish before the
    # next run, so that no run shares the worker with them.
    while Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).exists():
        time.sleep(0.5)
    seconds = (job.finished_at - job.started_at).total_seconds()
    rows = job.result["rows_scored"]
    chunks = ScoringChunk.objects.filter(scoring_run_id=scoring.pk)
    parts: dict[str, int] = {}
    for name in chunks.values_list("worker", flat=True):
        parts[name] = parts.get(name, 0) + 1
    span = chunks.aggregate(first=Min("started_at"), last=Max("finished_at"))
    return {
        "scorer": scorer,
        "rows": rows,
        "seconds": round(seconds, 2),
        "request_to_done_s": round(waited, 2),
        "rows_per_s": round(rows / seconds),
        "parts_per_process": sorted(parts.values(), reverse=True),
        # Before the first part started (planning) and after the last one (the summary).
        "planning_s": round((span["first"] - job.started_at).total_seconds(), 2),
        "summary_s": round((job.finished_at - span["last"]).total_seconds(), 2),
        # CPU time of the whole machine (workers, PostgreSQL, Redis, this process) while the
        # run went on: how many of the cores it kept busy, and its CPU cost per 1,000 rows.
        "cores_busy": round(busy / waited, 2),
        "cpu_ms_per_1000_rows": round(1000 * busy / max(rows, 1) * 1000, 1),
        "load_average": load_average(),
    }


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent on anything but idling, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--responders", type=int, default=12_000)
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--database", default="bench_scoring_fanout")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the data folder afterwards"
    )
    args = parser.parse_args()

    server_url = postgres_server_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    broker_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/") + "/9"
    os.environ.update(
        DATABASE_URL=fresh_database(server_url, args.database),
        DATA_DIR=str(workdir),
        # Loading and training run inline in this process; scoring goes to the workers.
        JOB_QUEUE="inline",
        # Celery reads the broker from the environment before the settings.
        CELERY_BROKER_URL=broker_url,
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
    )
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from bench.common import logged_in_client
    from marketing.models import ScoringRun
    from marketing.roles import MARKETER
    from marketing.services.segments import segment_create

    report: dict[str, Any] = {"benchmark": "scoring_fanout", "cpu_count": os.cpu_count()}
    worker: Worker | None = None
    try:
        call_command("migrate", verbosity=0)
        _, marketer = logged_in_client("bench-marketer", MARKETER)
        report["load"] = load_customers(args.customers, workdir, marketer)
        with_connection_analyze()
        offer = record_responses(args.responders)
        log("training")
        started = time.perf_counter()
        run = train(offer, args.train_rows, marketer)
        report["training"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "scorers_measured_at_training": run.metrics.get("scorers"),
        }
        slice_segment = segment_create(
            name="bench · premium in Berlin", rules=SLICE_RULES, by=marketer
        )
        redis.Redis.from_url(broker_url).flushdb()
        settings.JOB_QUEUE = "celery"
        runs: dict[str, Any] = {}
        for processes in (1, 2):
            worker = Worker(processes, broker_url, workdir)
            log(f"scoring every customer, fast path, {processes} process(es)")
            runs[f"fast_{processes}_process"] = score(
                run, None, ScoringRun.Scorer.FAST, marketer, worker
            )
            if processes == 2:
                for scorer in (ScoringRun.Scorer.INT8, ScoringRun.Scorer.SERVED):
                    log(f"scoring the slice with {scorer}, 2 processes")
                    runs[f"{scorer}_slice_2_process"] = score(
                        run, slice_segment, scorer, marketer, worker
                    )
            worker.stop()
            worker = None
        # Beside the product's figures: each process on one thread (WORKER_THREADS=1), as on
        # a machine with more cores than its processes use, where the one-process run cannot
        # borrow the second core for LightGBM.
        one_thread: dict[str, Any] = {}
        for processes in (1, 2):
            worker = Worker(processes, broker_url, workdir, threads=1)
            log(f"scoring every customer, fast path, {processes} process(es) of one thread")
            one_thread[f"fast_{processes}_process"] = score(
                run, None, ScoringRun.Scorer.FAST, marketer, worker
            )
            worker.stop()
            worker = None
        one_thread["speedup_2_over_1"] = round(
            one_thread["fast_2_process"]["rows_per_s"] / one_thread["fast_1_process"]["rows_per_s"],
            2,
        )
        one, two = runs["fast_1_process"], runs["fast_2_process"]
        speedup = two["rows_per_s"] / one["rows_per_s"]
        per_process = min(one["rows_per_s"], two["rows_per_s"] / 2)
        report.update(
            customers=args.customers,
            scoring_chunk_rows=settings.SCORING_CHUNK_ROWS,
            runs=runs,
            speedup_2_over_1=round(speedup, 2),
            one_thread_per_process=one_thread,
            fast_rows_per_s_per_process=round(per_process),
            targets={
                "speedup_2_over_1": SPEEDUP_TARGET,
                "fast_rows_per_s_per_process": FAST_TARGET_ROWS_PER_S_PER_PROCESS,
            },
            checks={
                "speedup": speedup >= SPEEDUP_TARGET,
                "fast_per_process": per_process >= FAST_TARGET_ROWS_PER_S_PER_PROCESS,
            },
        )
        report["pass"] = all(report["checks"].values())
    finally:
        if worker is not None:
            worker.stop()
        from django.db import connections

        connections.close_all()
        if args.keep:
            log(f"kept the database {args.database} and the folder {workdir}")
        else:
            drop_database(server_url, args.database)
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))


def with_connection_analyze() -> None:
    """What autovacuum does after a large load: statistics for the planner."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


if __name__ == "__main__":
    main()
