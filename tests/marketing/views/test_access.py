"""Every page: anonymous users go to the login page, viewers read, only writers write."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from marketing.models import Job, Segment, Upload
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(marketer):
    customer = make_customer("C1", age=40)
    segment = Segment.objects.create(name="All", rules={"op": "and", "rules": []})
    job = Job.objects.create(kind=Job.Kind.IMPORT, title="Import", created_by=marketer)
    upload = Upload.objects.create(
        kind=Upload.Kind.CUSTOMERS,
        file=ContentFile(b"external_id\nC1\n", name="c.csv"),
        original_name="c.csv",
        headers=["external_id"],
        mapping={"external_id": "external_id"},
        status=Upload.Status.MAPPED,
        created_by=marketer,
    )
    upload.error_file.save("errors.csv", ContentFile(b"row,column,value,reason\n"))
    return {"customer": customer, "segment": segment, "job": job, "upload": upload}


def read_pages(o) -> list[str]:
    return [
        reverse("overview"),
        reverse("upload-list"),
        reverse("upload-detail", args=[o["upload"].pk]),
        reverse("customer-list"),
        reverse("customer-detail", args=[o["customer"].pk]),
        reverse("segment-list"),
        reverse("segment-detail", args=[o["segment"].pk]),
        reverse("job-list"),
        reverse("job-detail", args=[o["job"].pk]),
    ]


def write_pages(o) -> list[str]:
    return [
        reverse("upload-create"),
        reverse("upload-mapping", args=[o["upload"].pk]),
        reverse("upload-preview", args=[o["upload"].pk]),
        reverse("segment-create"),
        reverse("segment-edit", args=[o["segment"].pk]),
    ]


def test_it_sends_anonymous_users_to_the_login_page(client, objects):
    urls = read_pages(objects) + write_pages(objects)
    urls += [reverse("upload-errors", args=[objects["upload"].pk]), reverse("overview-demo")]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_it_shows_every_read_page_to_a_viewer(viewer_client, objects):
    for url in read_pages(objects):
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        assert b'class="sidebar"' in response.content, url


def test_it_refuses_write_pages_to_a_viewer(viewer_client, objects):
    for url in write_pages(objects):
        assert viewer_client.get(url).status_code == 403, url
        assert viewer_client.post(url, {}).status_code == 403, url


def test_it_refuses_an_upload_by_a_viewer_and_stores_nothing(viewer_client):
    response = viewer_client.post(
        reverse("upload-create"),
        {"kind": "customers", "file": ContentFile(b"external_id\nC9\n", name="c.csv")},
    )
    assert response.status_code == 403
    assert not Upload.objects.exists()


def test_it_renders_the_refusal_inside_the_layout(viewer_client, objects):
    response = viewer_client.get(reverse("segment-create"))
    assert b"Your role does not allow this" in response.content
    assert b'class="sidebar"' in response.content


def test_it_keeps_the_error_file_from_viewers(viewer_client, objects):
    url = reverse("upload-errors", args=[objects["upload"].pk])
    assert viewer_client.get(url).status_code == 403


def test_it_lets_a_data_steward_upload_but_not_build_segments(steward_client, objects):
    assert steward_client.get(reverse("upload-create")).status_code == 200
    assert steward_client.get(reverse("segment-create")).status_code == 403


def test_it_shows_write_buttons_only_to_writers(client, viewer, marketer, objects):
    client.force_login(viewer)
    assert reverse("segment-create").encode() not in client.get(reverse("segment-list")).content
    client.force_login(marketer)
    assert reverse("segment-create").encode() in client.get(reverse("segment-list")).content


def test_it_renders_a_missing_page_inside_the_layout(viewer_client, settings):
    settings.DEBUG = False
    response = viewer_client.get("/segments/999999/")
    assert response.status_code == 404
    assert b"This page does not exist" in response.content
    assert b'class="sidebar"' in response.content
