import json

import numpy as np
import pytest

from recengine.control import (
    assign_control,
    incremental_lift,
    minimum_detectable_lift,
    newcombe_interval,
    wilson_interval,
)

Z95 = 1.959964


def customers(n: int) -> list[str]:
    return [f"C{i:06d}" for i in range(n)]


# ---- assign_control -------------------------------------------------------------------------
def test_it_holds_back_the_share_exactly_within_each_score_decile():
    keys = customers(1000)
    scores = np.random.default_rng(0).random(1000)
    control = assign_control(keys, scores, share=0.1, seed=7)
    deciles = np.argsort(np.argsort(scores)) // 100
    for decile in range(10):
        assert control[deciles == decile].sum() == 10
    assert control.sum() == 100


def test_it_keeps_deciles_within_one_of_the_share_and_the_total_exact_when_uneven():
    keys = customers(1234)
    scores = np.random.default_rng(1).random(1234)
    control = assign_control(keys, scores, share=0.15, seed=7)
    assert control.sum() == round(0.15 * 1234)
    order = np.argsort(scores)
    for decile in np.array_split(order, 10):
        assert abs(control[decile].sum() - 0.15 * len(decile)) <= 1


def test_it_holds_back_about_the_share_without_scores():
    control = assign_control(customers(20_000), None, share=0.2, seed=1)
    assert control.mean() == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize("stratified", [False, True])
def test_it_gives_the_same_groups_on_shuffled_input_and_a_rerun(stratified):
    keys = customers(500)
    scores = np.random.default_rng(2).random(500).round(1) if stratified else None  # ties
    first = assign_control(keys, scores, share=0.2, seed=3)
    assert (assign_control(keys, scores, share=0.2, seed=3) == first).all()
    shuffle = np.random.default_rng(4).permutation(500)
    shuffled = assign_control(
        [keys[i] for i in shuffle], None if scores is None else scores[shuffle], 0.2, 3
    )
    assert (shuffled == first[shuffle]).all()


def test_it_gives_other_groups_for_another_seed():
    keys = customers(500)
    assert (assign_control(keys, None, 0.2, seed=1) != assign_control(keys, None, 0.2, 2)).any()


def test_it_keeps_earlier_customers_groups_when_the_audience_grows():
    before = assign_control(customers(1000), None, share=0.1, seed=5)
    after = assign_control(customers(3000), None, share=0.1, seed=5)
    assert (after[:1000] == before).all()


@pytest.mark.parametrize("share", [0, -0.1, 0.51, 1.0, float("nan")])
def test_it_refuses_a_share_outside_zero_to_a_half(share):
    with pytest.raises(ValueError, match="share must be above 0 and at most 0.5"):
        assign_control(customers(10), None, share=share, seed=0)


def test_it_refuses_repeated_keys():
    with pytest.raises(ValueError, match="unique"):
        assign_control(["a", "b", "a"], None, share=0.1, seed=0)


# ---- incremental_lift -----------------------------------------------------------------------
def test_it_matches_hand_computed_wilson_and_newcombe_intervals():
    # Newcombe (1998), example (a): 56/70 vs 48/80, z = 1.96 (z^2 = 3.8415).
    # Wilson 56/70: p = 0.8, d = 1 + 3.8415/70 = 1.054878,
    #   centre = (0.8 + 3.8415/140) / d = 0.827439 / 1.054878 = 0.784393,
    #   half = 1.96 sqrt(0.16/70 + 3.8415/19600) / d = 1.96 * 0.049817 / d = 0.092561
    #   -> 0.69183 to 0.87695.
    # Wilson 48/80: p = 0.6, d = 1.048019, centre = 0.624009 / d = 0.595418,
    #   half = 1.96 sqrt(0.24/80 + 3.8415/25600) / d = 1.96 * 0.056126 / d = 0.104967
    #   -> 0.49045 to 0.70038.
    # Newcombe: 0.2 - sqrt((0.8 - 0.69183)^2 + (0.70038 - 0.6)^2) = 0.2 - 0.147567 = 0.05243
    #           0.2 + sqrt((0.87695 - 0.8)^2 + (0.6 - 0.49045)^2) = 0.2 + 0.133875 = 0.33388
    # (the paper's table gives 0.0524 to 0.3339).
    assert wilson_interval(56, 70, z=Z95) == pytest.approx((0.69183, 0.87695), abs=1e-5)
    assert wilson_interval(48, 80, z=Z95) == pytest.approx((0.49045, 0.70038), abs=1e-5)
    assert newcombe_interval(56, 70, 48, 80, z=Z95) == pytest.approx((0.05243, 0.33388), abs=1e-5)
    lift = incremental_lift(70, 56, 80, 48)
    assert lift.lift == pytest.approx(0.2)
    assert lift.lift_interval == pytest.approx((0.05243, 0.33388), abs=1e-5)
    assert lift.relative_lift == pytest.approx(0.2 / 0.6)
    assert lift.conclusive


