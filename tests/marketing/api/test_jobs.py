import pytest

from marketing.models import Job, TrainingRun
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db


def test_it_shows_job_progress(viewer_client, steward):
    job = Job.objects.create(
        kind="import",
        title="Import customers.csv",
        status="running",
        progress=40,
        message="Row 4,000 of 10,000",
        created_by=steward,
    )
    body = viewer_client.get(f"/api/jobs/{job.pk}/").json()
    assert {k: body[k] for k in ("status", "progress", "message", "created_by")} == {
        "status": "running",
        "progress": 40,
        "message": "Row 4,000 of 10,000",
        "created_by": "stew",
    }
    assert body["is_finished"] is False
    assert "started_at" in body and "finished_at" in body and "error" in body


def test_it_filters_jobs_by_status(viewer_client):
    Job.objects.create(kind="import", status="failed")
    Job.objects.create(kind="import", status="succeeded")
    body = viewer_client.get("/api/jobs/", {"status": "failed"}).json()
    assert [j["status"] for j in body["results"]] == ["failed"]


def test_it_lets_the_creator_cancel_a_job(steward):
    job = Job.objects.create(kind="import", created_by=steward)
    response = logged_in(steward).post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_it_lets_a_marketer_cancel_anyones_job(marketer, steward):
    job = Job.objects.create(kind="import", created_by=steward)
    assert logged_in(marketer).post(f"/api/jobs/{job.pk}/cancel/").status_code == 200
    assert Job.objects.get().status == "cancelled"


def test_it_refuses_cancelling_someone_elses_job(viewer, steward):
    job = Job.objects.create(kind="import", created_by=steward)
    assert logged_in(viewer).post(f"/api/jobs/{job.pk}/cancel/").status_code == 403
    assert Job.objects.get().status == "queued"


def test_it_shows_a_failed_jobs_error_to_staff_only(viewer, steward):
    job = Job.objects.create(
        kind="import", status="failed", message="File unreadable", error="OSError: File unreadable"
    )
    steward.is_staff = True
    steward.save()

    seen_by_viewer = logged_in(viewer).get(f"/api/jobs/{job.pk}/").json()
    seen_by_staff = logged_in(steward).get(f"/api/jobs/{job.pk}/").json()

    assert seen_by_viewer["message"] == "File unreadable" and seen_by_viewer["error"] is None
    assert seen_by_staff["error"] == "OSError: File unreadable"


def test_it_shows_a_failed_runs_error_to_staff_only(viewer, steward):
    # A run's job error names the server's internals as a job's does: the same rule applies.
    job = Job.objects.create(
        kind="train", status="failed", message="Training failed", error="RuntimeError: CUDA OOM"
    )
    run = TrainingRun.objects.create(job=job, name="Spring", base_model="tiny")
    steward.is_staff = True
    steward.save()

    seen_by_viewer = logged_in(viewer).get(f"/api/training-runs/{run.pk}/").json()
    seen_by_staff = logged_in(steward).get(f"/api/training-runs/{run.pk}/").json()

    assert seen_by_viewer["message"] == "Training failed" and seen_by_viewer["error"] is None
    assert seen_by_staff["error"] == "RuntimeError: CUDA OOM"
