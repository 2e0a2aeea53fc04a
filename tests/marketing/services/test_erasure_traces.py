"""After an erasure nothing the product keeps (any table, any stored file, the server log)
still holds the person's identifiers or the profile values only they had."""

import io
import json
import logging
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from django.urls import reverse

from marketing.models import Customer, Interaction, Job, ProfileField, Upload
from marketing.services.erasure import customer_erase
from marketing.services.explanations import explanation_run_create
from marketing.services.scoring import scoring_run_create
from tests.marketing.explain_helpers import train_tiny_run
from tests.marketing.services.audience_helpers import exported, frozen_audience
from tests.marketing.services.ingest_helpers import csv_file, import_text, run_import

PERSON = "QZX-7731-ERASE"
EMAIL = "quokka.zeta7731@example.org"
PHONE = "+1 202 555 7731"
PLAN = "Platinum-Quokka-Zeta"
NICKNAME = "Marmoset-Xylo-Vantablack"
BAD_EMAIL = "quokka.zeta7731-at-example"

HEADER = (
    "customer_id,email,phone,country,age,plan,nickname,consent_model_training,"
    "consent_profiling,consent_ad_targeting,consent_date"
)


def customers_file(person_email: str) -> str:
    lines = [HEADER]
    for i in range(1, 31):
        lines.append(
            f"C{i:03d},person{i}@example.com,,DE,{20 + i},"
            f"{'gold' if i % 3 == 0 else 'basic'},regular,granted,granted,granted,"
            "2024-03-01"
        )
    lines.append(
        f"{PERSON},{person_email},{PHONE},DE,44,{PLAN},{NICKNAME},granted,granted,"
        "granted,2024-03-01"
    )
    return "\n".join(lines) + "\n"


@pytest.fixture
def server_log():
    """What the product's own log handlers write (the server log), captured."""
    buffer = io.StringIO()
    swapped = []
    for name in ("", "django", "django.server", "django.request", "marketing"):
        for handler in logging.getLogger(name).handlers:
            # Handlers set up by the logging configuration have names; pytest's have none.
            if handler.get_name() and isinstance(handler, logging.StreamHandler):
                swapped.append((handler, handler.setStream(buffer)))
    assert swapped, "the configured log handlers were not found"
    yield buffer
    for handler, stream in swapped:
        handler.setStream(stream)


def runserver_logs(url: str) -> None:
    """The line ``manage.py runserver`` writes for a request (django.core.servers.basehttp)."""
    logging.getLogger("django.server").info('"%s" %s %s', f"GET {url} HTTP/1.1", "200", "512")


def hits_in_tables(needles: list[str]) -> list[str]:
    found = []
    for model in apps.get_models():
        columns = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(
                f, models.CharField | models.TextField | models.JSONField | models.FileField
            )
        ]
        if not columns:
            continue
        for row in model._default_manager.values_list("pk", *columns):
            text = json.dumps(row[1:], ensure_ascii=False, default=str).lower()
            found += [f"{model.__name__} #{row[0]}: {n}" for n in needles if n.lower() in text]
    return found


def hits_in_files(needles: list[str]) -> list[str]:
    found = []
    for root in (Path(settings.MEDIA_ROOT), Path(settings.MODEL_REGISTRY_DIR)):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file():
                data = path.read_bytes().lower()
                found += [f"{path}: {n}" for n in needles if n.lower().encode() in data]
    return found


def test_it_leaves_no_trace_of_the_person_in_tables_files_or_the_log(
    marketer,
    steward,
    client,
    tiny_bert,
    click_customers,
    term_deposit,
    server_log,
    django_capture_on_commit_callbacks,
):
    capture = django_capture_on_commit_callbacks
    job = import_text(capture, customers_file(EMAIL), by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.error
    person = Customer.objects.get(external_id=PERSON)
    assert PLAN in ProfileField.objects.get(name="plan").sample_values
    Interaction.objects.create(
        customer=person, offer=term_deposit, kind="impression", occurred_at="2024-05-01T10:00:00Z"
    )
    Interaction.objects.create(
        customer=person, offer=term_deposit, kind="conversion", occurred_at="2024-05-01T11:00:00Z"
    )

    # A second file with a bad email of theirs: refused whole, then imported without that row.
    from marketing.services.ingest import upload_create

    upload = upload_create(kind="customers", file=csv_file(customers_file(BAD_EMAIL)), by=marketer)
    failed = run_import(capture, upload, by=marketer)
    assert failed.status == Job.Status.FAILED and "q***@***" in failed.message
    first_error_file = Path(upload.error_file.path)
    partial = run_import(capture, upload, by=marketer, mode=Upload.Mode.VALID_ROWS)
    assert partial.status == Job.Status.SUCCEEDED, partial.error
    assert BAD_EMAIL in first_error_file.read_text() or not first_error_file.exists()

    run = train_tiny_run(capture, marketer, term_deposit)
    with capture(execute=True):
        scoring = scoring_run_create(training_run=run, segment=None, by=marketer)
    scoring.job.refresh_from_db()
    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    assert person.scores.exists()
    with capture(execute=True):
        explanation = explanation_run_create(
            training_run=run, scope="customer", customer=person, by=marketer
        )
    explanation.job.refresh_from_db()
    assert explanation.job.status == Job.Status.SUCCEEDED, explanation.job.error
    export = exported(frozen_audience(marketer), "generic_csv", marketer)
    assert export.job.status == Job.Status.SUCCEEDED, export.job.error

    client.force_login(steward)
    for url in (
        reverse("customer-detail", args=[person.pk]),
        reverse("customer-list") + f"?q={PERSON}",
        f"/api/customers/?external_id={PERSON}",
        f"/api/customers/?search={PERSON}",
        f"/api/customers/{person.pk}/",
    ):
        assert client.get(url).status_code == 200, url
        runserver_logs(url)

    needles = [PERSON, EMAIL, PHONE, PLAN, NICKNAME, BAD_EMAIL, person.pseudonym]
    # The planting worked: every needle is somewhere before the erasure.
    before = hits_in_tables(needles) + hits_in_files(needles)
    assert {n for n in needles if any(hit.endswith(f": {n}") for hit in before)} == set(needles)

    with capture(execute=True):
        customer_erase(customer=person, by=steward)

    log = server_log.getvalue().lower()
    assert {
        "tables": hits_in_tables(needles),
        "files": hits_in_files(needles),
        "log": [n for n in needles if n.lower() in log],
    } == {"tables": [], "files": [], "log": []}
    assert "GET /customers/ HTTP/1.1" in server_log.getvalue()
