import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketing.models import Customer, Job, Upload
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db

GOOD = b"customer_id,email,age\nC1,a@example.com,31\nC2,b@example.com,42\n"
ONE_BAD = b"customer_id,email,age\nC1,a@example.com,31\n,b@example.com,42\nC3,,55\n"


def csv_file(content: bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def upload(client, content: bytes = GOOD, kind: str = "customers"):
    return client.post("/api/uploads/", {"kind": kind, "file": csv_file(content)})


def test_it_stores_an_upload_with_a_guessed_mapping(marketer_client):
    response = upload(marketer_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["headers"] == ["customer_id", "email", "age"]
    assert body["mapping"]["external_id"] == "customer_id"
    assert body["row_count"] == 2
    assert body["created_by"] == "mara"


def test_it_answers_a_bad_file_with_400_and_the_reason(steward_client):
    response = upload(steward_client, b"")
    assert response.status_code == 400
    assert "empty" in response.json()["detail"].lower()
    assert not Upload.objects.exists()


def test_it_refuses_uploads_to_a_viewer(viewer_client):
    assert upload(viewer_client).status_code == 403
    assert viewer_client.get("/api/uploads/").status_code == 403
    assert not Upload.objects.exists()


def test_it_maps_previews_and_imports(marketer_client, django_capture_on_commit_callbacks):
    upload_id = upload(marketer_client).json()["id"]
    mapping = {"external_id": "customer_id", "email": "email", "attr:age": "age"}
    response = marketer_client.post(
        f"/api/uploads/{upload_id}/mapping/",
        {"mapping": mapping, "mode": "all_or_nothing"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    preview = marketer_client.get(f"/api/uploads/{upload_id}/preview/").json()
    assert (preview["rows"], preview["valid"], preview["new"]) == (2, 2, 2)
    assert not Customer.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(f"/api/uploads/{upload_id}/import/")
    assert response.status_code == 202
    job = marketer_client.get(f"/api/jobs/{response.json()['id']}/").json()
    assert job["status"] == "succeeded", job["error"]
    assert Customer.objects.count() == 2


def test_it_refuses_a_bad_mapping_with_the_ingest_message(marketer_client):
    upload_id = upload(marketer_client).json()["id"]
    response = marketer_client.post(
        f"/api/uploads/{upload_id}/mapping/",
        {"mapping": {"external_id": "no_such_column"}, "mode": "valid_rows"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "no_such_column" in response.json()["detail"]


def test_it_downloads_the_error_file(marketer_client, django_capture_on_commit_callbacks):
    upload_id = upload(marketer_client, ONE_BAD).json()["id"]
    assert marketer_client.get(f"/api/uploads/{upload_id}/errors/").status_code == 404
    marketer_client.post(
        f"/api/uploads/{upload_id}/mapping/",
        {"mapping": {"external_id": "customer_id", "email": "email"}, "mode": "valid_rows"},
        content_type="application/json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(f"/api/uploads/{upload_id}/import/")
    assert Job.objects.get(kind=Job.Kind.IMPORT).status == "succeeded"
    response = marketer_client.get(f"/api/uploads/{upload_id}/errors/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["problem_row"] for row in rows] == ["2"]
    assert Customer.objects.count() == 2


def test_it_lets_a_steward_upload_too(steward):
    assert upload(logged_in(steward)).status_code == 201


WITH_PII = (
    b"customer_id,email,first_name\nC1,anna.real@example.com,Annabel\n"
    b"C2,bad@@example.com,Bertrand\n"
)
MAPPING = {
    "mapping": {"external_id": "customer_id", "email": "email", "first_name": "first_name"},
    "mode": "valid_rows",
}


def mapped_upload(client) -> int:
    upload_id = upload(client, WITH_PII).json()["id"]
    client.post(f"/api/uploads/{upload_id}/mapping/", MAPPING, content_type="application/json")
    return upload_id


def test_it_masks_identifiers_in_the_preview_without_the_pii_permission(marketer, steward):
    upload_id = mapped_upload(logged_in(steward))
    masked = logged_in(marketer).get(f"/api/uploads/{upload_id}/preview/")
    real = logged_in(steward).get(f"/api/uploads/{upload_id}/preview/")
    for raw in (b"anna.real@example.com", b"Annabel", b"bad@@example.com"):
        assert raw not in masked.content
        assert raw in real.content
    assert masked.json()["sample"][0]["email"] == "a***@e***.com"
    assert masked.json()["sample"][0]["external_id"] == "C1"


def test_it_masks_identifiers_in_the_error_file_without_the_pii_permission(
    marketer, steward, django_capture_on_commit_callbacks
):
    steward_client = logged_in(steward)
    upload_id = mapped_upload(steward_client)
    with django_capture_on_commit_callbacks(execute=True):
        steward_client.post(f"/api/uploads/{upload_id}/import/")
    masked = logged_in(marketer).get(f"/api/uploads/{upload_id}/errors/")
    real = steward_client.get(f"/api/uploads/{upload_id}/errors/")
    masked_text = b"".join(masked.streaming_content).decode("utf-8-sig")
    real_text = b"".join(real.streaming_content).decode("utf-8-sig")
    assert "bad@@example.com" in real_text
    assert "bad@@example.com" not in masked_text
    [row] = csv.DictReader(io.StringIO(masked_text))
    assert (row["problems"], row["email"]) == ("email: is not an email address", "b***@@***.com")
    assert row["first_name"] == "B***"  # every identifier of the row is masked


def test_it_answers_too_many_columns_with_400(marketer_client, settings):
    settings.MAX_UPLOAD_COLUMNS = 2
    response = upload(marketer_client)
    assert response.status_code == 400
    assert "The file has 3 columns; at most 2" in response.json()["detail"]
    assert not Upload.objects.exists()


def test_it_answers_a_nul_byte_with_400_naming_row_and_column(marketer_client):
    response = upload(marketer_client, GOOD.replace(b"b@example", b"b@ex\x00ample"))
    assert response.status_code == 400
    assert "Row 2 (line 3), column 'email'" in response.json()["detail"]
    assert not Upload.objects.exists()
