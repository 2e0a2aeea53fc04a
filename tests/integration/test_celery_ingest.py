"""An ingest Job through a real Celery worker, the real Redis broker and PostgreSQL."""

import pytest

from marketing.models import Customer, Job, Upload
from marketing.services.ingest import upload_create, upload_import
from tests.integration.conftest import wait_for_job
from tests.marketing.services.ingest_helpers import csv_file, customers_csv

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_it_imports_a_csv_through_a_real_celery_worker(celery_jobs, marketer):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(250)), by=marketer)
    job = upload_import(upload=upload, by=marketer)
    assert job.status == Job.Status.QUEUED  # handed to the broker, not run here

    job = wait_for_job(job, celery_jobs)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{celery_jobs.log_tail()}"
    assert (job.progress, job.result["created"], job.result["consents_added"]) == (100, 250, 250)
    assert Customer.objects.count() == 250
    assert Customer.objects.get(external_id="C042").attributes == {"age": 62, "plan": "gold"}
    upload.refresh_from_db()
    assert upload.status == Upload.Status.IMPORTED
    assert "marketing.run_job" in celery_jobs.log_tail() and "succeeded" in celery_jobs.log_tail()