def test_it_covers_a_known_lift_at_about_the_stated_rate():
    # Base rate 5 %, contacted 8 %: the true lift is 3 points. 2,000 simulated campaigns
    # (rather than 200) keep the coverage's own noise near half a point.
    rng = np.random.default_rng(2024)
    runs, treated_n, control_n = 2000, 20_000, 5_000
    treated = rng.binomial(treated_n, 0.08, runs)
    control = rng.binomial(control_n, 0.05, runs)
    lifts = [
        incremental_lift(treated_n, int(t), control_n, int(c))
        for t, c in zip(treated, control, strict=True)
    ]
    covered = np.mean([low <= 0.03 <= high for low, high in (x.lift_interval for x in lifts)])
    assert 0.93 <= covered <= 0.97
    assert np.mean([x.lift for x in lifts]) == pytest.approx(0.03, abs=0.002)
    assert np.mean([x.conclusive for x in lifts]) > 0.99


def test_it_turns_the_lift_into_incremental_conversions_profit_and_roi():
    lift = incremental_lift(
        20_000, 1600, 5000, 250, value_per_conversion=50.0, cost_per_contact=1.0
    )
    low, high = lift.lift_interval
    assert lift.incremental_conversions == pytest.approx(600)
    assert lift.incremental_conversions_interval == pytest.approx((low * 20_000, high * 20_000))
    assert lift.incremental_revenue == pytest.approx(30_000)
    assert lift.incremental_profit == pytest.approx(30_000 - 20_000)
    assert lift.incremental_profit_interval == pytest.approx(
        (50 * low * 20_000 - 20_000, 50 * high * 20_000 - 20_000)
    )
    assert lift.roi == pytest.approx(0.5)
    assert lift.roi_interval[0] < 0.5 < lift.roi_interval[1]
    json.dumps(lift.as_dict())


def test_it_leaves_money_out_without_value_or_cost():
    lift = incremental_lift(20_000, 1600, 5000, 250, value_per_conversion=50.0)
    assert lift.incremental_revenue == pytest.approx(30_000)
    assert lift.incremental_profit is None and lift.roi is None


def test_it_says_too_small_to_tell_for_tiny_groups():
    lift = incremental_lift(20, 15, 20, 1)
    assert not lift.conclusive
    assert lift.reason.startswith("Too small to tell")
    assert "20 members (at least 30 needed)" in lift.reason


def test_it_says_too_small_to_tell_for_too_few_conversions():
    lift = incremental_lift(1000, 40, 1000, 4, min_conversions=5)
    assert not lift.conclusive
    assert "4 conversions (at least 5 needed)" in lift.reason


def test_it_says_too_small_to_tell_when_the_interval_holds_zero():
    lift = incremental_lift(1000, 52, 1000, 48)
    assert lift.lift_interval[0] < 0 < lift.lift_interval[1]
    assert not lift.conclusive
    assert "includes no effect" in lift.reason


def test_it_refuses_impossible_counts():
    with pytest.raises(ValueError, match="control group is empty"):
        incremental_lift(100, 5, 0, 0)
    with pytest.raises(ValueError, match="treated_conversions"):
        incremental_lift(100, 101, 100, 5)


# ---- minimum_detectable_lift ----------------------------------------------------------------
def test_it_gives_the_minimum_detectable_lift():
    # (1.959964 + 0.841621) * sqrt(0.05 * 0.95 * (1/5000 + 1/20000)) = 2.801585 * 0.003446
    mde = minimum_detectable_lift(5000, 20_000, 0.05)
    assert mde == pytest.approx(0.0096543, abs=1e-6)
    assert minimum_detectable_lift(20_000, 80_000, 0.05) == pytest.approx(mde / 2)
