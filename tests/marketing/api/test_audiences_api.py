import hashlib

import pytest
from django.core.cache import cache
from knox.models import AuthToken

from marketing.models import Audience, AuditEvent, Export, Job, Suppression
from marketing.services.audiences import audience_create
from marketing.throttles import ExportThrottle
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import (
    everyone_segment,
    exported,
    frozen_audience,
    make_people,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def audience(marketer) -> Audience:
    make_people(12)
    make_people(2, withdrawn=True)
    return frozen_audience(marketer)


def test_it_creates_counts_and_freezes_an_audience_by_jobs(
    marketer_client, django_capture_on_commit_callbacks
):
    make_people(11)
    segment = everyone_segment()

    created = marketer_client.post(
        "/api/audiences/", {"name": "All", "segment": segment.pk}, content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    audience_id = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["size"] == 0

    never = marketer_client.get(f"/api/audiences/{audience_id}/preview/")
    assert never.status_code == 200
    assert never.json() == {"computed_at": None, "figures": None, "job": None}

    with django_capture_on_commit_callbacks(execute=True):
        started = marketer_client.post(f"/api/audiences/{audience_id}/preview/")
    assert started.status_code == 202
    job = started.json()["job"]
    assert job["kind"] == "audience_preview" and job["status"] == "queued"
    assert Job.objects.get(pk=job["id"]).status == Job.Status.SUCCEEDED

    preview = marketer_client.get(
        f"/api/audiences/{audience_id}/preview/", {"platform": ["tiktok_customer_file"]}
    )
    assert preview.status_code == 200
    body = preview.json()
    assert body["computed_at"] is not None and body["job"] is None
    assert [row["format"] for row in body["figures"]["formats"]] == ["tiktok_customer_file"]
    assert body["figures"]["size"] == 10  # 11 to the nearest 10 (the minimum group size)

    with django_capture_on_commit_callbacks(execute=True):
        frozen = marketer_client.post(f"/api/audiences/{audience_id}/freeze/")
    assert frozen.status_code == 202
    assert frozen.json()["kind"] == "audience_freeze" and frozen.json()["status"] == "queued"
    assert Job.objects.get(pk=frozen.json()["id"]).status == Job.Status.SUCCEEDED
    audience = marketer_client.get(f"/api/audiences/{audience_id}/").json()
    assert audience["status"] == "frozen" and audience["size"] == 11
    again = marketer_client.post(f"/api/audiences/{audience_id}/freeze/")
    assert again.status_code == 400 and "frozen already" in again.json()["detail"]


def test_it_answers_a_second_freeze_request_with_the_job_under_way(marketer_client):
    make_people(3)
    audience = audience_create(name="Twice", segment=everyone_segment(), by=None)

    # The jobs wait for the commit, which a test's transaction never makes: both are queued.
    first = marketer_client.post(f"/api/audiences/{audience.pk}/freeze/")
    second = marketer_client.post(f"/api/audiences/{audience.pk}/freeze/")

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert Job.objects.filter(kind=Job.Kind.AUDIENCE_FREEZE).count() == 1


def test_it_keeps_recounting_to_marketers(viewer, audience):
    response = logged_in(viewer).post(f"/api/audiences/{audience.pk}/preview/")
    assert response.status_code == 403
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_PREVIEW).exists()


def test_it_previews_an_unsaved_definition(viewer):
    make_people(15)
    segment = everyone_segment()

    response = logged_in(viewer).post(
        "/api/audiences/preview/",
        {"segment": segment.pk, "platforms": ["google_customer_match", "generic_json"]},
        content_type="application/json",
    )

    assert response.status_code == 200, response.json()
    rows = {row["format"]: row for row in response.json()["formats"]}
    assert set(rows) == {"google_customer_match", "generic_json"}
    # 15 to the nearest 10 (the minimum group size).
    assert rows["google_customer_match"]["email"] == 20
    assert rows["generic_json"]["matchable"] == 20


def test_it_explains_a_bad_definition(marketer_client):
    segment = everyone_segment()

    response = marketer_client.post(
        "/api/audiences/",
        {"segment": segment.pk, "cut": "top_n", "cut_value": 10},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "needs a scoring run" in response.json()["detail"]


def test_it_refuses_unknown_platforms_in_a_preview(marketer_client, audience):
    response = marketer_client.get(
        f"/api/audiences/{audience.pk}/preview/", {"platform": "myspace"}
    )
    assert response.status_code == 400


def test_it_starts_an_export_as_a_job_and_streams_the_file(
    marketer_client, audience, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            "/api/exports/",
            {"audience": audience.pk, "platform": "meta_custom_audience"},
            content_type="application/json",
        )

    assert response.status_code == 202, response.json()
    started = response.json()
    assert started["status"] == "queued" and started["job"] and started["download_url"] is None
    detail = marketer_client.get(f"/api/exports/{started['id']}/").json()
    assert detail["status"] == "succeeded" and detail["row_count"] == 12
    assert detail["left_out"]["withdrawn"] == 2
    assert detail["download_url"] == f"/api/exports/{started['id']}/download/"
    assert marketer_client.get(f"/api/jobs/{started['job']}/").json()["kind"] == "export"

    download = marketer_client.get(detail["download_url"])

    assert download.status_code == 200 and download.streaming
    content = body(download)
    assert hashlib.sha256(content).hexdigest() == detail["checksum"]
    assert download["X-Checksum-SHA256"] == detail["checksum"]
    assert download["Content-Type"] == "application/x-ndjson"
    assert "attachment" in download["Content-Disposition"]


def test_it_lets_stewards_download_again_with_the_same_checksum(steward, marketer, audience):
    export = exported(audience, "google_customer_match", marketer)
    client = logged_in(steward)

    first = body(client.get(f"/api/exports/{export.pk}/download/"))
    second = body(client.get(f"/api/exports/{export.pk}/download/"))

    assert first == second
    assert hashlib.sha256(second).hexdigest() == export.checksum
    downloads = AuditEvent.objects.filter(
        target_type="export", target_ref=str(export.pk), details__event="downloaded"
    )
    assert downloads.count() == 2 and {e.actor for e in downloads} == {steward}


def test_it_lets_viewers_list_exports_but_not_download_or_create(viewer, marketer, audience):
    export = exported(audience, "generic_csv", marketer)
    client = logged_in(viewer)

    assert client.get("/api/exports/").json()["count"] == 1
    assert client.get("/api/audiences/").json()["results"][0]["export_count"] == 1
    assert client.get(f"/api/exports/{export.pk}/download/").status_code == 403
    assert (
        client.post(
            "/api/exports/",
            {"audience": audience.pk, "platform": "generic_csv"},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/audiences/", {"segment": audience.segment_id}, content_type="application/json"
        ).status_code
        == 403
    )
    assert not AuditEvent.objects.filter(details__event="downloaded").exists()


def test_it_accepts_a_token_for_machine_clients(client, marketer, audience):
    _, token = AuthToken.objects.create(user=marketer)

    response = client.post(
        "/api/exports/",
        {"audience": audience.pk, "platform": "tiktok_customer_file"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    assert response.status_code == 202
    assert client.get("/api/exports/").status_code in (401, 403)  # no token, no session


def test_it_refuses_to_export_a_draft_audience(marketer_client, marketer):
    make_people(3)
    draft = Audience.objects.create(name="draft", segment=everyone_segment())

    response = marketer_client.post(
        "/api/exports/",
        {"audience": draft.pk, "platform": "generic_csv"},
        content_type="application/json",
    )

    assert response.status_code == 400 and "Freeze" in response.json()["detail"]
    assert not Export.objects.exists()


def test_it_says_when_a_file_is_not_there(marketer_client, marketer, audience, settings):
    export = exported(audience, "generic_csv", marketer)
    (settings.MEDIA_ROOT / export.file_path).unlink()
    running = exported(audience, "generic_json", marketer)
    Job.objects.filter(pk=running.job_id).update(status=Job.Status.RUNNING)

    gone = marketer_client.get(f"/api/exports/{export.pk}/download/")
    unfinished = marketer_client.get(f"/api/exports/{running.pk}/download/")

    assert gone.status_code == 404 and "no longer" in gone.json()["detail"]
    assert unfinished.status_code == 404


def test_it_throttles_export_requests(marketer_client, audience, monkeypatch):
    monkeypatch.setattr(ExportThrottle, "THROTTLE_RATES", {"export": "2/min"})
    payload = {"audience": audience.pk, "platform": "generic_csv"}

    codes = [
        marketer_client.post("/api/exports/", payload, content_type="application/json").status_code
        for _ in range(3)
    ]

    assert codes == [202, 202, 429]
    assert marketer_client.get("/api/exports/").status_code == 200  # reading is not throttled


def test_it_lists_the_platform_formats(viewer):
    formats = logged_in(viewer).get("/api/exports/formats/").json()

    keys = [f["key"] for f in formats]
    assert keys == [
        "google_customer_match",
        "meta_custom_audience",
        "meta_custom_audience_csv",
        "tiktok_customer_file",
        "generic_csv",
        "generic_json",
    ]
    google = formats[0]
    assert google["columns"] == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert google["needs_google_consents"] and google["match_keys"] == ["email", "phone", "address"]


def test_it_lets_stewards_keep_the_suppression_list(steward, marketer):
    customer = make_people(1)[0]
    client = logged_in(steward)

    created = client.post(
        "/api/suppressions/",
        {"customer": customer.pk, "reason": "objection"},
        content_type="application/json",
    )
    duplicate = client.post(
        "/api/suppressions/", {"customer": customer.pk}, content_type="application/json"
    )

    assert created.status_code == 201 and created.json()["pseudonym"] == customer.pseudonym
    assert duplicate.status_code == 400
    marketing = logged_in(marketer)
    assert marketing.get("/api/suppressions/").json()["count"] == 1
    assert (
        marketing.post(
            "/api/suppressions/", {"customer": customer.pk}, content_type="application/json"
        ).status_code
        == 403
    )
    assert client.delete(f"/api/suppressions/{created.json()['id']}/").status_code == 204
    assert not Suppression.objects.exists()


def test_it_estimates_an_unsaved_definition_on_a_large_base_from_a_sample(viewer, monkeypatch):
    from marketing.selectors import segments

    make_people(30)
    segment = everyone_segment()
    # Windows of 2 ids out of 30 (6 customers seen, each standing for 5): an estimate.
    monkeypatch.setattr(segments, "ESTIMATE_WINDOWS", 3)
    monkeypatch.setattr(segments, "ESTIMATE_WINDOW_IDS", 2)

    response = logged_in(viewer).post(
        "/api/audiences/preview/",
        {"segment": segment.pk, "platforms": ["generic_csv"]},
        content_type="application/json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["size"] == 30
    row = body["formats"][0]
    assert row["estimated"] is True and row["exportable"] == 30
