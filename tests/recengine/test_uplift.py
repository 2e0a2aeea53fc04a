import numpy as np
import pandas as pd
import pytest

from recengine.roi import CampaignEconomics, plan_campaign
from recengine.uplift import (
    CrossFitConfig,
    InsufficientData,
    UpliftConfig,
    UpliftModel,
    cross_fitted_uplift,
    stratified_folds,
    uplift_evaluation,
    uplift_learner,
    uplift_readiness,
)

FEATURES = ["region", "x", "age"]
QUICK = UpliftConfig(learner=uplift_learner(threads=1, n_estimators=50))


def make_uplift_customers(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Randomised campaign with known segments: persuadables (north, x > 0) convert only when
    contacted, sleeping dogs (east, x > 0) only when left alone, sure things (south) either way."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], n),
            "x": rng.normal(0, 1, n).round(3),
            "age": rng.integers(18, 80, n),
        }
    )
    segment = np.select(
        [
            (frame["region"] == "north") & (frame["x"] > 0),
            frame["region"] == "south",
            (frame["region"] == "east") & (frame["x"] > 0),
        ],
        ["persuadable", "sure_thing", "sleeping_dog"],
        "lost_cause",
    )
    frame["segment"] = segment
    treated = (rng.random(n) < 0.5).astype(int)
    p_treated = pd.Series(segment).map(
        {"persuadable": 0.5, "sure_thing": 0.5, "sleeping_dog": 0.05, "lost_cause": 0.05}
    )
    p_control = pd.Series(segment).map(
        {"persuadable": 0.05, "sure_thing": 0.5, "sleeping_dog": 0.3, "lost_cause": 0.05}
    )
    p = np.where(treated == 1, p_treated, p_control)
    converted = (rng.random(n) < p).astype(int)
    return frame, treated, converted


@pytest.fixture(scope="module")
def uplift_fit():
    frame, treated, converted = make_uplift_customers(8000)
    train, test = slice(0, 6000), slice(6000, None)
    features = frame[["region", "x", "age"]]
    model = UpliftModel(UpliftConfig(learner=uplift_learner(threads=1))).fit(
        features.iloc[train], treated[train], converted[train]
    )
    uplift = model.predict_uplift(features.iloc[test])
    return model, uplift, frame.iloc[test], treated[test], converted[test]


def test_it_ranks_persuadables_on_top_and_sleeping_dogs_at_the_bottom(uplift_fit):
    _, uplift, frame, _, _ = uplift_fit
    segment = frame["segment"].to_numpy()
    order = np.argsort(-uplift)
    share = (segment == "persuadable").mean()
    top = segment[order[: int(len(order) * share)]]
    bottom = segment[order[-int(len(order) * (segment == "sleeping_dog").mean()) :]]
    assert (top == "persuadable").mean() > 0.7
    assert (bottom == "sleeping_dog").mean() > 0.6
    # Sure things convert either way: high response, no uplift.
    assert abs(uplift[segment == "sure_thing"].mean()) < 0.08


def test_it_shows_uplift_above_random_on_the_qini_curve(uplift_fit):
    _, uplift, _, treated, converted = uplift_fit
    result = uplift_evaluation(uplift, treated, converted)
    assert len(result["qini"]) == 100 and result["qini_coefficient"] > 0.01
    first, last = result["deciles"][0], result["deciles"][-1]
    assert first["observed_uplift"] > 0.25 and last["observed_uplift"] < 0
    shuffled = np.random.default_rng(0).permutation(uplift)
    assert uplift_evaluation(shuffled, treated, converted)["qini_coefficient"] < (
        result["qini_coefficient"] / 3
    )


def test_it_plans_a_campaign_on_uplift_and_contacts_the_persuadables(uplift_fit):
    _, uplift, frame, _, _ = uplift_fit
    # A contact pays when its uplift is above 15 / 100; only persuadables (0.45) clear that.
    plan = plan_campaign(
        uplift, CampaignEconomics(cost_per_contact=15, value_per_conversion=100), kind="uplift"
    )
    best = plan["best"]["contacts"]
    chosen = frame["segment"].to_numpy()[np.argsort(-uplift)[:best]]
    assert plan["best"]["worth_running"] is True
    assert (chosen == "persuadable").mean() > 0.6 and "sleeping_dog" not in set(chosen[:50])


def test_it_refuses_uplift_without_a_control_group():
    frame, _, converted = make_uplift_customers(1000)
    with pytest.raises(InsufficientData, match="No control group") as error:
        UpliftModel().fit(frame[["region", "x"]], np.ones(1000, dtype=int), converted)
    assert error.value.readiness.as_dict()["status"] == "insufficient_data"


