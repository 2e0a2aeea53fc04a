import json

import pytest
from django.urls import reverse

from marketing.models import Job, Purpose, RecommendationRun
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    recommend,
    record_clicks,
    scored_base,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return make_customers(6)


@pytest.fixture
def scoring(customers):
    return multi_offer_scoring(customers, make_catalogue())


@pytest.fixture
def finished(scoring, marketer) -> RecommendationRun:
    return recommend(scoring, k=2, diversity=0.3, offer_cap=5, by=marketer)


def chart(body: str, name: str) -> dict:
    start = body.index(f'id="{name}"')
    start = body.index(">", start) + 1
    return json.loads(body[start : body.index("</script>", start)])


def recommendations_section(body: str) -> str:
    start = body.index('id="customer-recommendations"')
    return body[start : body.index("</section>", start)]


def test_it_shows_an_empty_state_that_points_to_multi_offer_models(viewer_client):
    body = viewer_client.get(reverse("recommendation-list")).content.decode()
    assert "No recommendations yet" in body
    assert "Train a model on every offer" in body
    assert "New recommendations" not in body


def test_it_lists_runs_with_their_diversity_for_a_viewer(viewer_client, finished):
    body = viewer_client.get(reverse("recommendation-list")).content.decode()
    assert f"Recommendations #{finished.pk}" in body
    assert f"{finished.result['metrics']['intra_list_diversity']:.3f}" in body
    assert "New recommendations" not in body  # viewers read only


def test_it_shows_the_sidebar_link_under_campaigns(viewer_client):
    body = viewer_client.get(reverse("overview")).content.decode()
    campaigns = body.index(">Campaigns<")
    assert body.index(reverse("recommendation-list"), campaigns) > campaigns


def test_it_starts_a_run_from_the_form_and_shows_its_charts(
    marketer_client, scoring, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("recommendation-create"),
            {
                "scoring_run": scoring.pk,
                "k": 3,
                "diversity": 0.4,
                "offer_cap": "",
                "similarity": "categories",
            },
        )
    run = RecommendationRun.objects.get()
    assert response.url == reverse("recommendation-detail", args=[run.pk])
    assert (run.k, run.diversity, run.offer_cap) == (3, 0.4, None)
    body = marketer_client.get(response.url).content.decode()
    curve = chart(body, "curve-chart-data")
    star = curve["data"][1]
    assert star["name"] == "Chosen λ 0.4"
    point = next(p for p in run.result["curve"] if p["mmr_lambda"] == 0.4)
    assert star["x"] == [point["intra_list_diversity"]]
    exposure = chart(body, "exposure-chart-data")
    assert sum(exposure["data"][0]["y"]) == 6 * 3
    assert "vendor/plotly/plotly.min.js" in body and "cdn" not in body.lower()
    assert 'data-testid="ild"' in body and "Sample of lists" in body


def test_it_says_which_clicks_the_accuracy_is_measured_against(
    marketer_client, scoring, customers, marketer
):
    offers = list(scoring.scores.values_list("offer", flat=True).distinct())
    from marketing.models import Offer

    record_clicks([(customers[0], Offer.objects.get(pk=offers[0]))], days_ago=20)
    run = recommend(scoring, k=2, by=marketer)
    body = marketer_client.get(reverse("recommendation-detail", args=[run.pk])).content.decode()
    assert "every recorded click and conversion" in body
    assert "NDCG@2" in body


def test_it_refuses_the_form_to_a_viewer(viewer_client, scoring):
    assert viewer_client.get(reverse("recommendation-create")).status_code == 403
    response = viewer_client.post(
        reverse("recommendation-create"), {"scoring_run": scoring.pk, "k": 2, "diversity": 0}
    )
    assert response.status_code == 403
    assert not RecommendationRun.objects.exists()


def test_it_shows_progress_while_the_job_runs(viewer_client, scoring):
    from marketing.services.recommendations import recommendation_run_create

    run = recommendation_run_create(scoring_run=scoring, k=2, diversity=0.2, by=None)
    Job.objects.filter(pk=run.job_id).update(
        status="running", progress=30, message="Re-ranking at 7 diversity settings"
    )
    body = viewer_client.get(reverse("recommendation-detail", args=[run.pk])).content.decode()
    assert f'data-job-id="{run.job_id}"' in body
    assert "Re-ranking at 7 diversity settings" in body
    assert "curve-chart-data" not in body


def test_it_shows_the_latest_list_on_the_customer_page_and_hides_it_without_consent(
    viewer_client, finished, customers
):
    url = reverse("customer-detail", args=[customers[0].pk])
    section = recommendations_section(viewer_client.get(url).content.decode())
    titles = list(
        finished.items.filter(customer=customers[0])
        .order_by("rank")
        .values_list("offer__title", flat=True)
    )
    assert "Recommended offers" in section
    assert section.index(titles[0]) < section.index(titles[1])
    record_consent(customers[0], Purpose.PROFILING, "withdrawn", days_ago=0.001)
    section = recommendations_section(viewer_client.get(url).content.decode())
    assert "no valid profiling consent" in section and titles[1] not in section


