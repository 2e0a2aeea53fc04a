"""A real Celery worker on the real Redis broker and the pytest PostgreSQL database.

``celery_worker`` (session) starts ``celery -A marketing worker`` in a subprocess that uses
the test database pytest-django created; ``celery_jobs`` (per test) makes this process
enqueue jobs to it. Tests that use them need ``transactional_db`` so the worker sees their
rows. Set INTEGRATION_BROKER_URL to use another Redis database (default 13).
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("INTEGRATION_BROKER_URL", "redis://127.0.0.1:6379/13")
READY_TIMEOUT_S = 120


@dataclass
class Worker:
    process: subprocess.Popen
    broker_url: str
    media_root: Path
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _worker_database_url(settings_db: dict) -> str:
    """The URL of the database pytest-django created (its name is set after setup)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{settings_db['NAME']}"))


def start_worker(
    data_dir: Path,
    *,
    name: str,
    queues: str = "default",
    include: tuple[str, ...] = (),
    **env_extra: str,
) -> Worker:
    """A ``celery -A marketing worker`` process on the test database and BROKER_URL, writing
    its files under ``data_dir``, importing the modules ``include`` too (a test's faults);
    returned once it is ready."""
    from django.conf import settings

    log_path = data_dir / f"{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketing.settings",
        "DATABASE_URL": _worker_database_url(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": BROKER_URL,
        "JOB_QUEUE": "celery",
        "DATA_DIR": str(data_dir),
        "PSEUDONYM_KEY": settings.PSEUDONYM_KEY,
        "SUPPRESSION_KEY": settings.SUPPRESSION_KEY,
        "PYTHONUNBUFFERED": "1",
        **env_extra,
    }
    celery = Path(sys.executable).parent / "celery"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "marketing",
                "worker",
                "-Q",
                queues,
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *(["--include", ",".join(include)] if include else []),
                "-n",
                f"{name}-{os.getpid()}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, BROKER_URL, data_dir / "media", log_path)
    try:
        _wait_until_ready(worker)
    except BaseException:
        stop_worker(worker)
        raise
    return worker


def stop_worker(worker: Worker, *, kill: bool = False) -> None:
    """Stop the worker: SIGKILL with ``kill`` (as a crash or the out-of-memory killer would),
    else a warm shutdown."""
    if worker.process.poll() is not None:
        return
    if kill:
        worker.process.kill()
    else:
        worker.process.terminate()
    try:
        worker.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@contextmanager
def broker(url: str) -> Iterator[None]:
    """This process sends jobs to ``url`` meanwhile. Celery reads CELERY_BROKER_URL from the
    environment before its configuration: a developer's own broker there would take this
    process's jobs away from the test's workers."""
    from marketing.celery import app

    previous_broker = app.conf.broker_url
    previous_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    # The producers made for the previous broker would keep sending there.
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url = previous_broker
        app.amqp._producer_pool = None
        if previous_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous_env


def _needs_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: the Celery worker is another process and cannot open pytest's "
            "SQLite test database (run with DATABASE_URL=postgres://...)"
        )


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    _needs_postgres()
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()  # no jobs left over from an earlier run
    worker = start_worker(tmp_path_factory.mktemp("worker"), name="pytest")
    try:
        with broker(BROKER_URL):
            yield worker
    finally:
        stop_worker(worker)


def _wait_until_ready(worker: Worker) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(
                f"the Celery worker exited ({worker.process.returncode}):\n{worker.log_tail()}"
            )
        if " ready." in worker.log_path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    pytest.fail(f"the Celery worker was not ready after {READY_TIMEOUT_S} s:\n{worker.log_tail()}")


@pytest.fixture
def celery_jobs(celery_worker, settings):
    """Jobs created in this test go to the real worker through Redis; the test ends when the
    worker has nothing left to do, before its tables are emptied."""
    settings.JOB_QUEUE = "celery"
    settings.CELERY_BROKER_URL = celery_worker.broker_url
    settings.MEDIA_ROOT = celery_worker.media_root  # the worker reads uploads from here
    yield celery_worker
    wait_until_idle(celery_worker)