def test_it_refuses_uplift_with_too_few_rows_or_conversions_per_group():
    frame, treated, converted = make_uplift_customers(300)
    readiness = uplift_readiness(treated, converted)
    assert not readiness.ok
    assert any(r.startswith("Too few control rows") for r in readiness.reasons)
    assert any(r.startswith("Too few treatment rows") for r in readiness.reasons)
    few_wins = uplift_readiness(
        treated, np.zeros(300, dtype=int), UpliftConfig(min_rows_per_group=10)
    )
    assert "Too few conversions in the control group: 0 (at least 20 needed)." in few_wins.reasons


def test_it_takes_treatment_and_outcome_as_column_names():
    frame, treated, converted = make_uplift_customers(3000, seed=1)
    table = frame[["region", "x", "age"]].assign(
        contacted=np.where(treated, "yes", "no"), bought=converted
    )
    model = UpliftModel(UpliftConfig(learner=uplift_learner(threads=1, n_estimators=50))).fit(
        table, "contacted", "bought"
    )
    assert model.columns_ == ["region", "x", "age"]
    assert model.readiness_.treated_rows == int(treated.sum())
    assert model.predict_uplift(table.iloc[:5]).shape == (5,)


def test_it_refuses_to_evaluate_uplift_without_both_groups():
    with pytest.raises(InsufficientData, match="No treatment group"):
        uplift_evaluation([0.1, 0.2], [0, 0], [1, 0])


# ---- cross-fitting --------------------------------------------------------------------------
def test_it_gives_every_row_the_uplift_of_the_models_fitted_on_the_other_folds():
    frame, treated, converted = make_uplift_customers(3000, seed=2)
    features = frame[FEATURES]
    fitted = cross_fitted_uplift(features, treated, converted, CrossFitConfig(model=QUICK))
    for k in range(2):
        held_out = fitted.fold == k
        model = UpliftModel(QUICK).fit(
            features[~held_out].reset_index(drop=True), treated[~held_out], converted[~held_out]
        )
        np.testing.assert_array_equal(
            fitted.uplift[held_out], model.predict_uplift(features[held_out].reset_index(drop=True))
        )


def test_it_finds_the_planted_uplift_on_held_out_rows():
    frame, treated, converted = make_uplift_customers(6000, seed=3)
    fitted = cross_fitted_uplift(
        frame[FEATURES],
        treated,
        converted,
        CrossFitConfig(model=UpliftConfig(learner=uplift_learner(threads=1))),
    )
    segment = frame["segment"].to_numpy()
    # Planted: persuadables +0.45, sure things and lost causes 0, sleeping dogs -0.25.
    assert fitted.uplift[segment == "persuadable"].mean() == pytest.approx(0.45, abs=0.1)
    assert fitted.uplift[segment == "sure_thing"].mean() == pytest.approx(0.0, abs=0.08)
    assert fitted.uplift[segment == "sleeping_dog"].mean() == pytest.approx(-0.25, abs=0.1)
    assert uplift_evaluation(fitted.uplift, treated, converted)["qini_coefficient"] > 0.01


def test_it_deals_folds_evenly_within_each_group_and_outcome():
    rng = np.random.default_rng(0)
    treated, converted = rng.integers(0, 2, 1001), rng.integers(0, 2, 1001)
    fold = stratified_folds(treated, converted, folds=3, seed=0)
    for cell in range(4):
        counts = np.bincount(fold[treated * 2 + converted == cell], minlength=3)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(fold, stratified_folds(treated, converted, folds=3, seed=0))


def test_it_asks_for_enough_rows_that_every_fold_can_learn():
    frame, treated, converted = make_uplift_customers(500)  # ~250 a group: 200 but not 300
    config = CrossFitConfig(folds=3, model=QUICK)
    with pytest.raises(InsufficientData, match=r"at least 300 needed") as error:
        cross_fitted_uplift(frame[FEATURES], treated, converted, config)
    assert error.value.readiness.treated_rows == int(treated.sum())


def test_it_reports_each_fold_before_fitting_it():
    frame, treated, converted = make_uplift_customers(2000, seed=4)
    calls: list[tuple[int, int]] = []
    cross_fitted_uplift(
        frame[FEATURES],
        treated,
        converted,
        CrossFitConfig(model=QUICK),
        on_fold=lambda k, folds: calls.append((k, folds)),
    )
    assert calls == [(0, 2), (1, 2)]
