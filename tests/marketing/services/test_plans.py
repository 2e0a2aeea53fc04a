import numpy as np
import pytest

from marketing.models import AuditEvent, CampaignPlan, Job, Purpose
from marketing.services.plans import (
    PlanError,
    campaign_plan_actuals,
    campaign_plan_create,
    campaign_plan_update,
    campaign_plan_uplift,
)
from recengine.roi import CampaignEconomics, plan_campaign, realised_roi
from tests.factories import make_offer
from tests.marketing.plan_helpers import (
    ECONOMICS,
    respond,
    scored_customers,
    treatment_control_customers,
)
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db


def engine_plan(scores, economics=ECONOMICS):
    return plan_campaign(scores, CampaignEconomics(**economics))


def test_it_plans_the_numbers_recengine_gives_for_the_stored_scores(term_deposit, marketer):
    scoring, _ = scored_customers(40, term_deposit)

    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )

    stored = list(scoring.scores.values_list("score", flat=True))
    expected = engine_plan(stored)
    plan.refresh_from_db()
    assert plan.offer == term_deposit
    assert plan.result["best"] == pytest.approx(expected["best"])
    assert plan.result["curve"]["profit"] == pytest.approx(expected["curve"]["profit"])
    for ours, theirs in zip(plan.result["table"], expected["table"], strict=True):
        assert ours == pytest.approx(theirs)
    assert plan.result["chosen"]["contacts"] == expected["best"]["contacts"]
    assert plan.result["consent"] == {**plan.result["consent"], "used": 40, "left_out": 0}


def test_it_leaves_out_customers_whose_profiling_consent_was_withdrawn(term_deposit, marketer):
    scoring, customers = scored_customers(12, term_deposit)
    add_consent(customers[-3:], Purpose.PROFILING, status="withdrawn", days_ago=1)

    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )

    kept = list(scoring.scores.exclude(customer__in=customers[-3:]).values_list("score", flat=True))
    assert plan.result["customers"] == 9
    assert plan.result["consent"]["left_out"] == 3
    assert plan.result["best"] == pytest.approx(engine_plan(kept)["best"])


def test_it_names_each_bad_economics_field(term_deposit, marketer):
    scoring, _ = scored_customers(5, term_deposit)

    with pytest.raises(PlanError) as caught:
        campaign_plan_create(
            scoring_run=scoring,
            name=" ",
            by=marketer,
            economics={"cost_per_contact": -1, "value_per_conversion": 0, "fixed_cost": "lots"},
        )

    errors = caught.value.errors
    assert set(errors) == {"name", "cost_per_contact", "value_per_conversion", "fixed_cost"}
    assert "negative" in errors["cost_per_contact"]
    assert "'lots' is not a number" in errors["fixed_cost"]
    assert not CampaignPlan.objects.exists()


def test_it_asks_for_the_offer_of_a_multi_offer_run_and_plans_its_scores(marketer):
    first, second = make_offer("A", title="Loan"), make_offer("B", title="Card")
    scoring, customers = scored_customers(10, first)
    scoring.training_run.offer = None
    scoring.training_run.save()
    scoring.scores.bulk_create(
        [
            scoring.scores.model(scoring_run=scoring, customer=c, offer=second, score=0.05)
            for c in customers
        ]
    )

    with pytest.raises(PlanError) as caught:
        campaign_plan_create(scoring_run=scoring, name="Card", economics=ECONOMICS, by=marketer)
    assert "choose the offer" in caught.value.errors["offer"]

    plan = campaign_plan_create(
        scoring_run=scoring, name="Card", economics=ECONOMICS, offer=second, by=marketer
    )
    assert plan.result["customers"] == 10
    assert plan.result["base_rate"] == pytest.approx(0.05)


def test_it_refuses_an_unfinished_scoring_run(term_deposit, marketer):
    scoring, _ = scored_customers(5, term_deposit)
    Job.objects.filter(pk=scoring.job_id).update(status=Job.Status.RUNNING)
    scoring.job.refresh_from_db()

    with pytest.raises(PlanError) as caught:
        campaign_plan_create(scoring_run=scoring, name="x", economics=ECONOMICS, by=marketer)

    assert "finished scoring run" in caught.value.errors["scoring_run"]


def test_it_logs_the_plan_as_profiling_in_the_audit_trail(term_deposit, marketer):
    scoring, _ = scored_customers(5, term_deposit)

    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )

    event = AuditEvent.objects.get(target_type="campaign_plan")
    assert event.actor == marketer and event.target_ref == str(plan.pk)
    assert event.details["change"] == "create" and event.details["purpose"] == "profiling"


def test_it_replans_with_new_economics_and_the_chosen_contacts(term_deposit, marketer):
    scoring, _ = scored_customers(20, term_deposit)
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )
    cheaper = {**ECONOMICS, "cost_per_contact": 0.5, "budget": 110}

    plan = campaign_plan_update(plan=plan, economics=cheaper, contacts=7, by=marketer)

    expected = engine_plan(list(scoring.scores.values_list("score", flat=True)), cheaper)
    assert plan.economics["cost_per_contact"] == 0.5
    assert plan.result["budget"]["max_contacts"] == 20  # (110 - 100) / 0.5
    assert plan.result["best"] == pytest.approx(expected["best"])
    assert plan.result["chosen"]["contacts"] == 7
    assert plan.result["chosen"]["set_by"] == "marketer"
    with pytest.raises(PlanError) as caught:
        campaign_plan_update(plan=plan, contacts=21, by=marketer)
    assert "Only 20 customers" in caught.value.errors["contacts"]


