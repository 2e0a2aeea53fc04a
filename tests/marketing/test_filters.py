"""Query-parameter filters of the API list endpoints."""

import pytest

from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_it_filters_by_a_time_with_any_utc_offset_iso_allows(viewer_client):
    make_customer()
    # +22:00 is valid ISO 8601 that PostgreSQL refuses as it is; in UTC it is 2000-01-01 02:00.
    response = viewer_client.get("/api/customers/", {"created_after": "2000-01-02T00:00:00+22:00"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_it_answers_400_to_a_time_outside_the_years_utc_can_hold(viewer_client):
    response = viewer_client.get("/api/customers/", {"created_before": "0001-01-01T01:00:00+18:00"})
    assert response.status_code == 400
    assert response.json() == {
        "created_before": ["This time falls outside the years 1 to 9999 in UTC."]
    }
