"""Jobs are never lost nor left running: a job whose worker stops marking it alive is
restarted (kinds that can start over) or ended with a message; cancelling always ends a job;
a job queued too long without a worker is sent again; a worker whose job was taken from it
writes nothing more."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.models import Job, Upload
from marketing.services import jobs as job_service
from marketing.services.ingest import upload_create, upload_import, upload_set_mapping
from tests.marketing.services.ingest_helpers import csv_file, customers_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def runners():
    saved, restartable = dict(job_service._RUNNERS), set(job_service._RESTARTABLE)

    def add(kind, func, *, restartable=False):
        job_service.register_runner(kind, restartable=restartable)(func)

    yield add
    job_service._RUNNERS.clear()
    job_service._RUNNERS.update(saved)
    job_service._RESTARTABLE.clear()
    job_service._RESTARTABLE.update(restartable)


def _running(kind, *, silent_for: float, attempts: int = 1, **fields) -> Job:
    """A job a worker took, that has not been marked alive for ``silent_for`` seconds."""
    beat = timezone.now() - timedelta(seconds=silent_for)
    return Job.objects.create(
        kind=kind,
        status=Job.Status.RUNNING,
        started_at=beat,
        heartbeat_at=beat,
        attempts=attempts,
        **fields,
    )


def test_a_job_whose_worker_was_lost_is_restarted_and_finishes(runners, settings):
    calls = []
    runners(
        Job.Kind.ERASE,
        lambda job, progress: calls.append(job.attempts) or {"ok": 1},
        restartable=True,
    )
    job = _running(Job.Kind.ERASE, silent_for=settings.JOB_LEASE_SECONDS + 5)

    counts = job_service.jobs_reconcile()

    job.refresh_from_db()
    assert counts["restarted"] == 1
    assert (job.status, job.attempts, calls) == (Job.Status.SUCCEEDED, 2, [2])


def test_a_job_marked_alive_within_its_lease_is_left_alone(runners, settings):
    runners(Job.Kind.ERASE, lambda job, progress: {}, restartable=True)
    job = _running(Job.Kind.ERASE, silent_for=settings.JOB_LEASE_SECONDS - 30)

    assert job_service.jobs_reconcile() == {
        "restarted": 0,
        "failed": 0,
        "cancelled": 0,
        "resent": 0,
    }
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING


def test_a_kind_that_cannot_start_over_is_failed_with_a_message(runners, settings):
    runners(Job.Kind.ERASE, lambda job, progress: {})
    job = _running(Job.Kind.ERASE, silent_for=settings.JOB_LEASE_SECONDS + 5)

    job_service.jobs_reconcile()

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.finished_at
    assert job.message.startswith("Its worker stopped before the job finished")
    assert "Start it again" in job.message


def test_a_job_out_of_attempts_is_failed_not_restarted(runners, settings):
    runners(Job.Kind.ERASE, lambda job, progress: {}, restartable=True)
    job = _running(
        Job.Kind.ERASE,
        silent_for=settings.JOB_LEASE_SECONDS + 5,
        attempts=settings.JOB_MAX_ATTEMPTS,
    )

    job_service.jobs_reconcile()

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert f"{settings.JOB_MAX_ATTEMPTS} times" in job.message


def test_an_orphan_someone_asked_to_cancel_is_cancelled(runners, settings):
    runners(Job.Kind.ERASE, lambda job, progress: {}, restartable=True)
    job = _running(Job.Kind.ERASE, silent_for=settings.JOB_LEASE_SECONDS + 5, cancel_requested=True)

    job_service.jobs_reconcile()

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.finished_at


def test_cancelling_a_job_whose_worker_was_lost_ends_it_at_once(marketer, settings):
    job = _running(Job.Kind.TRAIN, silent_for=settings.JOB_LEASE_SECONDS + 5)

    job = job_service.job_cancel(job=job, by=marketer)

    assert job.status == Job.Status.CANCELLED
    assert job.message == job_service.CANCELLED_ORPHAN


def test_cancelling_a_live_job_asks_its_worker(marketer):
    job = _running(Job.Kind.TRAIN, silent_for=1)

    job = job_service.job_cancel(job=job, by=marketer)

    assert (job.status, job.cancel_requested) == (Job.Status.RUNNING, True)


def test_a_job_queued_too_long_is_sent_again(runners, settings):
    ran = []
    runners(Job.Kind.ERASE, lambda job, progress: ran.append(job.pk) or {})
    long_ago = timezone.now() - timedelta(seconds=settings.JOB_RESEND_AFTER_SECONDS + 5)
    lost = Job.objects.create(kind=Job.Kind.ERASE, sent_at=long_ago)
    waiting = Job.objects.create(kind=Job.Kind.ERASE, sent_at=timezone.now())

    counts = job_service.jobs_reconcile()

    assert counts["resent"] == 1 and ran == [lost.pk]
    waiting.refresh_from_db()
    assert waiting.status == Job.Status.QUEUED


def test_a_worker_whose_job_was_taken_over_writes_nothing_more(runners, settings):
    runners(Job.Kind.ERASE, lambda job, progress: {}, restartable=True)
    job = _running(Job.Kind.ERASE, silent_for=1, attempts=1)
    stale_progress = job_service.make_progress(job.pk, attempt=1)
    Job.objects.filter(pk=job.pk).update(attempts=2)  # a later attempt took it

    with pytest.raises(job_service.JobCancelled):
        stale_progress(50, "still here")
    assert not job_service._finish(job.pk, 1, status=Job.Status.SUCCEEDED)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Job.Status.RUNNING, 0)


def test_a_queued_import_cancelled_leaves_its_upload_importable(
    marketer, django_capture_on_commit_callbacks
):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(3)), by=marketer)
    upload_set_mapping(upload=upload, mapping=upload.mapping, mode="all_or_nothing", by=marketer)
    with django_capture_on_commit_callbacks(execute=False):
        job = upload_import(upload=upload, by=marketer)

    job_service.job_cancel(job=job, by=marketer)

    upload.refresh_from_db()
    assert upload.status == Upload.Status.FAILED
    assert upload.summary["error"] == job_service.CANCELLED_QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        again = upload_import(upload=upload, by=marketer)
    again.refresh_from_db()
    upload.refresh_from_db()
    assert again.status == Job.Status.SUCCEEDED
    assert upload.status == Upload.Status.IMPORTED and "error" not in upload.summary


@pytest.mark.django_db(transaction=True)
def test_a_running_job_is_marked_alive_while_its_runner_works(runners, settings, marketer):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    beats = []

    def slow(job, progress):
        for _ in range(6):
            time.sleep(0.05)
            beats.append(Job.objects.get(pk=job.pk).heartbeat_at)
        return {}

    runners(Job.Kind.ERASE, slow)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 1
    assert len(set(beats)) >= 3  # the heartbeat moved while the runner slept
    assert not any(t.name.endswith("-heartbeat") for t in threading.enumerate())


def _train(by, name="Weekly model"):
    from marketing.services.training import training_run_create

    return training_run_create(
        name=name,
        segment=None,
        offer=None,
        target="conversion",
        base_model="",
        mode="lora",
        params={"epochs": 1},
        by=by,
    )


def test_the_same_training_request_again_returns_its_unfinished_run(marketer, monkeypatch):
    monkeypatch.setattr(job_service, "enqueue", lambda job: None)  # queued, never run here

    first, again = _train(marketer), _train(marketer)
    other = _train(marketer, name="Another model")

    assert again.pk == first.pk and again.job_id == first.job_id
    assert other.pk != first.pk
    Job.objects.filter(pk=first.job_id).update(status=Job.Status.SUCCEEDED)
    assert _train(marketer).pk != first.pk  # once finished, a new request is a new run
    assert Job.objects.filter(kind=Job.Kind.TRAIN).count() == 3


def test_the_same_request_again_finds_a_job_already_sent_to_a_celery_queue(marketer, monkeypatch):
    # Sending a job to Celery records its queue among its parameters; the next identical
    # request must still recognise it (a double click on a deployment with workers).
    monkeypatch.setattr(job_service, "enqueue", lambda job: None)
    first = _train(marketer)
    job = Job.objects.get(pk=first.job_id)
    Job.objects.filter(pk=job.pk).update(params={**job.params, job_service.QUEUE_PARAM: "gpu"})

    assert _train(marketer).pk == first.pk
    assert Job.objects.filter(kind=Job.Kind.TRAIN).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_identical_training_requests_at_once_start_one_job(marketer, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    monkeypatch.setattr(job_service, "enqueue", lambda job: None)
    start = threading.Barrier(2)
    runs = []

    def request():
        try:
            start.wait()
            runs.append(_train(marketer).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(runs) == 2 and runs[0] == runs[1]
    assert Job.objects.filter(kind=Job.Kind.TRAIN).count() == 1


def test_a_database_error_is_told_in_words_and_its_text_kept_for_staff(
    runners, marketer, django_capture_on_commit_callbacks
):
    from django.db import OperationalError

    def cut(job, progress):
        raise OperationalError("server closed the connection unexpectedly")

    runners(Job.Kind.ERASE, cut)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.message.startswith("The job stopped on a database error (OperationalError)")
    assert "server closed" not in job.message
    assert job.error == "OperationalError: server closed the connection unexpectedly"


@pytest.mark.django_db(transaction=True)
def test_a_restarted_server_takes_over_what_the_last_one_left(runners, settings):
    """The in-process queue keeps its queue in memory: the sweep a (re)started server runs
    first sends the waiting jobs to it, and restarts the runs that lost their process."""
    from django.db import connection

    if connection.vendor != "postgresql":
        # The sweep, the worker and the heartbeat are three threads writing at once: SQLite's
        # shared in-memory test database refuses that ("table is locked") where a file
        # database waits its turn.
        pytest.skip("concurrent writers need PostgreSQL")
    settings.JOB_QUEUE = "thread"
    ran = []
    runners(Job.Kind.ERASE, lambda job, progress: ran.append(job.pk) or {}, restartable=True)
    waiting = Job.objects.create(kind=Job.Kind.ERASE, sent_at=timezone.now())
    lost = _running(Job.Kind.ERASE, silent_for=settings.JOB_LEASE_SECONDS + 5)

    job_service.in_process_sweeper_stop()  # as a new process: no sweep running yet
    job_service.in_process_sweeper_start()
    try:
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and Job.objects.exclude(status=Job.Status.SUCCEEDED).exists()
        ):
            time.sleep(0.1)
    finally:
        job_service.in_process_sweeper_stop()

    assert set(Job.objects.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
    assert sorted(ran) == sorted([waiting.pk, lost.pk])
    assert Job.objects.get(pk=lost.pk).attempts == 2


def test_the_web_server_starts_the_sweep_with_the_in_process_queue(settings, monkeypatch):
    import importlib

    import marketing.wsgi

    started = []
    monkeypatch.setattr(job_service, "in_process_sweeper_start", lambda: started.append(1))
    settings.JOB_QUEUE = "thread"
    importlib.reload(marketing.wsgi)
    settings.JOB_QUEUE = "celery"
    importlib.reload(marketing.wsgi)

    assert started == [1]
