import pytest

from marketing.models import Job
from marketing.services import jobs as job_service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def runners():
    added = []

    def add(kind, func):
        job_service._RUNNERS[kind] = func
        added.append(kind)

    saved = dict(job_service._RUNNERS)
    yield add
    job_service._RUNNERS.clear()
    job_service._RUNNERS.update(saved)


def test_it_records_success_with_result_and_progress(runners, marketer):
    def ok(job, progress):
        progress(50, "half")
        return {"rows": 3}

    runners(Job.Kind.ERASE, ok)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)
    job.refresh_from_db()
    assert (job.status, job.progress, job.result) == (Job.Status.SUCCEEDED, 100, {"rows": 3})
    assert job.started_at and job.finished_at


def test_it_marks_a_failing_job_failed_with_its_error(runners, marketer):
    def boom(job, progress):
        raise ValueError("column 'age' has text in row 17")

    runners(Job.Kind.ERASE, boom)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "row 17" in job.message and "ValueError" in job.error


def test_it_logs_a_failure_without_its_message(runners, marketer, caplog):
    def boom(job, progress):
        raise ValueError("Row 17: 'jane.doe@example.com' is not an email address")

    runners(Job.Kind.ERASE, boom)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)

    assert f"job {job.pk} (erase) failed with ValueError" in caplog.text
    assert "jane.doe" not in caplog.text


def test_it_stops_a_running_job_that_was_cancelled(runners, marketer):
    def cancels_itself(job, progress):
        job_service.job_cancel(job=job, by=marketer)
        progress(10, "next step")
        raise AssertionError("progress must raise once cancelled")

    runners(Job.Kind.ERASE, cancels_itself)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_it_runs_a_job_at_most_once(runners, marketer):
    calls = []
    runners(Job.Kind.ERASE, lambda job, progress: calls.append(job.pk))
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)
    assert job_service.run_job(job.pk) is None  # a redelivery finds it already done
    assert calls == [job.pk]


class _Inspect:
    """Stands in for Celery's worker inspection: which queues each worker consumes."""

    def __init__(self, replies):
        self.replies, self.calls = replies, 0

    def __call__(self, timeout):
        return self

    def active_queues(self):
        self.calls += 1
        return self.replies


@pytest.fixture
def workers(monkeypatch, settings):
    from django.core.cache import cache

    from marketing.celery import app

    cache.delete(job_service.GPU_PROBE_KEY)

    def answer(replies):
        inspect = _Inspect(replies)
        monkeypatch.setattr(app.control, "inspect", inspect)
        return inspect

    yield answer
    cache.delete(job_service.GPU_PROBE_KEY)


def test_it_never_asks_the_workers_without_use_gpu(workers, settings):
    settings.USE_GPU = False
    inspect = workers({"w@cpu": [{"name": "default"}], "w@gpu": [{"name": "gpu"}]})
    assert job_service.queue_for(Job.Kind.TRAIN) == "default"
    assert inspect.calls == 0


def test_it_sends_model_jobs_to_a_listening_gpu_worker_and_keeps_the_answer(workers, settings):
    settings.USE_GPU = True
    inspect = workers({"w@cpu": [{"name": "default"}], "w@gpu": [{"name": "gpu"}]})
    assert job_service.queue_for(Job.Kind.TRAIN) == "gpu"
    assert job_service.queue_for(Job.Kind.SCORE) == "gpu"
    assert job_service.queue_for(Job.Kind.EXPLAIN) == "gpu"
    assert job_service.queue_for(Job.Kind.IMPORT) == "default"  # no accelerator needed
    assert inspect.calls == 1  # asked once, then cached


@pytest.mark.parametrize("replies", [{"w@cpu": [{"name": "default"}]}, None])
def test_it_sends_model_jobs_to_cpu_workers_when_no_gpu_worker_runs(
    workers, settings, marketer, monkeypatch, replies
):
    from marketing.tasks import run_job_task

    settings.USE_GPU, settings.JOB_QUEUE = True, "celery"
    workers(replies)  # None: no worker answered at all
    sent = []
    monkeypatch.setattr(
        run_job_task, "apply_async", lambda args, queue: sent.append((args[0], queue))
    )
    job = job_service.job_create(kind=Job.Kind.TRAIN, title="t", params={"a": 1}, by=marketer)
    job.refresh_from_db()
    assert sent == [(job.pk, "default")]
    assert job.params == {"a": 1, "queue": "default"}
    assert job.status == Job.Status.QUEUED
    assert job.message == "Waiting for a CPU worker: no GPU worker is running"


def test_it_logs_the_traceback_and_keeps_only_a_readable_error_on_the_job(
    runners, marketer, caplog
):
    def boom(job, progress):
        raise ValueError("column 'age' has text in row 17")

    runners(Job.Kind.ERASE, boom)
    job = job_service.job_create(kind=Job.Kind.ERASE, title="t", params={}, by=marketer)
    job.refresh_from_db()
    assert job.error == "ValueError: column 'age' has text in row 17"
    assert "Traceback" not in job.error and 'File "' not in job.error
    [logged] = [
        r for r in caplog.records if r.name == job_service.logger.name and r.levelname == "ERROR"
    ]
    assert "in boom" in logged.getMessage() and "builtins.ValueError" in logged.getMessage()
    assert "row 17" not in caplog.text


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_short_job_is_not_queued_behind_a_training_run_on_the_in_process_queue(
    runners, marketer, settings, monkeypatch
):
    import threading

    settings.JOB_QUEUE = "thread"
    # Lanes of this test's own: a job another test left in a process-wide lane cannot hold
    # this one up.
    monkeypatch.setattr(job_service, "_executors", {})
    release, training_started = threading.Event(), threading.Event()

    def train(job, progress):
        training_started.set()
        assert release.wait(30), "the test never released the training run"
        return {}

    runners(Job.Kind.TRAIN, train)
    runners(Job.Kind.IMPORT, lambda job, progress: {"imported": 1})
    runners(Job.Kind.SEGMENT_COUNT, lambda job, progress: {"count": 7})
    try:
        training = job_service.job_create(kind=Job.Kind.TRAIN, title="t", params={}, by=marketer)
        assert training_started.wait(20)
        waiting = job_service.job_create(kind=Job.Kind.IMPORT, title="i", params={}, by=marketer)
        count = job_service.job_create(
            kind=Job.Kind.SEGMENT_COUNT, title="c", params={}, by=marketer
        )
        assert _wait_for(
            lambda: Job.objects.get(pk=count.pk).status == Job.Status.SUCCEEDED, seconds=40
        ), Job.objects.get(pk=count.pk).message
        # The count ran while the training run still held its lane; the import waits there.
        assert Job.objects.get(pk=training.pk).status == Job.Status.RUNNING
        assert Job.objects.get(pk=waiting.pk).status == Job.Status.QUEUED
    finally:
        release.set()
    assert _wait_for(lambda: Job.objects.get(pk=waiting.pk).status == Job.Status.SUCCEEDED)
    assert Job.objects.get(pk=count.pk).result == {"count": 7}