def test_it_targets_the_best_depth_the_budget_pays_for_unless_told(term_deposit, marketer):
    scoring, _ = scored_customers(20, term_deposit)
    # Every contact earns more than it costs, so the best depth is everyone; the budget
    # pays for (120 - 100) / 2 = 10 contacts.
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", by=marketer, economics={**ECONOMICS, "budget": 120}
    )

    assert plan.result["best"]["contacts"] == 20
    assert plan.result["chosen"]["contacts"] == 10
    assert plan.result["chosen"]["set_by"] == "budget"
    assert plan.result["chosen"]["cost"] == pytest.approx(120)


def test_it_measures_the_targeted_customers_actual_responses(term_deposit, marketer):
    scoring, customers = scored_customers(10, term_deposit)  # scores 0.09, 0.18, ... 0.9
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, contacts=4, by=marketer
    )
    top = customers[::-1]  # best first
    respond(top[0], term_deposit, "conversion", campaign="spring-24", value=120)
    respond(top[1], term_deposit, "impression", campaign="spring-24")
    respond(top[2], term_deposit, "conversion", campaign="spring-24")
    respond(top[3], term_deposit, "conversion", campaign="another one", value=999)
    respond(top[7], term_deposit, "conversion", campaign="spring-24", value=80)

    plan = campaign_plan_actuals(plan=plan, campaign="spring-24", by=marketer)

    actual = plan.actual
    assert actual["contacts"] == 4
    assert actual["actual"]["conversions"] == 2
    assert actual["actual"]["revenue"] == pytest.approx(120 + 50)  # value given, else 50
    assert actual["actual"]["cost"] == pytest.approx(100 + 4 * 2)
    assert actual["actual"]["profit"] == pytest.approx(170 - 108)
    assert actual["forecast"]["conversions"] == pytest.approx(0.9 + 0.81 + 0.72 + 0.63)
    assert actual["responders_outside_plan"] == 1
    assert actual["conversions_without_value"] == 1
    assert (
        actual["deciles"]
        == realised_roi(
            [0.9, 0.81, 0.72, 0.63],
            [1, 0, 1, 0],
            CampaignEconomics(**ECONOMICS),
            values=[120, 0, 50, 0],
        )["deciles"]
    )
    assert plan.campaign == "spring-24"


def test_it_leaves_out_targeted_customers_who_withdrew_consent_after_planning(
    term_deposit, marketer
):
    scoring, customers = scored_customers(10, term_deposit)
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, contacts=4, by=marketer
    )
    top = customers[::-1]
    add_consent(top[:1], Purpose.PROFILING, status="withdrawn", days_ago=0)
    for customer in top[:2]:
        respond(customer, term_deposit, "conversion", campaign="spring-24")

    actual = campaign_plan_actuals(plan=plan, campaign="spring-24", by=marketer).actual

    # The fifth-best customer does not move up: the targeted set is the one planned.
    assert actual["contacts"] == 3 and actual["left_out"] == 1
    assert actual["actual"]["conversions"] == 1
    assert actual["forecast"]["conversions"] == pytest.approx(0.81 + 0.72 + 0.63)


def test_it_says_when_no_responses_are_recorded_under_the_campaign(term_deposit, marketer):
    scoring, customers = scored_customers(5, term_deposit)
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )
    respond(customers[0], term_deposit, "conversion", campaign="spring-24")

    with pytest.raises(PlanError) as caught:
        campaign_plan_actuals(plan=plan, campaign="sprnig-24", by=marketer)

    assert "No responses to “Term deposit”" in caught.value.errors["campaign"]
    assert "sprnig-24" in caught.value.errors["campaign"]


def test_it_reports_why_uplift_cannot_be_estimated(
    term_deposit, marketer, django_capture_on_commit_callbacks
):
    scoring, customers = scored_customers(30, term_deposit, called="yes")
    respond(customers[0], term_deposit, "conversion")
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring", economics=ECONOMICS, by=marketer
    )

    with django_capture_on_commit_callbacks(execute=True):
        job = campaign_plan_uplift(
            plan=plan, treatment_attribute="called", treatment_value="yes", by=marketer
        )

    job.refresh_from_db()
    plan.refresh_from_db()
    assert job.kind == Job.Kind.PLAN and job.status == Job.Status.SUCCEEDED
    assert plan.uplift["status"] == "insufficient_data"
    assert any("No control group" in reason for reason in plan.uplift["reasons"])
    assert plan.uplift["readiness"]["treated_rows"] == 30


def test_it_estimates_uplift_from_treatment_and_control_customers(
    term_deposit, marketer, django_capture_on_commit_callbacks
):
    customers = treatment_control_customers(1600, term_deposit)
    scoring = finished_scoring(finished_run(term_deposit), customers)
    plan = campaign_plan_create(scoring_run=scoring, name="Calls", economics=ECONOMICS, by=marketer)

    with django_capture_on_commit_callbacks(execute=True):
        job = campaign_plan_uplift(
            plan=plan, treatment_attribute="called", treatment_value="Yes", by=marketer
        )

    job.refresh_from_db()
    plan.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    uplift = plan.uplift
    assert uplift["status"] == "ok" and "called" not in uplift["columns"]
    evaluation = uplift["evaluation"]
    assert evaluation["customers"] == 1600
    assert evaluation["qini_coefficient"] > 0
    deciles = evaluation["deciles"]
    # Young customers (called: 0.55 vs 0.08) fill the top deciles; the rest show no uplift.
    top = np.mean([d["observed_uplift"] for d in deciles[:3]])
    bottom = np.mean([d["observed_uplift"] for d in deciles[-3:]])
    assert top > 0.3 and bottom < 0.1
    assert uplift["plan"]["best"]["contacts"] > 0
