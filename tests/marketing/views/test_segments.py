import json

import pytest
from django.urls import reverse

from marketing.models import AuditEvent, ProfileField, Purpose, Segment
from tests.factories import make_customer, record_consent

pytestmark = pytest.mark.django_db

OVER_40 = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 40}]}


@pytest.fixture
def people(settings):
    settings.MIN_GROUP_SIZE = 3
    ProfileField.objects.create(name="age", label="Age", data_type="number")
    ProfileField.objects.create(name="job", label="Job", data_type="text", sample_values=["admin"])
    customers = [make_customer(age=30 + i, job="admin") for i in range(20)]
    for customer in customers[:12]:
        record_consent(customer, Purpose.EMAIL_MARKETING)
    return customers


def test_it_saves_a_segment_built_in_the_builder(marketer_client, marketer, people):
    response = marketer_client.post(
        reverse("segment-create"),
        {"name": "Over 40", "description": "", "rules": json.dumps(OVER_40)},
    )
    segment = Segment.objects.get(name="Over 40")
    assert response.status_code == 302
    assert response["Location"] == reverse("segment-detail", args=[segment.pk])
    assert segment.rules == OVER_40
    assert segment.created_by == marketer
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SEGMENT_CHANGE).exists()


def test_it_names_the_bad_rule_and_keeps_the_builder_state(marketer_client, people):
    rules = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": "old"}]}
    response = marketer_client.post(
        reverse("segment-create"), {"name": "Broken", "rules": json.dumps(rules)}
    )
    assert response.status_code == 200
    assert "must be a number" in response.content.decode()
    assert response.context["initial_rules"] == rules
    assert not Segment.objects.exists()


def test_it_refuses_a_duplicate_name(marketer_client, people):
    Segment.objects.create(name="Over 40", rules=OVER_40)
    response = marketer_client.post(
        reverse("segment-create"), {"name": "over 40", "rules": json.dumps(OVER_40)}
    )
    assert "exists already" in response.content.decode()
    assert Segment.objects.count() == 1


def test_it_shows_the_count_reach_and_a_pseudonymous_sample(viewer_client, people):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)
    response = viewer_client.get(reverse("segment-detail", args=[segment.pk]))
    assert response.context["count"]["display"] == "9"  # 10, to the nearest 3 (k)
    reach = {row["label"]: row for row in response.context["reachable"]}
    assert reach["Email marketing"]["display"] == "fewer than 3"
    assert reach["Email marketing"]["percent"] is None
    pseudonyms = {pseudonym for pseudonym, _ in response.context["sample"]}
    assert pseudonyms == {c.pseudonym for c in people[10:]}
    assert people[10].external_id not in response.content.decode()


def test_it_hides_small_segments_and_their_members(viewer_client, people):
    rules = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 48}]}
    segment = Segment.objects.create(name="Oldest", rules=rules)
    response = viewer_client.get(reverse("segment-detail", args=[segment.pk]))
    assert response.context["count"]["suppressed"]
    assert "sample" not in response.context
    assert "fewer than 3" in response.content.decode()


def test_it_lists_segments_with_live_counts_and_rules_in_words(viewer_client, people):
    Segment.objects.create(name="Over 40", rules=OVER_40)
    row = viewer_client.get(reverse("segment-list")).context["rows"][0]
    assert row["count"]["display"] == "9"  # 10, to the nearest 3 (k)
    assert row["summary"] == "Age at least 40"


def test_it_describes_nested_groups_in_words(viewer_client, people):
    rules = {
        "op": "and",
        "rules": [
            {"field": "attr:age", "operator": "between", "value": [30, 40]},
            {
                "op": "or",
                "rules": [
                    {"field": "attr:job", "operator": "eq", "value": "admin"},
                    {"field": "consent:email_marketing", "operator": "has_consent"},
                ],
            },
        ],
    }
    Segment.objects.create(name="Mixed", rules=rules)
    row = viewer_client.get(reverse("segment-list")).context["rows"][0]
    assert row["summary"] == (
        "Age between 30 and 40 and (Job is admin or Consent: Email marketing has consent)"
    )


def test_it_updates_a_segment(marketer_client, people):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)
    rules = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 45}]}
    response = marketer_client.post(
        reverse("segment-edit", args=[segment.pk]),
        {"name": "Over 45", "description": "older", "rules": json.dumps(rules)},
    )
    segment.refresh_from_db()
    assert response.status_code == 302
    assert (segment.name, segment.rules) == ("Over 45", rules)


def test_it_loads_the_builder_with_the_saved_rules(marketer_client, people):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)
    response = marketer_client.get(reverse("segment-edit", args=[segment.pk]))
    assert response.context["initial_rules"] == OVER_40
    assert b"js/segment-builder.js" in response.content
