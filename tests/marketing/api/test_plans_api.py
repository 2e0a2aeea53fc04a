import pytest

from marketing.models import CampaignPlan, Job
from recengine.roi import CampaignEconomics, plan_campaign
from tests.marketing.api.helpers import logged_in
from tests.marketing.plan_helpers import ECONOMICS, respond, scored_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoring(term_deposit):
    scoring, _ = scored_customers(30, term_deposit)
    return scoring


def create(client, scoring, **changes):
    return client.post(
        "/api/campaign-plans/",
        {
            "name": "Spring",
            "scoring_run": scoring.pk,
            "economics": ECONOMICS,
            **changes,
        },
        content_type="application/json",
    )


def test_it_creates_a_plan_returning_the_numbers_behind_each_chart(marketer_client, scoring):
    response = create(marketer_client, scoring)

    assert response.status_code == 201, response.json()
    body = response.json()
    expected = plan_campaign(
        list(scoring.scores.values_list("score", flat=True)), CampaignEconomics(**ECONOMICS)
    )
    assert body["id"] == CampaignPlan.objects.get().pk
    result = body["result"]
    assert result["curve"]["profit"] == pytest.approx(expected["curve"]["profit"])
    assert result["curve"]["random_profit"] == pytest.approx(expected["curve"]["random_profit"])
    assert result["curve"]["lift"] == pytest.approx(expected["curve"]["lift"])
    assert [row["contacts"] for row in result["table"]] == [2, 3, 6, 9, 15, 30]  # of 30
    assert result["best"]["contacts"] == expected["best"]["contacts"]
    assert body["economics"]["cost_per_contact"] == 2.0


def test_it_names_the_bad_economics_fields(marketer_client, scoring):
    response = create(
        marketer_client,
        scoring,
        economics={"cost_per_contact": "free", "value_per_conversion": -5, "discount": 3},
    )

    assert response.status_code == 400
    assert "discount" in response.json()["economics"][0]

    response = create(
        marketer_client, scoring, economics={"cost_per_contact": "free", "value_per_conversion": -5}
    )
    errors = response.json()
    assert "'free' is not a number" in errors["cost_per_contact"][0]
    assert "negative" in errors["value_per_conversion"][0]
    assert not CampaignPlan.objects.exists()


def test_it_lets_every_role_read_and_only_marketers_write(marketer, viewer, steward, scoring):
    plan_id = create(logged_in(marketer), scoring).json()["id"]

    for user in (viewer, steward):
        client = logged_in(user)
        assert client.get("/api/campaign-plans/").json()["count"] == 1
        assert client.get(f"/api/campaign-plans/{plan_id}/").status_code == 200
        assert create(client, scoring).status_code == 403
        assert (
            client.patch(
                f"/api/campaign-plans/{plan_id}/", {"contacts": 3}, content_type="application/json"
            ).status_code
            == 403
        )
        assert (
            client.post(f"/api/campaign-plans/{plan_id}/actuals/", {"campaign": "x"}).status_code
            == 403
        )


def test_it_refuses_anonymous_users(client):
    assert client.get("/api/campaign-plans/").status_code in (401, 403)


def test_it_replans_with_patch(marketer_client, scoring):
    plan_id = create(marketer_client, scoring).json()["id"]

    response = marketer_client.patch(
        f"/api/campaign-plans/{plan_id}/",
        {"contacts": 5, "economics": {**ECONOMICS, "budget": 150}},
        content_type="application/json",
    )

    assert response.status_code == 200, response.json()
    result = response.json()["result"]
    assert result["chosen"]["contacts"] == 5 and result["chosen"]["set_by"] == "marketer"
    assert result["budget"]["max_contacts"] == 25  # (150 - 100) / 2
    too_many = marketer_client.patch(
        f"/api/campaign-plans/{plan_id}/", {"contacts": 31}, content_type="application/json"
    )
    assert too_many.status_code == 400 and "Only 30 customers" in too_many.json()["contacts"][0]


def test_it_measures_actuals_and_returns_the_decile_numbers(marketer_client, scoring, term_deposit):
    plan_id = create(marketer_client, scoring, contacts=10).json()["id"]
    best = scoring.scores.order_by("-score").select_related("customer")[0].customer
    respond(best, term_deposit, "conversion", campaign="spring", value=40)

    response = marketer_client.post(
        f"/api/campaign-plans/{plan_id}/actuals/",
        {"campaign": "spring"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.json()
    actual = response.json()["actual"]
    assert actual["contacts"] == 10 and actual["actual"]["conversions"] == 1
    assert actual["actual"]["revenue"] == 40
    assert actual["actual"]["profit"] == pytest.approx(40 - (100 + 10 * 2))
    assert len(actual["deciles"]) == 10 and actual["deciles"][0]["actual_rate"] == 1.0
    missing = marketer_client.post(
        f"/api/campaign-plans/{plan_id}/actuals/",
        {"campaign": "autumn"},
        content_type="application/json",
    )
    assert missing.status_code == 400 and "autumn" in missing.json()["campaign"][0]


def test_it_starts_the_uplift_job_and_returns_it(
    marketer_client, scoring, django_capture_on_commit_callbacks
):
    plan_id = create(marketer_client, scoring).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            f"/api/campaign-plans/{plan_id}/uplift/",
            {"treatment_attribute": "age", "treatment_value": "21"},
            content_type="application/json",
        )

    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == Job.Kind.PLAN
    uplift = marketer_client.get(f"/api/campaign-plans/{plan_id}/").json()["uplift"]
    assert uplift["job"] == job.pk and uplift["status"] == "insufficient_data"
    assert uplift["reasons"]
    blank = marketer_client.post(
        f"/api/campaign-plans/{plan_id}/uplift/",
        {"treatment_attribute": "age"},
        content_type="application/json",
    )
    assert blank.status_code == 400 and "treatment_value" in blank.json()
