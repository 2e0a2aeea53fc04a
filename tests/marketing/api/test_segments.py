import pytest

from marketing.models import AuditEvent, ProfileField, Segment
from tests.factories import make_customer
from tests.marketing.api.helpers import logged_in
from tests.marketing.figures_helpers import counted_segment

pytestmark = pytest.mark.django_db

OLDER = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 40}]}


@pytest.fixture
def customers():
    ProfileField.objects.create(name="age", data_type="number")
    ProfileField.objects.create(name="job", data_type="text", sample_values=["admin", "student"])
    return [make_customer(age=30 + i) for i in range(30)]  # ages 30..59: 20 are 40 or older


def test_it_creates_a_segment_and_audits_it(marketer_client, customers):
    response = marketer_client.post(
        "/api/segments/", {"name": "Older", "rules": OLDER}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    segment = Segment.objects.get()
    assert segment.created_by.username == "mara"
    event = AuditEvent.objects.get(action="segment_change")
    assert (event.target_ref, event.details["change"]) == (str(segment.pk), "created")


def test_it_answers_400_to_a_segment_without_rules(marketer_client):
    response = marketer_client.post(
        "/api/segments/", {"name": "n"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"rules": ["This field is required."]}
    assert not Segment.objects.exists()


def test_it_rejects_bad_rules_naming_the_rule(marketer_client, customers):
    rules = {"op": "and", "rules": [{"field": "attr:job", "operator": "gt", "value": 3}]}
    response = marketer_client.post(
        "/api/segments/", {"name": "Bad", "rules": rules}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "rules[0] (attr:job)" in response.json()["rules"][0]
    assert not Segment.objects.exists()


def test_it_updates_and_deletes_through_the_services(marketer_client, customers, marketer):
    segment = Segment.objects.create(name="Older", rules=OLDER, created_by=marketer)
    url = f"/api/segments/{segment.pk}/"
    response = marketer_client.patch(url, {"description": "40+"}, content_type="application/json")
    assert response.status_code == 200
    assert marketer_client.delete(url).status_code == 204
    changes = AuditEvent.objects.filter(action="segment_change").values_list(
        "details__change", flat=True
    )
    assert sorted(changes) == ["deleted", "updated"]


def test_it_lets_a_viewer_read_but_not_write_segments(viewer_client, customers):
    Segment.objects.create(name="Older", rules=OLDER)
    assert viewer_client.get("/api/segments/").json()["count"] == 1
    response = viewer_client.post(
        "/api/segments/", {"name": "Mine", "rules": OLDER}, content_type="application/json"
    )
    assert response.status_code == 403
    assert Segment.objects.count() == 1


def test_it_answers_the_last_count_of_a_saved_segment(viewer_client, customers):
    segment = Segment.objects.create(name="Older", rules=OLDER)
    never = viewer_client.get(f"/api/segments/{segment.pk}/count/").json()
    counted_segment(segment)
    body = viewer_client.get(f"/api/segments/{segment.pk}/count/").json()

    assert never["count"] is None and never["computed_at"] is None and never["job"] is None
    assert {key: body[key] for key in ("count", "display", "suppressed", "stale", "job")} == {
        "count": 20,
        "display": "20",
        "suppressed": False,
        "stale": False,
        "job": None,
    }
    assert body["computed_at"] is not None


def test_it_starts_a_recount_with_202_and_the_job(marketer_client, viewer, customers):
    segment = Segment.objects.create(name="Older", rules=OLDER)

    response = marketer_client.post(f"/api/segments/{segment.pk}/count/")
    again = marketer_client.post(f"/api/segments/{segment.pk}/count/")

    assert response.status_code == 202
    job = response.json()["job"]
    assert job["kind"] == "segment_count" and job["status"] == "queued"
    assert again.json()["job"]["id"] == job["id"]  # one count at a time
    assert logged_in(viewer).post(f"/api/segments/{segment.pk}/count/").status_code == 403


def test_it_estimates_the_live_preview_of_a_large_base_from_a_bounded_sample(
    viewer_client, customers, monkeypatch
):
    from marketing.selectors import segments

    # Windows of 2 ids out of 30: counted exactly below that, estimated above it.
    monkeypatch.setattr(segments, "ESTIMATE_WINDOWS", 3)
    monkeypatch.setattr(segments, "ESTIMATE_WINDOW_IDS", 2)
    everyone = {"op": "and", "rules": []}

    response = viewer_client.post(
        "/api/segments/preview/", {"rules": everyone}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json() == {"count": 30, "display": "30", "suppressed": False, "estimated": True}


def test_it_previews_unsaved_rules_and_hides_small_counts(viewer_client, customers):
    few = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 55}]}
    response = viewer_client.post(
        "/api/segments/preview/", {"rules": few}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "count": None,
        "display": "fewer than 10",
        "suppressed": True,
        "estimated": False,
    }


def test_it_answers_a_bad_preview_with_400_and_the_reason(marketer_client, customers):
    rules = {"op": "and", "rules": [{"field": "attr:height", "operator": "gt", "value": 1}]}
    response = marketer_client.post(
        "/api/segments/preview/", {"rules": rules}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("rules[0] (attr:height): unknown field")


def test_it_lists_fields_for_the_rule_builder(viewer_client, customers):
    fields = {f["field"]: f for f in viewer_client.get("/api/segments/fields/").json()}
    assert fields["attr:job"]["values"] == ["admin", "student"]
    assert fields["consent:email_marketing"]["operators"] == ["has_consent", "no_consent"]


def test_it_refuses_a_duplicate_name(marketer_client, customers):
    Segment.objects.create(name="Older", rules=OLDER)
    response = marketer_client.post(
        "/api/segments/", {"name": "Older", "rules": OLDER}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "name" in response.json()


def test_it_lets_only_marketers_write_segments(steward, customers):
    response = logged_in(steward).post(
        "/api/segments/", {"name": "S", "rules": OLDER}, content_type="application/json"
    )
    assert response.status_code == 403
