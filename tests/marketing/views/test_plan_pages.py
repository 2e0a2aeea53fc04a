import re

import pytest
from django.urls import reverse

from marketing.models import CampaignPlan, Job
from marketing.services.plans import campaign_plan_create
from tests.marketing.api.helpers import logged_in
from tests.marketing.plan_helpers import ECONOMICS, respond, scored_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoring(term_deposit, marketer):
    scoring, _ = scored_customers(50, term_deposit, by=marketer)
    return scoring


@pytest.fixture
def plan(scoring, marketer) -> CampaignPlan:
    return campaign_plan_create(
        scoring_run=scoring, name="Spring calls", economics=ECONOMICS, by=marketer
    )


def form_data(scoring, **changes):
    return {
        "name": "Spring calls",
        "scoring_run": scoring.pk,
        "offer": "",
        "cost_per_contact": "2",
        "fixed_cost": "100",
        "value_per_conversion": "50",
        "budget": "",
        **changes,
    }


def test_it_explains_how_to_get_scores_when_there_are_none(marketer_client):
    body = marketer_client.get(reverse("plan-list")).content.decode()

    assert "No campaign plans yet" in body
    assert "A plan needs scores" in body and reverse("model-list") in body
    form = marketer_client.get(reverse("plan-create")).content.decode()
    assert "No scores to plan with" in form


def test_it_lists_plans_with_best_depth_and_profit_for_a_viewer(viewer_client, plan):
    body = viewer_client.get(reverse("plan-list")).content.decode()

    assert "Spring calls" in body
    best = plan.result["best"]
    assert f"€{round(best['profit']):,}" in body
    assert "Plan a campaign" not in body  # viewers read only


def test_it_shows_money_in_the_currency_set_for_the_site(viewer_client, plan, settings):
    settings.CURRENCY_SYMBOL = "CHF"
    best = plan.result["best"]
    listing = viewer_client.get(reverse("plan-list")).content.decode()
    assert f"CHF {round(best['profit']):,}" in listing and "€" not in listing
    detail = viewer_client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert f"CHF {round(best['profit']):,}" in detail
    assert re.search(r'"tickprefix":\s*"CHF "', detail)  # the profit chart's axis


def test_it_labels_the_economics_in_the_site_currency(marketer_client, scoring, settings):
    settings.CURRENCY_SYMBOL = "$"
    form = marketer_client.get(reverse("plan-create"), {"scoring_run": scoring.pk})
    body = form.content.decode()
    assert "Cost per contact ($)" in body and "Budget ($)" in body and "(€)" not in body
    assert "Amounts in $" in body


def test_it_offers_planning_on_the_scoring_page_to_marketers_only(marketer, viewer, scoring):
    url = reverse("model-scoring-detail", args=[scoring.pk])
    link = f"{reverse('plan-create')}?scoring_run={scoring.pk}"

    assert link in logged_in(marketer).get(url).content.decode()
    assert link not in logged_in(viewer).get(url).content.decode()


def test_it_prefills_the_form_from_the_scoring_run_with_defaults(marketer_client, scoring):
    response = marketer_client.get(reverse("plan-create"), {"scoring_run": scoring.pk})

    form = response.context["form"]
    assert form.initial["scoring_run"] == scoring.pk
    assert form.initial["cost_per_contact"] > 0 and form.initial["value_per_conversion"] > 0
    body = response.content.decode()
    assert "What reaching one customer costs" in body  # help text


def test_it_creates_a_plan_and_shows_the_profit_curve_and_best_depth(marketer_client, scoring):
    response = marketer_client.post(reverse("plan-create"), form_data(scoring), follow=True)

    plan = CampaignPlan.objects.get()
    body = response.content.decode()
    best = plan.result["best"]
    assert response.status_code == 200
    assert (
        f"Contact the top {best['depth_pct']:.0f}% ({best['contacts']:,} customers): "
        f"expected profit €{round(best['profit']):,}"
    ) in body
    for chart in ("profit-chart-data", "gains-chart-data"):
        assert f'data-plotly="{chart}"' in body and f'id="{chart}"' in body
    assert "vendor/plotly/plotly.min.js" in body
    assert body.count("<tr><td>") >= 6  # ROI rows at 5/10/20/30/50/100 %


