import json
import math

import numpy as np
import pytest

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.roi import (
    CampaignEconomics,
    backtest,
    checked_binary,
    plan_campaign,
    profit_curve,
    realised_roi,
)
from tests.recengine.conftest import make_customers

# Four customers; ranked 0.5, 0.3, 0.2, 0.1 -> expected conversions 0.5, 0.8, 1.0, 1.1.
SCORES = [0.5, 0.1, 0.3, 0.2]
ECONOMICS = CampaignEconomics(cost_per_contact=10, value_per_conversion=100, fixed_cost=20)


def economics(**changes) -> CampaignEconomics:
    fields = {"cost_per_contact": 10, "value_per_conversion": 100, "fixed_cost": 20}
    return CampaignEconomics(**{**fields, **changes})


# ---- economics on hand-computable cases -----------------------------------------------------
def test_it_computes_conversions_revenue_cost_profit_and_roi_by_depth():
    curve = profit_curve(SCORES, ECONOMICS)
    assert curve.conversions == pytest.approx([0, 0.5, 0.8, 1.0, 1.1])
    assert curve.revenue == pytest.approx([0, 50, 80, 100, 110])
    assert curve.cost == pytest.approx([0, 30, 40, 50, 60])
    assert curve.profit == pytest.approx([0, 20, 40, 50, 50])
    assert curve.at(1)["roi"] == pytest.approx(20 / 30)
    assert curve.at(4)["roi"] == pytest.approx(50 / 60)
    assert curve.at(0)["roi"] is None


def test_it_gives_depth_as_count_and_share_in_the_plan_table():
    plan = plan_campaign(SCORES, ECONOMICS, table_depths_pct=(25, 50, 100))
    assert [row["contacts"] for row in plan["table"]] == [1, 2, 4]
    assert [row["depth_pct"] for row in plan["table"]] == [25.0, 50.0, 100.0]
    assert [row["profit"] for row in plan["table"]] == pytest.approx([20, 40, 50])


def test_it_picks_the_profit_maximising_depth_with_the_fewest_contacts_among_ties():
    best = plan_campaign(SCORES, ECONOMICS)["best"]
    # 3 and 4 contacts both earn 50; the fourth contact adds nothing but risk.
    assert (best["contacts"], best["profit"], best["worth_running"]) == (3, pytest.approx(50), True)


def test_it_stops_where_the_next_contact_costs_more_than_it_earns():
    # A contact pays when value * p > cost, i.e. p > 0.25 here: the top two customers.
    best = plan_campaign(SCORES, economics(cost_per_contact=25, fixed_cost=0))["best"]
    assert best["contacts"] == 2 and best["profit"] == pytest.approx(80 - 50)


def test_it_limits_the_depth_to_what_the_budget_pays_for():
    budget = plan_campaign(SCORES, economics(budget=45))["budget"]
    assert budget["max_contacts"] == 2  # (45 - 20 fixed) // 10 per contact
    assert budget["max_depth_pct"] == 50.0
    assert budget["best_within_budget"]["contacts"] == 2
    assert budget["best_within_budget"]["profit"] == pytest.approx(40)
    assert budget["at_max_contacts"]["cost"] == pytest.approx(40)


def test_it_keeps_the_best_depth_when_the_budget_allows_more():
    budget = plan_campaign(SCORES, economics(cost_per_contact=25, fixed_cost=0, budget=1000))
    assert budget["budget"]["max_contacts"] == 4
    assert budget["budget"]["best_within_budget"]["contacts"] == 2


def test_it_floors_affordable_contacts_without_floating_point_loss():
    assert economics(cost_per_contact=0.1, fixed_cost=0, budget=0.3).affordable_contacts(10) == 3


def test_it_explains_a_budget_that_cannot_cover_the_fixed_cost():
    budget = plan_campaign(SCORES, economics(budget=15))["budget"]
    assert budget["max_contacts"] == 0
    assert budget["best_within_budget"]["worth_running"] is False
    assert "fixed cost" in budget["reason"]


