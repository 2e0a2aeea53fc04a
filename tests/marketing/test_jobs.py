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
