import json
import re

import pytest
from django.urls import reverse

from marketing.models import AuditEvent, Job, ProfileField, Purpose, Segment
from tests.factories import make_customer, record_consent
from tests.marketing.figures_helpers import counted_segment

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
    counted_segment(segment)
    response = viewer_client.get(reverse("segment-detail", args=[segment.pk]))
    assert response.context["count"]["display"] == "9"  # 10, to the nearest 3 (k)
    reach = {row["label"]: row for row in response.context["reachable"]}
    assert reach["Email marketing"]["display"] == "fewer than 3"
    assert reach["Email marketing"]["percent"] is None
    pseudonyms = {pseudonym for _, pseudonym, _ in response.context["sample"]}
    assert pseudonyms == {c.pseudonym for c in people[10:]}
    # Each sample member links to the customer page.
    assert reverse("customer-detail", args=[people[10].pk]) in response.content.decode()
    assert people[10].external_id not in response.content.decode()


def test_it_hides_small_segments_and_their_members(viewer_client, people):
    rules = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 48}]}
    segment = Segment.objects.create(name="Oldest", rules=rules)
    counted_segment(segment)
    response = viewer_client.get(reverse("segment-detail", args=[segment.pk]))
    assert response.context["count"]["suppressed"]
    assert "sample" not in response.context
    assert "fewer than 3" in response.content.decode()


def test_it_lists_segments_with_their_counts_and_rules_in_words(viewer_client, people):
    counted_segment(Segment.objects.create(name="Over 40", rules=OVER_40))
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


def test_it_shows_a_count_now_button_before_the_first_count(marketer_client, people):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)

    response = marketer_client.get(reverse("segment-detail", args=[segment.pk]))

    page = response.content.decode()
    assert response.context["count"]["display"] == "not counted yet"
    assert "sample" not in response.context
    assert f'action="{reverse("segment-count", args=[segment.pk])}"' in page
    assert "Count now" in page


def test_it_counts_a_segment_in_a_job_from_the_page(
    marketer_client, people, django_capture_on_commit_callbacks
):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("segment-count", args=[segment.pk]))
    page = marketer_client.get(reverse("segment-detail", args=[segment.pk]))

    assert response.status_code == 302
    assert page.context["count"]["display"] == "9"
    assert 'data-testid="figures-age"' in page.content.decode()


def test_it_recounts_when_the_rules_change_and_marks_the_old_count_stale(marketer_client, people):
    segment = Segment.objects.create(name="Over 40", rules=OVER_40)
    counted_segment(segment)
    older = {"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 45}]}

    marketer_client.post(
        reverse("segment-edit", args=[segment.pk]),
        {"name": "Over 45", "description": "", "rules": json.dumps(older)},
    )
    response = marketer_client.get(reverse("segment-detail", args=[segment.pk]))

    job = Job.objects.filter(kind=Job.Kind.SEGMENT_COUNT).latest("id")
    assert job.status == Job.Status.QUEUED and job.params == {"segment": segment.pk}
    assert response.context["figures"]["stale"] and "sample" not in response.context
    assert f'data-job-id="{job.pk}"' in response.content.decode()


def test_the_segment_pages_read_no_more_with_300_customers_than_with_10(viewer_client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ProfileField.objects.create(name="band", label="Band", data_type="text")

    def queries(n: int) -> tuple[int, int]:
        for _ in range(n):
            make_customer(band=f"b{n}")
        rules = {"op": "and", "rules": [{"field": "attr:band", "operator": "eq", "value": f"b{n}"}]}
        segment = Segment.objects.create(name=f"Band {n}", rules=rules)
        counted_segment(segment)
        counts = []
        for url in (reverse("segment-list"), reverse("segment-detail", args=[segment.pk])):
            with CaptureQueriesContext(connection) as captured:
                assert viewer_client.get(url).status_code == 200
            unbounded = [
                q["sql"]
                for q in captured.captured_queries
                if "marketing_customer" in q["sql"]
                and not re.search(r"\bLIMIT \d+\s*$", q["sql"], re.IGNORECASE)
            ]
            assert unbounded == [], unbounded
            counts.append(len(captured.captured_queries))
        return counts[0], counts[1]

    small = queries(10)
    large = queries(300)
    # The list shows one more segment the second time, whose rules are checked against the
    # profile fields (one small lookup per row shown, none of customers).
    assert (small[0] + 1, small[1]) == large


def test_a_segment_leads_on_to_scoring_and_building_an_audience(
    marketer_client, viewer, marketer, people
):
    from tests.factories import make_offer
    from tests.marketing.api.helpers import logged_in
    from tests.marketing.training_helpers import finished_run

    segment = Segment.objects.create(name="Over 40", rules=OVER_40)
    url = reverse("segment-detail", args=[segment.pk])
    page = marketer_client.get(url).content.decode()
    assert f"/audiences/new/?segment={segment.pk}" in page
    assert "Score it" not in page  # no trained model yet
    run = finished_run(make_offer(), by=marketer)
    page = marketer_client.get(url).content.decode()
    score_link = f"/models/{run.pk}/?segment={segment.pk}#scoring"
    assert score_link in page
    model_page = marketer_client.get(score_link.split("#")[0]).content.decode()
    assert f'<option value="{segment.pk}" selected>' in model_page
    # A viewer reads the segment but is not offered what only marketers may do.
    viewer_page = logged_in(viewer).get(url).content.decode()
    assert "/audiences/new/" not in viewer_page and score_link not in viewer_page
