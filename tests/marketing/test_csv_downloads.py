"""Every CSV the product offers for download, pages and API, with cells planted to look like
spreadsheet formulas: none may start a cell with a formula character unescaped."""

import csv
import io

import pytest
from django.urls import reverse

from marketing.exporters.csvsafe import FORMULA_STARTS
from marketing.exporters.formats import FORMATS
from marketing.models import CustomerIdentity, Offer, ProfileField, Purpose, Upload
from tests.factories import make_customer
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.services.ingest_helpers import import_text
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db

FORMULA_HEADER = '=HYPERLINK("http://evil.example","open me")'
PLANTED = ("=1+1", "+1-2", "-3+4", "@SUM(A1)")


def planted_upload(capture, by) -> Upload:
    """Customers with a formula for a column name and formula-like cells in bad rows."""
    # A number attribute already in the catalogue, so that its formula cells are errors.
    ProfileField.objects.create(
        name="hyperlink_http_evil_example_open_me", data_type=ProfileField.DataType.NUMBER
    )
    lines = [f'customer_id,email,"{FORMULA_HEADER.replace(chr(34), chr(34) * 2)}",age']
    lines += [f"C{i},p{i}@example.com,{i},{30 + i}" for i in range(1, 21)]
    for i, cell in enumerate(PLANTED, start=21):
        lines.append(f"C{i},{cell},{cell},{cell}")
    import_text(capture, "\n".join(lines) + "\n", by=by, mode=Upload.Mode.VALID_ROWS)
    upload = Upload.objects.get()
    assert upload.error_file, upload.summary
    return upload


def cells(response) -> list[str]:
    content = (
        b"".join(response.streaming_content) if response.streaming else response.content
    ).decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(content)) for cell in row]


def assert_no_formula(response, where: str, *, planted: str = "") -> None:
    assert response.status_code == 200, (where, response.status_code)
    found = cells(response)
    risky = [cell for cell in found if cell.startswith(FORMULA_STARTS)]
    assert not risky, (where, risky)
    if planted:
        assert "'" + planted in found, (where, "the planted cell is not in the file")


def test_it_escapes_every_cell_of_the_upload_error_files(
    marketer, steward, django_capture_on_commit_callbacks
):
    upload = planted_upload(django_capture_on_commit_callbacks, marketer)
    for user in (marketer, steward):  # masked stream and stored file
        client = logged_in(user)
        assert_no_formula(
            client.get(reverse("upload-errors", args=[upload.pk])),
            f"error file page as {user}",
            planted=FORMULA_HEADER,
        )
        assert_no_formula(
            client.get(f"/api/uploads/{upload.pk}/errors/"),
            f"error file API as {user}",
            planted=FORMULA_HEADER,
        )


def test_it_escapes_every_cell_of_the_scores_download(viewer):
    offer = Offer.objects.create(external_id=FORMULA_HEADER, title="Evil")
    customers = [make_customer() for _ in range(3)]
    add_consent(customers, Purpose.PROFILING)  # scores are only read for profiled customers
    scoring = finished_scoring(finished_run(offer), customers)
    response = logged_in(viewer).get(f"/api/scoring-runs/{scoring.pk}/scores/", {"format": "csv"})
    assert_no_formula(response, "scores API", planted=FORMULA_HEADER)


def test_it_escapes_every_cell_of_the_audience_export_files(marketer):
    make_people(
        12, purposes=(Purpose.AD_TARGETING, Purpose.AD_USER_DATA, Purpose.AD_PERSONALIZATION)
    )
    CustomerIdentity.objects.update(first_name="=1+1", last_name="@SUM(A1)", postal_code="-20500")
    audience = frozen_audience(marketer)
    client = logged_in(marketer)
    csv_formats = [key for key, fmt in FORMATS.items() if fmt.extension == "csv"]
    assert len(csv_formats) >= 4
    for key in csv_formats:
        export = exported(audience, key, marketer)
        assert_no_formula(client.get(reverse("export-download", args=[export.pk])), f"{key} page")
        assert_no_formula(client.get(f"/api/exports/{export.pk}/download/"), f"{key} API")
