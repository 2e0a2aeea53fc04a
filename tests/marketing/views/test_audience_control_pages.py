"""The control group in the pages and the API: chosen in the builder, counted on the audience
page, and its results measured by a marketer in a job and shown with their interval."""

from datetime import timedelta

import pytest
from django.urls import reverse

from marketing.models import Audience, Interaction, Job
from tests.factories import make_offer
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import (
    everyone_segment,
    frozen_audience,
    make_people,
)

pytestmark = pytest.mark.django_db


def _converted(audience: Audience, *, contacted: int, control: int) -> None:
    """Conversions after the freeze: the first ``contacted`` and ``control`` of each group."""
    offer = make_offer()
    at = audience.frozen_at + timedelta(days=1)
    ids = []
    for in_control, count in ((False, contacted), (True, control)):
        members = audience.members.filter(in_control=in_control).order_by("pk")
        ids += list(members.values_list("customer_id", flat=True)[:count])
    Interaction.objects.bulk_create(
        [Interaction(customer_id=c, offer=offer, kind="conversion", occurred_at=at) for c in ids]
    )


def test_it_builds_an_audience_with_a_control_group_from_the_form(
    marketer_client, django_capture_on_commit_callbacks
):
    make_people(50)
    segment = everyone_segment()

    page = marketer_client.get(reverse("audience-create")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(
            reverse("audience-create"),
            {"segment": segment.pk, "cut": "all", "control_percent": "20", "control_seed": "3"},
        )

    assert 'name="control_percent"' in page and 'name="control_seed"' in page
    audience = Audience.objects.get()
    assert audience.control_share == 0.2 and audience.control_seed == 3
    held = audience.members.filter(in_control=True).count()
    assert audience.is_frozen and audience.control_size == held > 0
    detail = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()
    counts = (
        f"<strong>{50 - held}</strong> contacted + <strong>{held}</strong> held back as control"
    )
    assert counts in detail


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"control_percent": "60"}, "control_percent", "at most 50 %"),
        ({"control_seed": "5"}, "control_seed", "give the control group's share too"),
        ({"control_percent": "10", "control_seed": "-2"}, "control_seed", "from 0 to"),
    ],
)
def test_it_says_what_is_wrong_with_a_control_group_beside_its_field(
    marketer_client, fields, field, message
):
    segment = everyone_segment()

    response = marketer_client.post(
        reverse("audience-create"), {"segment": segment.pk, "cut": "all", **fields}
    )

    assert response.status_code == 200 and not Audience.objects.exists()
    assert message in " ".join(response.context["form"].errors[field])


def test_a_marketer_measures_the_results_and_sees_the_lift_with_its_interval(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    make_people(400)
    audience = frozen_audience(marketer, control_percent=25, control_seed=2)
    _converted(audience, contacted=90, control=5)
    url = reverse("audience-detail", args=[audience.pk])

    before = marketer_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("audience-results", args=[audience.pk]),
            {"value_per_conversion": "50", "cost_per_contact": "0.5"},
        )
    page = marketer_client.get(url).content.decode()

    assert "Measure results" in before and "Not measured yet" in before
    assert response.status_code == 302 and response["Location"].endswith("#results")
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_RESULTS)
    assert job.status == Job.Status.SUCCEEDED
    assert "The campaign worked" in page and "95% interval" in page
    assert "Incremental profit" in page and "ROI" in page
    assert 'data-plotly="results-chart-data"' in page and "plotly.min.js" in page
    assert "Measure again" in page


def test_a_small_campaign_is_too_small_to_tell_on_the_page(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    make_people(40)
    audience = frozen_audience(marketer, control_percent=25, control_seed=2)
    _converted(audience, contacted=3, control=1)

    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(reverse("audience-results", args=[audience.pk]), {})
    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    assert "Too small to tell" in page and "is unlikely to show" in page


def test_it_shows_the_measure_under_way_with_its_progress_bar(marketer_client, marketer):
    make_people(40)
    audience = frozen_audience(marketer, control_percent=25, control_seed=2)

    # Without a commit the job stays queued, as it is until a worker takes it.
    marketer_client.post(reverse("audience-results", args=[audience.pk]), {})
    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    job = Job.objects.get(kind=Job.Kind.AUDIENCE_RESULTS)
    assert 'data-testid="results-progress"' in page and f'data-job-id="{job.pk}"' in page
    assert 'data-refresh="results-body"' in page and "Measure results" not in page


def test_it_says_what_is_wrong_with_the_results_inputs(marketer_client, marketer):
    make_people(40)
    audience = frozen_audience(marketer, control_percent=25, control_seed=2)

    response = marketer_client.post(
        reverse("audience-results", args=[audience.pk]),
        {"value_per_conversion": "-3"},
        follow=True,
    )

    assert "Enter an amount of 0 or more" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_RESULTS).exists()


def test_viewers_see_the_results_but_cannot_measure(viewer, marketer):
    make_people(40)
    audience = frozen_audience(marketer, control_percent=25, control_seed=2)
    client = logged_in(viewer)

    page = client.get(reverse("audience-detail", args=[audience.pk])).content.decode()
    refused = client.post(reverse("audience-results", args=[audience.pk]), {})
    api = client.post(f"/api/audiences/{audience.pk}/results/", {}, content_type="application/json")

    assert "Campaign results" in page and "Measure results" not in page
    assert refused.status_code == 403 and api.status_code == 403
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_RESULTS).exists()


def test_an_audience_without_a_control_group_has_no_results_section(marketer_client, marketer):
    make_people(20)
    audience = frozen_audience(marketer)

    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    assert "Campaign results" not in page and "held back as control" not in page


# ---- the API ----------------------------------------------------------------------------------


def test_the_api_creates_an_audience_with_a_control_group_and_measures_it(
    marketer_client, django_capture_on_commit_callbacks
):
    make_people(60)
    segment = everyone_segment()

    created = marketer_client.post(
        "/api/audiences/",
        {"segment": segment.pk, "control_percent": 25, "control_seed": 9},
        content_type="application/json",
    )
    pk = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(f"/api/audiences/{pk}/freeze/")
    with django_capture_on_commit_callbacks(execute=True):
        started = marketer_client.post(
            f"/api/audiences/{pk}/results/",
            {"cost_per_contact": 1},
            content_type="application/json",
        )
    audience = marketer_client.get(f"/api/audiences/{pk}/").json()

    assert created.status_code == 201 and created.json()["control_percent"] == 25
    assert created.json()["control_seed"] == 9
    assert started.status_code == 202 and started.json()["kind"] == "audience_results"
    assert audience["size"] == 60 and 0 < audience["control_size"] < 30
    assert audience["results"]["treated"]["members"] == 60 - audience["control_size"]
    assert audience["results"]["cost_per_contact"] == 1


def test_the_api_names_a_bad_control_share(marketer_client):
    segment = everyone_segment()

    response = marketer_client.post(
        "/api/audiences/",
        {"segment": segment.pk, "control_percent": 75},
        content_type="application/json",
    )

    assert response.status_code == 400 and "control_percent" in response.json()
    assert not Audience.objects.exists()


def test_the_api_refuses_to_measure_an_audience_without_a_control_group(marketer_client, marketer):
    make_people(20)
    audience = frozen_audience(marketer)

    response = marketer_client.post(
        f"/api/audiences/{audience.pk}/results/", {}, content_type="application/json"
    )

    assert response.status_code == 400 and "control group" in response.json()["detail"]
