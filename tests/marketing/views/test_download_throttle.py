"""Downloads from the pages share the API's "export" rate, per user, with a 429 page."""

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.urls import reverse

from marketing.models import Upload
from marketing.throttles import ExportThrottle
from tests.factories import make_customer, make_offer
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _two_per_minute(monkeypatch):
    cache.clear()
    monkeypatch.setattr(ExportThrottle, "THROTTLE_RATES", {"export": "2/min"})


@pytest.fixture
def export(marketer):
    make_people(3)
    return exported(frozen_audience(marketer), "generic_csv", marketer)


def _codes(client, url: str, n: int = 3, method: str = "get", **data) -> list[int]:
    return [getattr(client, method)(url, data).status_code for _ in range(n)]


def test_it_throttles_export_downloads_from_the_page(marketer_client, export):
    url = reverse("export-download", args=[export.pk])

    assert _codes(marketer_client, url) == [200, 200, 429]


def test_it_says_why_and_when_to_come_back(marketer_client, export):
    url = reverse("export-download", args=[export.pk])
    _codes(marketer_client, url, n=2)

    response = marketer_client.get(url)

    assert response.status_code == 429
    assert b"Too many downloads" in response.content
    assert int(response["Retry-After"]) > 0


def test_it_throttles_starting_exports_from_the_page(marketer_client, export):
    url = reverse("audience-export", args=[export.audience_id])

    codes = _codes(marketer_client, url, method="post", platform="generic_csv")

    assert codes == [302, 302, 429]


def test_it_throttles_the_upload_error_file(marketer_client, marketer):
    upload = Upload.objects.create(
        kind=Upload.Kind.CUSTOMERS,
        original_name="c.csv",
        file=ContentFile(b"external_id\nC1\n", name="c.csv"),
        created_by=marketer,
    )
    upload.error_file.save("errors.csv", ContentFile(b"row,column,value,reason\n"))

    codes = _codes(marketer_client, reverse("upload-errors", args=[upload.pk]))

    assert codes == [200, 200, 429]


def test_it_counts_page_and_api_downloads_together(marketer_client, export):
    api = marketer_client.get(f"/api/exports/{export.pk}/download/")
    page = _codes(marketer_client, reverse("export-download", args=[export.pk]), n=2)

    assert [api.status_code, *page] == [200, 200, 429]


def test_it_counts_each_user_apart(marketer_client, steward, export):
    url = reverse("export-download", args=[export.pk])
    _codes(marketer_client, url, n=3)

    assert logged_in(steward).get(url).status_code == 200


def test_it_throttles_score_downloads(marketer_client):
    offer = make_offer("TERM-DEPOSIT", title="Term deposit", category="savings")
    scoring = finished_scoring(finished_run(offer), [make_customer() for _ in range(3)])

    codes = _codes(marketer_client, f"/api/scoring-runs/{scoring.pk}/scores/", format="csv")

    assert codes == [200, 200, 429]