def test_it_links_the_scoring_page_to_recommendations_or_audience_diversity(
    marketer_client, scoring
):
    body = marketer_client.get(reverse("model-scoring-detail", args=[scoring.pk])).content.decode()
    assert f"{reverse('recommendation-create')}?scoring_run={scoring.pk}" in body
    assert "Audience diversity" not in body
    single, _ = scored_base()
    body = marketer_client.get(reverse("model-scoring-detail", args=[single.pk])).content.decode()
    assert reverse("model-audience-diversity", args=[single.pk]) in body


def test_it_shows_a_compute_button_before_the_first_computation(client, marketer, viewer):
    single, _ = scored_base()
    client.force_login(marketer)
    marketer_client = client
    url = reverse("model-audience-diversity", args=[single.pk])
    page = marketer_client.get(url).content.decode()
    compute = reverse("model-audience-diversity-compute", args=[single.pk])
    assert "Not computed yet" in page and 'data-testid="base-size"' not in page
    form = page[page.index(f'action="{compute}"') :]
    assert 'method="post"' in page and "csrfmiddlewaretoken" in form and ">Compute<" in form
    client.force_login(viewer)
    seen_by_viewer = client.get(url).content.decode()
    assert "Not computed yet" in seen_by_viewer and compute not in seen_by_viewer
    assert client.post(compute, {"top": 10}).status_code == 403
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()


def test_it_computes_in_a_job_then_shows_the_findings_charts_and_their_age(
    marketer_client, django_capture_on_commit_callbacks
):
    single, _ = scored_base()
    url = reverse("model-audience-diversity", args=[single.pk])
    compute = reverse("model-audience-diversity-compute", args=[single.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(compute, {"top": 10})
    assert response.status_code == 302 and response["Location"].startswith(url)
    body = marketer_client.get(url).content.decode()
    assert "Customers with job “retired” are 20% of the base but none of the top 10%." in body
    assert 'data-testid="figures-age"' in body and ">Recompute<" in body
    figures = [chart(body, f"audience-chart-{i}") for i in range(2)]
    job = next(f for f in figures if "retired" in f["data"][0]["x"])
    base, top = job["data"][:2]
    at = base["x"].index("retired")
    assert base["y"][at] == pytest.approx(0.2) and top["y"][at] == 0
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(compute, {"top_n": 40})
    body = marketer_client.get(url).content.decode()
    assert 'data-testid="audience-size">40<' in body


def test_it_shows_a_running_computation_with_its_progress_bar(marketer_client):
    single, _ = scored_base()
    marketer_client.post(reverse("model-audience-diversity-compute", args=[single.pk]), {"top": 10})
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_DIVERSITY)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, progress=40)
    page = marketer_client.get(reverse("model-audience-diversity", args=[single.pk]))
    page = page.content.decode()
    assert 'data-testid="diversity-progress"' in page and f'data-job-id="{job.pk}"' in page
    assert 'aria-valuenow="40"' in page and "Not computed yet" not in page


def test_it_shows_why_the_last_computation_failed(
    marketer_client, django_capture_on_commit_callbacks
):
    single, customers = scored_base()
    for customer in customers:
        record_consent(customer, Purpose.PROFILING, "withdrawn", days_ago=0.001)
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(
            reverse("model-audience-diversity-compute", args=[single.pk]), {"top": 10}
        )
    page = marketer_client.get(reverse("model-audience-diversity", args=[single.pk]))
    assert "The last computation failed: No scored customer has a valid profiling consent" in (
        page.content.decode()
    )


def test_it_refuses_a_bad_top_without_starting_a_job(marketer_client):
    single, _ = scored_base()
    response = marketer_client.post(
        reverse("model-audience-diversity-compute", args=[single.pk]),
        {"top": 10, "attributes": ["shoe_size"]},
        follow=True,
    )
    assert "shoe_size" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()


def test_it_explains_why_a_multi_offer_run_has_no_audience_diversity(viewer_client, scoring):
    body = viewer_client.get(
        reverse("model-audience-diversity", args=[scoring.pk])
    ).content.decode()
    assert "Use “Recommendations”" in body


def test_it_requires_a_login_for_every_page(client, finished):
    for url in (
        reverse("recommendation-list"),
        reverse("recommendation-detail", args=[finished.pk]),
        reverse("model-audience-diversity", args=[finished.scoring_run_id]),
    ):
        response = client.get(url)
        assert response.status_code in (302, 403)


def test_it_draws_the_attributes_most_different_from_the_base_and_lists_the_rest(
    marketer_client, django_capture_on_commit_callbacks, monkeypatch
):
    from marketing.views import recommendations as views

    monkeypatch.setattr(views, "CHARTS_FIRST", 1)
    single, _ = scored_base()
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(
            reverse("model-audience-diversity-compute", args=[single.pk]), {"top": 10}
        )
    body = marketer_client.get(reverse("model-audience-diversity", args=[single.pk]))
    body = body.content.decode()
    assert 'id="audience-chart-0"' in body and 'id="audience-chart-1"' not in body
    other = body[body.index('id="other-attributes"') :]
    # The drawn attribute is the one whose top differs most from the base.
    from marketing.models import AudienceDiversityFigures

    first, second = AudienceDiversityFigures.objects.get().figures["attributes"]
    assert first["js_divergence"] >= second["js_divergence"]
    assert f"<h2>{first['label']}</h2>" in body[: body.index('id="other-attributes"')]
    assert f"<td>{second['label']}</td>" in other
    assert "of the top would change group to match the base" in body
    assert other.count("<tr>") == 2  # the header and the one other attribute
