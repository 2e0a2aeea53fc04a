"""The data migration that masks what imports stored before they masked identifiers."""

import importlib
import json

import pytest
from django.apps import apps

from marketing.models import Job, Upload

pytestmark = pytest.mark.django_db

scrub = importlib.import_module("marketing.migrations.0008_scrub_import_problems").scrub

RAW = "jane.doe(at)example.com"
LEGACY_PROBLEM = {
    "row": 5,
    "line": 6,
    "column": "E-mail",
    "value": RAW,
    "reason": "is not an email address",
    "message": f"Row 5 (line 6), column 'E-mail': '{RAW}' is not an email address",
}
AGE_PROBLEM = {
    "row": 6,
    "line": 7,
    "column": "Age",
    "value": "abc",
    "reason": "is not a number",
    "message": "Row 6 (line 7), column 'Age': 'abc' is not a number",
}
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/marketing/services/jobs.py", line 166, in run_job\n'
    "    result = runner(job, make_progress(job_id)) or {}\n"
    "marketing.ingest.IngestError: 1 of 12 rows have problems. "
    f"{LEGACY_PROBLEM['message']}\n"
)


def test_it_masks_identifiers_in_problems_messages_and_errors_stored_before():
    message = f"1 of 12 rows have problems. {LEGACY_PROBLEM['message']}"
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        status=Job.Status.FAILED,
        message=message,
        error=TRACEBACK,
        result={"errors": [LEGACY_PROBLEM, AGE_PROBLEM]},
    )
    upload = Upload.objects.create(
        kind="customers",
        original_name="people.csv",
        job=job,
        mapping={"external_id": "Customer ID", "email": "E-mail", "attr:age": "Age"},
        summary={"errors": [LEGACY_PROBLEM, AGE_PROBLEM], "error": message},
    )
    other = Job.objects.create(
        kind=Job.Kind.TRAIN,
        status=Job.Status.FAILED,
        message="No conversions",
        error=TRACEBACK.replace("marketing.ingest.IngestError", "TrainingDataError"),
    )

    scrub(apps, None)

    job.refresh_from_db()
    upload.refresh_from_db()
    other.refresh_from_db()
    assert RAW not in json.dumps([job.message, job.error, job.result, upload.summary])
    masked = "Row 5 (line 6), column 'E-mail': 'j***@***' is not an email address"
    assert masked in job.message and masked in upload.summary["error"]
    assert job.error == f"IngestError: {job.message}"
    assert (
        upload.summary["errors"]
        == job.result["errors"]
        == [
            {**LEGACY_PROBLEM, "value": "j***@***", "masked": True, "message": masked},
            {**AGE_PROBLEM, "masked": False},
        ]
    )
    assert other.error == "TrainingDataError: No conversions"
