"""A worker on "another machine" (a data folder of its own) that reaches this one only through
the object store (FILE_STORE_URL on moto's S3 server), the database and the broker: it
imports an upload made here and scores with a model trained here."""

import pytest

from marketing.filestore import model_put
from marketing.models import Customer, Job, Purpose, Upload
from marketing.services.ingest import upload_import
from marketing.services.scoring import scoring_run_create
from tests.integration.conftest import customers_upload, wait_for_job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_elsewhere_imports_and_scores_through_the_object_store(
    workers, object_store, trained, marketer, tmp_path
):
    elsewhere = tmp_path / "other-machine"
    worker = workers.start("elsewhere", DATA_DIR=str(elsewhere), **object_store.env())
    upload = customers_upload(tmp_path, 300, marketer, purposes=("profiling",))
    assert f"campaigns/media/{upload.file.name}" in object_store.keys()

    job = wait_for_job(upload_import(upload=upload, by=marketer), worker, timeout=120)

    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{worker.log_tail()}"
    assert Customer.objects.count() == 300
    upload.refresh_from_db()
    assert upload.status == Upload.Status.IMPORTED

    model_put(trained.model_id)  # what training does once a model is saved
    scoring = scoring_run_create(training_run=trained, segment=None, by=marketer)
    job = wait_for_job(scoring.job, worker, timeout=120)

    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{worker.log_tail()}"
    consented = Customer.objects.filter(
        current_consents__purpose=Purpose.PROFILING, current_consents__status="granted"
    ).count()
    assert 0 < job.result["rows_scored"] == consented
    # The worker read the model from the store into its own folder, and no upload from disk.
    assert (elsewhere / "models" / trained.model_id).is_dir()
    assert not (elsewhere / "media" / str(upload.file.name)).exists()