def test_it_uses_depth_times_base_rate_for_random_targeting():
    curve = profit_curve(SCORES, ECONOMICS)
    base = 1.1 / 4
    assert curve.base_rate == pytest.approx(base)
    assert curve.random_conversions == pytest.approx([0, base, 2 * base, 3 * base, 4 * base])
    # Random profit = 100 * 0.275 k - 10 k - 20 = 17.5 k - 20.
    assert curve.random_profit[1:] == pytest.approx([-2.5, 15, 32.5, 50])
    row = curve.at(2)
    assert row["profit_over_random"] == pytest.approx(40 - 15)
    assert row["lift"] == pytest.approx(0.8 / (2 * base))


def test_it_finds_the_best_random_depth_and_its_budget_limit():
    plan = plan_campaign(SCORES, economics(budget=45))
    assert plan["random"]["best"]["contacts"] == 4  # random profit grows with every contact
    assert plan["random"]["best"]["profit"] == pytest.approx(50)
    limited = plan["random"]["budget"]["best_within_budget"]
    assert (limited["contacts"], limited["profit"]) == (2, pytest.approx(15))


def test_it_takes_a_given_base_rate_for_the_random_reference():
    curve = profit_curve(SCORES, ECONOMICS, base_rate=0.1)
    assert curve.random_conversions[4] == pytest.approx(0.4)


def test_it_says_a_campaign_is_not_worth_running_when_no_depth_makes_a_profit():
    best = plan_campaign([0.01, 0.02], economics(cost_per_contact=50))["best"]
    assert best["worth_running"] is False and best["profit"] < 0


def test_it_returns_a_json_ready_plan_with_chart_arrays():
    scores = np.random.default_rng(0).beta(1, 8, 1000)
    plan = json.loads(json.dumps(plan_campaign(scores, economics(budget=2000))))
    curve = plan["curve"]
    for key in (
        "depth_pct",
        "contacts",
        "expected_conversions",
        "revenue",
        "cost",
        "profit",
        "roi",
        "random_profit",
    ):
        assert len(curve[key]) == 100, key
    assert curve["depth_pct"][:3] == [1.0, 2.0, 3.0] and curve["contacts"][-1] == 1000
    assert [row["depth_pct"] for row in plan["table"]] == [5, 10, 20, 30, 50, 100]
    assert plan["customers"] == 1000 and "calibrated" in plan["note"]
    best = plan["best"]
    assert all(best["profit"] >= p - 1e-9 for p in curve["profit"])


def test_it_plans_on_uplift_scores_including_negative_ones():
    plan = plan_campaign([0.3, -0.2, 0.1], economics(fixed_cost=0), kind="uplift")
    assert plan["best"]["contacts"] == 1
    assert plan["table"][-1]["expected_conversions"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="Row 1, column 'score'"):
        plan_campaign([0.3, -0.2, 0.1], economics())


# ---- input validation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cost_per_contact": -1}, "cost_per_contact cannot be negative"),
        ({"fixed_cost": -5}, "fixed_cost cannot be negative"),
        ({"budget": -100}, "budget cannot be negative"),
        ({"value_per_conversion": 0}, "value_per_conversion must be above 0"),
        ({"value_per_conversion": -3}, "value_per_conversion cannot be negative"),
        ({"cost_per_contact": math.nan}, "cost_per_contact must be a finite number"),
        ({"budget": math.inf}, "budget must be a finite number"),
        ({"fixed_cost": "500"}, "fixed_cost must be a number"),
        ({"cost_per_contact": True}, "cost_per_contact must be a number"),
    ],
)
def test_it_rejects_invalid_economics(changes, message):
    with pytest.raises(ValueError, match=message):
        economics(**changes)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([0.2, 1.3], "Row 1, column 'score': 1.3 is not a probability"),
        ([0.2, -0.1, 0.5], "Row 1, column 'score'"),
        ([0.2, 0.4, math.nan], "Row 2, column 'score'"),
        ([0.2, "high"], "Row 1, column 'score': 'high' is not a number"),
        ([], "No customers"),
        ([[0.1, 0.2]], "one value per row"),
    ],
)
def test_it_rejects_scores_that_are_not_probabilities_naming_the_row(scores, message):
    with pytest.raises(ValueError, match=message):
        plan_campaign(scores, ECONOMICS)


def test_it_rejects_a_depth_outside_the_customers():
    with pytest.raises(ValueError, match="between 0 and 4"):
        profit_curve(SCORES, ECONOMICS).at(5)