# Tasks the worker took and tasks it finished, as its log names them.
_RECEIVED = re.compile(r"Task \S+\[[^\]]+\] received")
_FINISHED = re.compile(
    r"Task \S+\[[^\]]+\] (succeeded|failed|raised|retry)|Discarding revoked task: \S+\["
)


def wait_until_idle(worker: Worker, timeout: float = 120) -> None:
    """Until every task the worker received has finished and no job waits, seen twice half a
    second apart: a finished job can hand the worker a follow-up task (its chunks, a count),
    and the worker writing while the test's tables are emptied deadlocks the two."""
    from marketing.models import Job

    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline:
        log = worker.log_path.read_text(errors="replace")
        busy = len(_RECEIVED.findall(log)) > len(_FINISHED.findall(log)) or (
            Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).exists()
        )
        calm = 0 if busy else calm + 1
        if calm == 2:
            return
        time.sleep(0.5)
    pytest.fail(f"the Celery worker was still busy after {timeout} s:\n{worker.log_tail()}")


def wait_for_job(job, worker: Worker, timeout: float = 60):
    """Poll the Job row until it finishes; fail with the worker's log if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.25)
    pytest.fail(
        f"job {job.pk} still {job.status} after {timeout} s; worker log:\n{worker.log_tail()}"
    )


# ---- several workers, started and killed by a test -------------------------------------------

# A broker database of their own: the session's worker must not take these tests' jobs.
RECOVERY_BROKER_URL = BROKER_URL.rsplit("/", 1)[0] + "/12"
LEASE_S = 3
LEASE = {"JOB_HEARTBEAT_SECONDS": "1", "JOB_LEASE_SECONDS": str(LEASE_S)}


class Workers:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.started: list = []

    def start(self, name: str, *, include: tuple[str, ...] = (), **env: str):
        worker = start_worker(
            self.data_dir,
            name=name,
            include=include,
            CELERY_BROKER_URL=RECOVERY_BROKER_URL,
            **LEASE,
            **env,
        )
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(worker.log_tail() for worker in self.started)


@pytest.fixture
def workers(settings, tmp_path):
    _needs_postgres()
    queue = redis.Redis.from_url(RECOVERY_BROKER_URL)
    queue.flushdb()
    settings.JOB_QUEUE = "celery"
    settings.CELERY_BROKER_URL = RECOVERY_BROKER_URL
    settings.MEDIA_ROOT = tmp_path / "media"  # the workers' DATA_DIR is tmp_path
    settings.JOB_HEARTBEAT_SECONDS = 1
    settings.JOB_LEASE_SECONDS = LEASE_S
    pool = Workers(tmp_path)
    try:
        with broker(RECOVERY_BROKER_URL):
            yield pool
    finally:
        for worker in pool.started:
            stop_worker(worker, kill=True)
        queue.flushdb()


def wait_until(condition, what: str, pool: Workers, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} after {timeout} s; worker logs:\n{pool.logs()}")


def nothing_left() -> bool:
    from marketing.models import Job

    return not Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).exists()


def sweep_after_the_lease(pool: Workers) -> dict[str, int]:
    from marketing.services.jobs import jobs_reconcile

    time.sleep(LEASE_S + 1)
    return jobs_reconcile()


def customers_upload(tmp_path: Path, rows: int, by, **generate_options):
    """A generated customers file uploaded and mapped (not imported yet)."""
    from django.core.files import File

    from bench.common import generate
    from marketing.services.ingest import upload_create, upload_set_mapping

    path = tmp_path / "customers.csv"
    generate(path, rows, **generate_options)
    with path.open("rb") as handle:
        upload = upload_create(kind="customers", file=File(handle, name=path.name), by=by)
    upload_set_mapping(upload=upload, mapping=upload.mapping, mode="all_or_nothing", by=by)
    return upload
