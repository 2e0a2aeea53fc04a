"""Jobs survive the faults of a real deployment: Celery workers killed midway (SIGKILL, as a
crash or the out-of-memory killer does), a broker that lost its queue, a database connection
cut during an import. Real worker processes, Redis and PostgreSQL; the sweep
(``jobs_reconcile``, which celery beat runs every minute) is called by the test."""

import threading
import time

import pytest
import redis

from marketing.models import CurrentConsent, Customer, Job, Upload
from marketing.services.ingest import upload_import
from marketing.services.jobs import jobs_reconcile
from marketing.services.training import training_run_create
from tests.factories import make_offer
from tests.integration.conftest import (
    RECOVERY_BROKER_URL,
    customers_upload,
    nothing_left,
    stop_worker,
    sweep_after_the_lease,
    wait_for_job,
    wait_until,
)
from tests.marketing.training_helpers import FAST_PARAMS, make_click_customers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_import_whose_worker_is_killed_midway_is_restarted_and_imports_each_row_once(
    workers, marketer, tmp_path
):
    rows = 60_000
    upload = customers_upload(tmp_path, rows, marketer)
    first = workers.start("first")
    job = upload_import(upload=upload, by=marketer)
    wait_until(
        lambda: Job.objects.get(pk=job.pk).progress >= 20, "the import did not start", workers
    )

    stop_worker(first, kill=True)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # nobody said otherwise
    assert sweep_after_the_lease(workers)["restarted"] == 1

    workers.start("second")
    job = wait_for_job(job, workers.started[-1], timeout=300)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{workers.logs()}"
    assert (job.attempts, job.result["created"]) == (2, rows)
    assert Customer.objects.count() == rows
    assert CurrentConsent.objects.count() == job.result["consents_added"]  # one per statement
    upload.refresh_from_db()
    assert upload.status == Upload.Status.IMPORTED and "error" not in upload.summary
    # The counts the import started run on the second worker; then nothing is left running.
    wait_until(nothing_left, "jobs were left queued or running", workers)


def test_a_training_job_whose_worker_is_killed_fails_with_a_message(workers, marketer, tiny_bert):
    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    make_click_customers(200, offer)
    first = workers.start("first")
    run = training_run_create(
        name="Killed midway",
        segment=None,
        offer=offer,
        target="conversion",
        base_model="",
        mode="lora",
        # Long enough to be killed midway: many epochs, no early stop, batches of 2.
        params={**FAST_PARAMS, "epochs": 50, "patience": 10_000, "batch_size": 2},
        by=marketer,
    )
    wait_until(
        lambda: Job.objects.get(pk=run.job_id).progress >= 15,
        "training did not start",
        workers,
        timeout=300,
    )

    stop_worker(first, kill=True)
    counts = sweep_after_the_lease(workers)

    job = Job.objects.get(pk=run.job_id)
    assert counts["failed"] == 1
    assert job.status == Job.Status.FAILED and job.finished_at
    assert job.message.startswith("Its worker stopped before the job finished")
    assert nothing_left()


def test_the_same_training_request_sent_twice_at_once_trains_once(workers, marketer, tiny_bert):
    from django.db import connection

    from marketing.models import TrainingRun

    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    make_click_customers(120, offer)
    worker = workers.start("only")
    start = threading.Barrier(2)
    runs: list[int] = []

    def request() -> None:  # a double click: two requests with the same form at once
        try:
            start.wait()
            run = training_run_create(
                name="Sent twice",
                segment=None,
                offer=offer,
                target="conversion",
                base_model="",
                mode="lora",
                params=FAST_PARAMS,
                by=marketer,
            )
            runs.append(run.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(runs) == 2 and runs[0] == runs[1]
    run = TrainingRun.objects.get(pk=runs[0])
    job = wait_for_job(run.job, worker, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{workers.logs()}"
    assert Job.objects.filter(kind=Job.Kind.TRAIN).count() == 1
    assert TrainingRun.objects.count() == 1
    wait_until(nothing_left, "jobs were left queued or running", workers)


def test_jobs_queued_when_the_broker_lost_its_queue_are_sent_again(
    workers, marketer, tmp_path, settings
):
    upload = customers_upload(tmp_path, 500, marketer)
    job = upload_import(upload=upload, by=marketer)  # queued, and no worker running
    # What a Redis restart without persistence does to the queue: it is empty.
    redis.Redis.from_url(RECOVERY_BROKER_URL).flushdb()
    workers.start("after-restart")
    time.sleep(2)
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED  # nothing to take

    settings.JOB_RESEND_AFTER_SECONDS = 0
    assert jobs_reconcile()["resent"] == 1

    job = wait_for_job(job, workers.started[-1], timeout=120)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{workers.logs()}"
    assert Customer.objects.count() == 500


def test_a_database_connection_cut_mid_import_fails_readably_and_a_retry_works(
    workers, marketer, tmp_path
):
    from django.db import connection

    upload = customers_upload(tmp_path, 60_000, marketer)
    workers.start("first")
    job = upload_import(upload=upload, by=marketer)
    wait_until(
        lambda: Job.objects.get(pk=job.pk).progress >= 20, "the import did not start", workers
    )
    with connection.cursor() as cursor:  # every other session on this database
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    job = wait_for_job(job, workers.started[-1], timeout=120)
    assert job.status == Job.Status.FAILED
    assert job.message.startswith("The import stopped on an unexpected error")
    assert "terminat" not in job.message.lower() and "server closed" not in job.message.lower()
    assert Customer.objects.count() == 0  # nothing half-written
    upload.refresh_from_db()
    assert upload.status == Upload.Status.FAILED and upload.summary["error"] == job.message

    again = wait_for_job(
        upload_import(upload=upload, by=marketer), workers.started[-1], timeout=300
    )
    assert again.status == Job.Status.SUCCEEDED, f"{again.error}\n{workers.logs()}"
    upload.refresh_from_db()
    assert upload.status == Upload.Status.IMPORTED and "error" not in upload.summary
    assert Customer.objects.count() == 60_000