def test_it_shows_field_errors_for_bad_economics(marketer_client, scoring):
    response = marketer_client.post(
        reverse("plan-create"), form_data(scoring, value_per_conversion="0", cost_per_contact="-3")
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "cost_per_contact" in errors and "value_per_conversion" in errors
    assert not CampaignPlan.objects.exists()


def test_it_shows_the_engine_rule_beside_the_field_with_the_other_form_errors(
    marketer_client, scoring
):
    response = marketer_client.post(
        reverse("plan-create"), form_data(scoring, name="", value_per_conversion="0", budget="-5")
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["name"] == ["This field is required."]
    assert errors["value_per_conversion"][0].startswith("Must be above 0: a conversion")
    assert errors["budget"] == ["Cannot be negative."]


def test_it_refuses_the_plan_form_to_viewers(viewer_client, scoring):
    assert viewer_client.get(reverse("plan-create")).status_code == 403
    assert viewer_client.post(reverse("plan-create"), form_data(scoring)).status_code == 403


def test_it_replans_with_new_economics_on_submit(marketer_client, plan):
    response = marketer_client.post(
        reverse("plan-replan", args=[plan.pk]),
        {
            "cost_per_contact": "1",
            "fixed_cost": "100",
            "value_per_conversion": "50",
            "budget": "130",
            "contacts": "",
        },
        follow=True,
    )

    plan.refresh_from_db()
    assert response.status_code == 200
    assert plan.economics["budget"] == 130 and plan.result["budget"]["max_contacts"] == 30
    assert "Budget €130" in response.content.decode()


def test_it_keeps_the_steward_from_replanning(steward_client, plan):
    url = reverse("plan-replan", args=[plan.pk])
    assert steward_client.post(url, {"cost_per_contact": "1"}).status_code == 403
    assert steward_client.get(reverse("plan-detail", args=[plan.pk])).status_code == 200


def test_it_shows_realised_figures_beside_the_forecast(marketer_client, plan, term_deposit):
    top = plan.scoring_run.scores.order_by("-score")[0].customer
    respond(top, term_deposit, "conversion", campaign="spring", value=75)

    response = marketer_client.post(
        reverse("plan-actuals", args=[plan.pk]), {"campaign": "spring"}, follow=True
    )

    body = response.content.decode()
    plan.refresh_from_db()
    assert plan.actual["actual"]["conversions"] == 1
    assert 'data-plotly="actual-chart-data"' in body and 'id="actual-table"' in body
    assert "€75" in body


def test_it_says_when_the_campaign_name_has_no_responses(marketer_client, plan):
    response = marketer_client.post(
        reverse("plan-actuals", args=[plan.pk]), {"campaign": "nothing"}
    )

    assert response.status_code == 400
    assert "No responses to “Term deposit”" in response.content.decode()


def test_it_shows_uplift_progress_then_the_insufficient_data_reason(
    marketer_client, plan, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("plan-uplift", args=[plan.pk]),
            {"treatment_attribute": "age", "treatment_value": "30"},
        )
    response = marketer_client.get(response.url)

    body = response.content.decode()
    plan.refresh_from_db()
    assert Job.objects.get(pk=plan.uplift["job"]).kind == Job.Kind.PLAN
    assert 'data-testid="uplift-insufficient"' in body
    assert "Too few treatment rows" in body

    Job.objects.filter(pk=plan.uplift["job"]).update(status=Job.Status.RUNNING, progress=40)
    running = marketer_client.get(reverse("plan-detail", args=[plan.pk])).content.decode()
    assert f'data-job-id="{plan.uplift["job"]}"' in running
    assert 'data-refresh="uplift-section"' in running


def test_it_sends_anonymous_visitors_to_the_login_page(client, plan):
    for url in (
        reverse("plan-list"),
        reverse("plan-detail", args=[plan.pk]),
        reverse("plan-create"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (
            url
        )