def test_it_reads_yes_no_outcomes_and_names_a_bad_row():
    assert checked_binary(["yes", "No", 1, 0.0, True], "converted").tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="Row 2, column 'converted': 'maybe'"):
        checked_binary(["yes", "no", "maybe"], "converted")
    with pytest.raises(ValueError, match="Row 1, column 'converted': 2"):
        checked_binary(np.array([1, 2]), "converted")


# ---- after the campaign ---------------------------------------------------------------------
def test_it_puts_realised_results_beside_the_forecast():
    result = realised_roi([0.5, 0.5, 0.2, 0.2], [1, 0, 1, 0], economics(fixed_cost=0), n_bins=2)
    forecast, actual = result["forecast"], result["actual"]
    assert forecast["conversions"] == pytest.approx(1.4)
    assert (forecast["revenue"], forecast["cost"]) == (pytest.approx(140), pytest.approx(40))
    assert (forecast["profit"], forecast["roi"]) == (pytest.approx(100), pytest.approx(2.5))
    assert (actual["conversions"], actual["revenue"], actual["profit"]) == (2, 200, 160)
    assert actual["roi"] == pytest.approx(4.0)
    assert result["difference"]["profit"] == pytest.approx(60)
    assert [(d["forecast_rate"], d["actual_rate"]) for d in result["deciles"]] == [
        (pytest.approx(0.5), 0.5),
        (pytest.approx(0.2), 0.5),
    ]


def test_it_uses_the_actual_value_of_each_conversion_when_given():
    result = realised_roi(
        [0.5, 0.5, 0.2], [1, 0, 1], economics(fixed_cost=0), values=[250.0, None, 30.0]
    )
    assert result["actual"]["revenue"] == pytest.approx(280)
    assert result["forecast"]["revenue"] == pytest.approx(120)


def test_it_rejects_a_value_on_a_customer_who_did_not_convert():
    with pytest.raises(ValueError, match="Row 1, column 'value'"):
        realised_roi([0.5, 0.5], [1, 0], ECONOMICS, values=[10.0, 20.0])


def test_it_rejects_outcomes_that_do_not_match_the_forecast_rows():
    with pytest.raises(ValueError, match="'forecast' has 3 rows but 'converted' has 2"):
        realised_roi([0.5, 0.5, 0.1], [1, 0], ECONOMICS)


def test_it_flags_a_forecast_the_actual_responses_contradict():
    rng = np.random.default_rng(0)
    p = np.full(400, 0.3)
    honest = realised_roi(p, (rng.random(400) < 0.3).astype(int), ECONOMICS)
    optimistic = realised_roi(p, (rng.random(400) < 0.1).astype(int), ECONOMICS)
    assert honest["within_expected_range"] is True
    assert optimistic["within_expected_range"] is False
    assert optimistic["difference"]["profit"] < 0


# ---- measured against real outcomes ---------------------------------------------------------
def test_it_backtests_the_profit_curve_on_actual_outcomes():
    result = backtest([0.9, 0.1, 0.8, 0.2], [1, 0, 0, 1], economics(fixed_cost=0))
    contacts = result["contacts"]
    # Top 2 by score: 0.9 (converted) and 0.8 (not) -> 1 actual conversion; random 2 * 0.5.
    at_two = contacts.index(2)
    assert result["actual_conversions"][at_two] == 1
    assert result["actual_profit"][at_two] == pytest.approx(100 - 20)
    assert result["random_profit"][at_two] == pytest.approx(100 - 20)


def test_it_beats_random_at_every_depth_from_5_to_50_pct_with_scores_that_carry_signal():
    frame, y = make_customers(n=4000, seed=3)
    model = TabularBaseline(BaselineConfig(n_estimators=100, threads=1)).fit(
        frame.iloc[:3000], y[:3000]
    )
    p = model.predict_proba(frame.iloc[3000:])
    money = CampaignEconomics(cost_per_contact=5, value_per_conversion=80, fixed_cost=500)

    def margins(scores):
        result = backtest(scores, y[3000:], money)
        return [result["profit_over_random"][pct - 1] for pct in range(5, 51)]

    assert min(margins(p)) > 0
    # The same check fails for the reversed ranking, so it is not true by construction.
    assert min(margins(1 - p)) < 0
