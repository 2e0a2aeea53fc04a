import math

import numpy as np
import pytest

from recengine.metrics import click_metrics, compare_aucs, lift_and_gains


def test_it_computes_ranking_and_probability_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = click_metrics(y, p, n_bins=2)
    assert m.roc_auc == pytest.approx(0.75)  # 3 of 4 (click, non-click) pairs ranked right
    assert m.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    expected_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert m.log_loss == pytest.approx(expected_loss)
    assert m.brier == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m.base_rate == 0.5


def test_it_computes_lift_and_gains_in_the_top_shares():
    y = np.array([1] * 2 + [0] * 18)
    p = np.linspace(1, 0, 20)  # both clicks ranked first
    lift, gains = lift_and_gains(y, p, shares=(0.05, 0.10, 0.20))
    assert lift == {"5%": 10.0, "10%": 10.0, "20%": 5.0}
    assert gains == {"5%": 0.5, "10%": 1.0, "20%": 1.0}


def test_the_auc_standard_error_shrinks_with_more_rows_and_matches_resampling():
    from sklearn.metrics import roc_auc_score

    from recengine.metrics import auc_standard_error

    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(300):
        y = rng.random(600) < 0.2
        score = rng.normal(size=600) + 1.2 * y
        aucs.append(roc_auc_score(y, score))
    measured = float(np.std(aucs))
    predicted = auc_standard_error(float(np.mean(aucs)), 120, 480)
    assert abs(predicted - measured) / measured < 0.25
    assert auc_standard_error(0.8, 1200, 4800) < predicted


def test_comparing_two_models_on_the_same_rows_tells_a_better_one_from_a_tie():
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=2000) < 0.3).astype(int)
    noise = rng.uniform(size=2000)
    weak, strong = 0.2 * y + noise, 0.8 * y + noise

    better = compare_aucs(y, weak, strong)
    same = compare_aucs(y, weak, weak + 1e-9 * rng.uniform(size=2000))
    worse = compare_aucs(y, strong, weak)

    assert better.auc_b > better.auc_a and better.low > 0 and better.verdict == "better"
    assert better.low <= better.difference <= better.high
    assert same.verdict == "tie" and same.low <= 0 <= same.high
    assert worse.verdict == "worse" and worse.as_dict()["verdict"] == "worse"
    with pytest.raises(ValueError, match="both classes"):
        compare_aucs(np.ones(10), weak[:10], strong[:10])
