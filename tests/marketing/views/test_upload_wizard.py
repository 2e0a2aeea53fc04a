"""The upload wizard through the pages: file -> mapping -> dry run -> import job -> result."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from marketing.models import AuditEvent, ConsentRecord, Customer, Job, Upload
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db

GOOD = (
    "Customer ID,E-mail,Age,Job,email_marketing_consent\n"
    "C1,ann@example.com,34,admin,granted\n"
    "C2,bob@example.com,51,retired,denied\n"
    "C3,,29,student,\n"
)
ONE_BAD_EMAIL = GOOD + "C4,dan-at-example,40,admin,granted\n"


def csv_file(text: str, name: str = "people.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


def upload(client, text: str, kind: str = "customers", **extra):
    return client.post(reverse("upload-create"), {"kind": kind, "file": csv_file(text), **extra})


@pytest.fixture
def colleague(db):
    """Another marketer: sees the identifiers of a file someone else uploaded masked."""
    from tests.marketing.pii_world import user_with_role

    return user_with_role("colleague", "marketer")


def mapping_form(response) -> dict[str, str]:
    """What the mapping page's form would post unchanged: each column's pre-selected choice."""
    data = {f"col-{row['index']}": row["chosen"] for row in response.context["rows"]}
    data["mode"] = response.context["mode"]
    return data


def test_it_walks_through_the_wizard_and_imports_the_file(
    marketer_client, django_capture_on_commit_callbacks
):
    response = upload(marketer_client, GOOD)
    created = Upload.objects.get()
    assert response["Location"] == reverse("upload-mapping", args=[created.pk])

    page = marketer_client.get(response["Location"])
    chosen = {row["header"]: row["chosen"] for row in page.context["rows"]}
    assert chosen["Customer ID"] == "external_id"
    assert chosen["E-mail"] == "email"
    assert chosen["Age"] == "__attribute__"
    assert chosen["email_marketing_consent"] == "consent_email_marketing"

    response = marketer_client.post(page.request["PATH_INFO"], mapping_form(page))
    assert response["Location"] == reverse("upload-preview", args=[created.pk])

    preview = marketer_client.get(response["Location"])
    assert {k: preview.context["preview"][k] for k in ("rows", "valid", "invalid", "new")} == {
        "rows": 3,
        "valid": 3,
        "invalid": 0,
        "new": 3,
    }
    assert preview.context["importable"]
    assert not Customer.objects.exists(), "the dry run must not write"

    with django_capture_on_commit_callbacks(execute=True):  # the job starts on commit
        response = marketer_client.post(reverse("upload-preview", args=[created.pk]))
    assert response["Location"] == reverse("upload-detail", args=[created.pk])

    detail = marketer_client.get(response["Location"])
    created.refresh_from_db()
    assert created.status == Upload.Status.IMPORTED
    assert created.job.status == Job.Status.SUCCEEDED
    assert ("Created", "3") in detail.context["result_items"]
    assert b'data-testid="import-finished"' in detail.content
    assert Customer.objects.get(external_id="C2").attributes == {"age": 51, "job": "retired"}
    assert ConsentRecord.objects.filter(purpose="email_marketing").count() == 2


def test_it_shows_an_ingest_error_on_the_form_and_stores_nothing(marketer_client, settings):
    settings.MAX_UPLOAD_BYTES = 20
    response = upload(marketer_client, GOOD)
    assert response.status_code == 200
    assert "over the upload limit" in response.content.decode()
    assert not Upload.objects.exists()


def test_it_refuses_an_empty_file(marketer_client):
    response = upload(marketer_client, "")
    assert "file is empty" in response.content.decode()
    assert not Upload.objects.exists()


def test_it_names_a_missing_required_column(marketer_client):
    upload(marketer_client, "Age,Job\n34,admin\n")
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))

    response = marketer_client.post(
        reverse("upload-mapping", args=[created.pk]), mapping_form(page)
    )

    assert response.status_code == 400
    assert "Customer ID (external_id) is required" in response.content.decode()
    created.refresh_from_db()
    assert created.status == Upload.Status.UPLOADED


def test_it_refuses_one_target_for_two_columns(marketer_client):
    upload(marketer_client, GOOD)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    data = mapping_form(page)
    data["col-1"] = "external_id"

    response = marketer_client.post(reverse("upload-mapping", args=[created.pk]), data)

    assert response.status_code == 400
    assert "chosen for two columns" in response.content.decode()
    assert response.context["rows"][1]["chosen"] == "external_id", "the user's choices stay"


def test_it_lists_row_problems_and_blocks_all_or_nothing(marketer_client):
    upload(marketer_client, ONE_BAD_EMAIL)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(
        reverse("upload-mapping", args=[created.pk]),
        {**mapping_form(page), "mode": "all_or_nothing"},
    )

    preview = marketer_client.get(reverse("upload-preview", args=[created.pk]))

    assert preview.context["preview"]["invalid"] == 1
    [error] = preview.context["preview"]["errors"]
    assert (error["row"], error["column"]) == (4, "E-mail")
    assert preview.context["blocked"]
    assert b"would change nothing" in preview.content


def test_it_imports_the_valid_rows_and_offers_the_error_file(
    marketer_client, colleague, django_capture_on_commit_callbacks
):
    upload(marketer_client, ONE_BAD_EMAIL)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(
        reverse("upload-mapping", args=[created.pk]), {**mapping_form(page), "mode": "valid_rows"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(reverse("upload-preview", args=[created.pk]))

    detail = marketer_client.get(reverse("upload-detail", args=[created.pk]))
    errors = logged_in(colleague).get(reverse("upload-errors", args=[created.pk]))

    assert Customer.objects.count() == 3
    assert b'data-testid="error-file-link"' in detail.content
    assert errors["Content-Disposition"].startswith("attachment")
    body = b"".join(errors.streaming_content).decode()
    # A colleague without the PII permission: the refused email is listed, but masked.
    assert "dan-at-example" not in body
    assert "d***@***" in body
    # The person who uploaded the file sees what they uploaded, to correct it.
    own = marketer_client.get(reverse("upload-errors", args=[created.pk]))
    assert "dan-at-example" in b"".join(own.streaming_content).decode()


def test_it_reads_the_encoding_the_user_chose(marketer_client):
    text = "external_id,city\nC1,Málaga\n"
    marketer_client.post(
        reverse("upload-create"),
        {"kind": "customers", "file": csv_file(text, encoding="latin-1"), "encoding": "latin-1"},
    )
    assert Upload.objects.get().encoding in ("latin-1", "iso8859-1")


def test_it_sends_a_finished_upload_from_the_wizard_steps_to_its_result(marketer_client):
    upload(marketer_client, GOOD)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(reverse("upload-mapping", args=[created.pk]), mapping_form(page))
    marketer_client.post(reverse("upload-preview", args=[created.pk]))

    for step in ("upload-mapping", "upload-preview"):
        response = marketer_client.get(reverse(step, args=[created.pk]))
        assert response["Location"] == reverse("upload-detail", args=[created.pk])


def test_it_lets_a_data_steward_upload(steward_client):
    response = upload(steward_client, GOOD)
    assert response.status_code == 302
    assert Upload.objects.count() == 1


def _preview(client, text: str):
    upload(client, text)
    created = Upload.objects.get()
    page = client.get(reverse("upload-mapping", args=[created.pk]))
    client.post(reverse("upload-mapping", args=[created.pk]), mapping_form(page))
    return client.get(reverse("upload-preview", args=[created.pk]))


def test_it_masks_identifiers_in_the_dry_run_without_the_pii_permission(marketer_client, colleague):
    own = _preview(marketer_client, ONE_BAD_EMAIL).content.decode()
    # The uploader recognises the bad value they uploaded.
    assert "dan-at-example" in own and "ann@example.com" in own
    created = Upload.objects.get()
    content = logged_in(colleague).get(reverse("upload-preview", args=[created.pk]))
    content = content.content.decode()
    assert "ann@example.com" not in content
    assert "a***@e***.com" in content
    assert "dan-at-example" not in content


def test_it_shows_identifiers_in_the_dry_run_to_a_steward(steward_client):
    content = _preview(steward_client, ONE_BAD_EMAIL).content.decode()
    assert "ann@example.com" in content
    assert "dan-at-example" in content


def test_it_refuses_a_file_with_too_many_columns_on_the_form(marketer_client, settings):
    settings.MAX_UPLOAD_COLUMNS = 3
    response = upload(marketer_client, GOOD)
    assert response.status_code == 200
    assert "The file has 5 columns; at most 3" in response.content.decode()
    assert not Upload.objects.exists()


def test_it_shows_a_refused_identifier_nowhere_but_masked(
    marketer_client, colleague, steward, viewer, django_capture_on_commit_callbacks
):
    upload(marketer_client, ONE_BAD_EMAIL)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(reverse("upload-mapping", args=[created.pk]), mapping_form(page))
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(reverse("upload-preview", args=[created.pk]))
    created.refresh_from_db()
    assert created.job.status == Job.Status.FAILED
    steward.is_staff = True  # the admin console is the steward's
    steward.save()

    pages = {
        "upload page": (colleague, reverse("upload-detail", args=[created.pk])),
        "job page": (viewer, reverse("job-detail", args=[created.job.pk])),
        "job list": (viewer, reverse("job-list")),
        "overview": (viewer, reverse("overview")),
        "jobs API": (viewer, f"/api/jobs/{created.job.pk}/"),
        "uploads API": (colleague, f"/api/uploads/{created.pk}/"),
        "admin job": (steward, reverse("admin:marketing_job_change", args=[created.job.pk])),
        "admin upload": (steward, reverse("admin:marketing_upload_change", args=[created.pk])),
    }
    for where, (user, url) in pages.items():
        response = logged_in(user).get(url)
        assert response.status_code == 200, where
        assert b"dan-at-example" not in response.content, where
    upload_page = logged_in(colleague).get(pages["upload page"][1]).content.decode()
    assert "Row 4 (line 5), column &#x27;E-mail&#x27;: &#x27;d***@***&#x27;" in upload_page


def test_it_shows_a_refused_identifier_in_full_to_a_steward_and_audits_it(
    marketer_client, steward, django_capture_on_commit_callbacks
):
    upload(marketer_client, ONE_BAD_EMAIL)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(reverse("upload-mapping", args=[created.pk]), mapping_form(page))
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(reverse("upload-preview", args=[created.pk]))

    detail = logged_in(steward).get(reverse("upload-detail", args=[created.pk]))

    [error] = detail.context["row_errors"]
    assert (error["row"], error["column"], error["value"]) == (4, "E-mail", "dan-at-example")
    assert error["masked"] is False
    event = AuditEvent.objects.get(action=AuditEvent.Action.PII_VIEW)
    assert (event.actor, event.target_type, event.target_ref) == (
        steward,
        "upload",
        str(created.pk),
    )
    assert event.details == {"where": "upload page", "rows": [4]}


def test_it_says_on_the_mapping_step_that_identifiers_will_be_kept_only_hashed(
    marketer_client, settings
):
    upload(marketer_client, "customer_id,email\nC1,a@example.com\n")
    created = Upload.objects.get()
    plain = marketer_client.get(reverse("upload-mapping", args=[created.pk])).content.decode()
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True

    hashed = marketer_client.get(reverse("upload-mapping", args=[created.pk])).content.decode()

    assert "kept only as SHA-256 hashes" in hashed
    assert "kept only as SHA-256 hashes" not in plain


def test_the_upload_page_lists_the_values_each_kind_accepts(marketer_client):
    body = marketer_client.get(reverse("upload-create")).content.decode()
    assert 'data-accepted="interactions"' in body
    # Interaction kinds with their synonyms, consent words, date formats and id rules.
    assert "conversion (also conversions, purchase)" in body
    assert "granted (also 1, grant, opt-in, opt_in, true, y, yes)" in body
    assert "YYYY-MM-DD" in body and "128 characters" in body


def test_a_dry_run_with_no_valid_row_offers_no_import_and_lists_problems_in_row_order(
    marketer_client,
):
    text = "Customer ID,E-mail,Age\nC1,not-an-email,forty\n,b@example.com,x\nC3,also-bad,thirty\n"
    upload(marketer_client, text)
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    marketer_client.post(page.request["PATH_INFO"], mapping_form(page))

    preview = marketer_client.get(reverse("upload-preview", args=[created.pk]))

    assert preview.context["preview"]["valid"] == 0
    assert not preview.context["importable"]
    body = preview.content.decode()
    assert 'data-testid="nothing-valid"' in body
    assert "Import 3 rows" not in body and 'data-busy-text="Starting' not in body
    rows = [e["row"] for e in preview.context["preview"]["errors"]]
    assert rows == sorted(rows) and len(set(rows)) == 3
