import pytest

from marketing.models import Job, Purpose, RecommendationRun
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    recommend,
    scored_base,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return make_customers(5)


@pytest.fixture
def scoring(customers):
    return multi_offer_scoring(customers, make_catalogue())


def test_it_creates_a_run_that_returns_its_job_and_then_its_metrics(
    marketer_client, scoring, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            "/api/recommendation-runs/",
            {
                "scoring_run": scoring.pk,
                "k": 2,
                "diversity": 0.5,
                "offer_cap": 4,
            },
            content_type="application/json",
        )
    assert response.status_code == 201, response.json()
    created = response.json()
    run = RecommendationRun.objects.get()
    assert created["id"] == run.pk and created["job"] == run.job_id
    assert run.job.kind == Job.Kind.RECOMMEND

    detail = marketer_client.get(f"/api/recommendation-runs/{run.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["accuracy_basis"] == "none"
    assert detail["similarity"] == "categories"
    assert [p["mmr_lambda"] for p in detail["curve"]] == [
        p["mmr_lambda"] for p in run.result["curve"]
    ]
    assert detail["metrics"]["intra_list_diversity"] == pytest.approx(
        run.result["metrics"]["intra_list_diversity"]
    )
    assert sum(row["customers"] for row in detail["exposure"]) == 5 * 2
    assert max(row["customers"] for row in detail["exposure"]) <= 4


def test_it_lists_runs_for_every_role(viewer_client, steward_client, scoring):
    run = recommend(scoring)
    for client in (viewer_client, steward_client):
        body = client.get("/api/recommendation-runs/").json()
        assert [row["id"] for row in body["results"]] == [run.pk]


def test_it_answers_an_unknown_similarity_with_400(marketer_client, scoring):
    response = marketer_client.post(
        "/api/recommendation-runs/",
        {"scoring_run": scoring.pk, "k": 2, "diversity": 0.1, "similarity": "colour"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "similarity" in response.json()
    assert not RecommendationRun.objects.exists()


def test_it_refuses_creation_to_a_viewer(viewer_client, scoring):
    response = viewer_client.post(
        "/api/recommendation-runs/",
        {"scoring_run": scoring.pk, "k": 2, "diversity": 0.1},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not RecommendationRun.objects.exists()


def test_it_refuses_a_single_offer_scoring_run_with_a_pointer_to_audience_diversity(
    marketer_client,
):
    single, _ = scored_base()
    response = marketer_client.post(
        "/api/recommendation-runs/",
        {"scoring_run": single.pk, "k": 2, "diversity": 0.1},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "Audience diversity" in response.json()["detail"]


def test_it_returns_a_customers_list_and_refuses_it_without_consent(
    viewer_client, scoring, customers
):
    run = recommend(scoring, k=3)
    url = f"/api/recommendation-runs/{run.pk}/customers/{customers[1].pk}/"
    body = viewer_client.get(url).json()
    expected = list(
        run.items.filter(customer=customers[1]).order_by("rank").values_list("offer_id", "score")
    )
    assert [(o["offer_id"], o["score"]) for o in body["offers"]] == expected
    assert body["pseudonym"] == customers[1].pseudonym
    record_consent(customers[1], Purpose.PROFILING, "withdrawn", days_ago=0.001)
    response = viewer_client.get(url)
    assert response.status_code == 403
    assert "profiling consent" in response.json()["detail"]


def test_it_computes_the_audience_diversity_in_a_job_and_returns_the_last_numbers(
    client, marketer, viewer, django_capture_on_commit_callbacks
):
    single, _ = scored_base()
    url = f"/api/scoring-runs/{single.pk}/audience-diversity/"
    client.force_login(viewer)
    before = client.get(url).json()
    assert before == {"computed_at": None, "figures": None, "job": None, "error": None}
    assert client.post(url, {"top": 10}, content_type="application/json").status_code == 403
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(url, {"top": 10}, content_type="application/json")
    assert started.status_code == 202
    assert Job.objects.get(kind=Job.Kind.AUDIENCE_DIVERSITY).status == Job.Status.SUCCEEDED
    client.force_login(viewer)
    answer = client.get(url).json()
    body = answer["figures"]
    assert answer["computed_at"] and answer["job"] is None
    assert (body["base_size"], body["audience_size"]) == (100, 10)
    job = next(a for a in body["attributes"] if a["attribute"] == "job")
    retired = next(g for g in job["groups"] if g["group"] == "retired")
    assert retired["base_share"] == pytest.approx(0.2) and retired["audience_count"] == 0
    assert any(
        f["group"] == "retired" and f["flag"] == "left out" for f in body["under_represented"]
    )
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"top_n": 40, "attributes": ["job"]}, content_type="application/json")
    by_n = client.get(url).json()["figures"]
    assert by_n["audience_size"] == 40 and [a["attribute"] for a in by_n["attributes"]] == ["job"]


def test_it_answers_a_running_computation_with_its_job(marketer_client):
    single, _ = scored_base()
    url = f"/api/scoring-runs/{single.pk}/audience-diversity/"
    started = marketer_client.post(url, {}, content_type="application/json").json()
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_DIVERSITY)
    assert started["job"]["id"] == job.pk and started["figures"] is None
    again = marketer_client.post(url, {"top": 20}, content_type="application/json")
    assert again.json()["job"]["id"] == job.pk
    assert Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).count() == 1


def test_it_answers_bad_audience_parameters_with_400(marketer_client, scoring):
    single, _ = scored_base()
    url = f"/api/scoring-runs/{single.pk}/audience-diversity/"
    post = lambda data: marketer_client.post(url, data, content_type="application/json")  # noqa: E731
    assert post({"top": "lots"}).status_code == 400
    assert post({"top": 0}).status_code == 400
    assert post({"attributes": ["shoe_size"]}).status_code == 400
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()
    multi = marketer_client.get(f"/api/scoring-runs/{scoring.pk}/audience-diversity/")
    assert multi.status_code == 400 and "Recommendations" in multi.json()["detail"]


def test_it_requires_authentication(client, scoring):
    assert client.get("/api/recommendation-runs/").status_code in (401, 403)
    assert client.get(f"/api/scoring-runs/{scoring.pk}/audience-diversity/").status_code in (
        401,
        403,
    )
