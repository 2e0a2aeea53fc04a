import json
import math

import numpy as np
import pandas as pd
import pytest

from recengine.drift import (
    EPSILON,
    Reference,
    drift_report,
    fit_reference,
    live_quality,
    profile_numbers,
    psi,
    psi_categorical,
)


def frames(n: int = 5000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, n),
            "balance": rng.exponential(1000, n),
            "job": rng.choice(["admin.", "student", "retired"], n, p=[0.5, 0.3, 0.2]),
            "has_loan": rng.random(n) < 0.3,
        }
    )


# ---- psi on numbers -------------------------------------------------------------------------
def test_it_gives_near_zero_psi_for_samples_of_the_same_distribution():
    rng = np.random.default_rng(1)
    assert psi(rng.normal(size=50_000), rng.normal(size=50_000)) < 0.01


def test_it_gives_a_major_psi_for_a_mean_shift_of_one_sd():
    rng = np.random.default_rng(2)
    assert psi(rng.normal(size=20_000), rng.normal(1, 1, size=20_000)) > 0.25


def test_it_matches_a_hand_computed_psi():
    # Expected 1..4 with bins=2: the median 2 is the one edge (bins x <= 2 and x > 2), so the
    # shares are 0.5 / 0.5 (and 0 missing). Actual [1, 1, 1, 4]: 0.75 / 0.25.
    # PSI = (0.75 - 0.5) ln(0.75 / 0.5) + (0.25 - 0.5) ln(0.25 / 0.5)
    #     = 0.25 * 0.405465 + 0.25 * 0.693147 = 0.274653
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(0.274653, abs=1e-6)


def test_it_floors_empty_bins_so_psi_stays_finite():
    # Actual has nothing in the upper bin: its share is floored at EPSILON, not 0.
    value = psi([1, 2, 3, 4], [1, 1, 1, 1], bins=2)
    expected = (1 - 0.5) * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert value == pytest.approx(expected)
    assert math.isfinite(value)


def test_it_puts_missing_numbers_in_a_bin_of_their_own():
    rng = np.random.default_rng(3)
    train = rng.normal(size=10_000)
    recent = rng.normal(size=10_000)
    recent[:3000] = np.nan
    assert psi(train, train) == pytest.approx(0)
    assert psi(train, recent) > 0.25
    # Missing values in training too: they are a bin like any other.
    train_with_gaps = train.copy()
    train_with_gaps[:3000] = np.nan
    assert psi(train_with_gaps, recent) < 0.01


def test_it_merges_repeated_quantile_edges_of_a_lumpy_sample():
    profile = profile_numbers([0] * 70 + [1] * 30, bins=10)
    assert profile.edges == [0.0]
    assert profile.shares == pytest.approx([0.7, 0.3, 0.0])


# ---- psi on categories ----------------------------------------------------------------------
def test_it_gives_zero_psi_for_the_same_category_shares():
    assert psi_categorical(["a", "b", "b"] * 100, ["b", "a", "b"] * 50) == pytest.approx(0)


def test_it_measures_a_shift_in_category_shares():
    # 50/50 -> 80/20: (0.3) ln(0.8/0.5) + (-0.3) ln(0.2/0.5) = 0.141001 + 0.274887 = 0.415888
    value = psi_categorical(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
    assert value == pytest.approx(0.415888, abs=1e-6)


def test_it_counts_categories_unseen_in_training_as_other():
    # "c" was never seen: 20 % of recent rows land in "other", which held nothing (EPSILON).
    value = psi_categorical(["a"] * 50 + ["b"] * 50, ["a"] * 40 + ["b"] * 40 + ["c"] * 20)
    expected = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - EPSILON) * math.log(0.2 / EPSILON)
    assert value == pytest.approx(expected)


def test_it_treats_missing_categories_as_a_bin():
    value = psi_categorical(["a", "b"] * 50, ["a", "b", None, np.nan] * 25)
    assert value > 0.25


# ---- drift report ---------------------------------------------------------------------------
def test_it_reports_the_moved_field_first_and_only_it_as_moved():
    train, recent = frames(seed=0), frames(shift=1.0, seed=1)
    report = drift_report(train, recent)
    assert [d.field for d in report.fields][0] == "age"
    assert report.moved == ["age"]
    assert report.fields[0].level == "major"
    assert {d.field: d.kind for d in report.fields} == {
        "age": "number",
        "balance": "number",
        "job": "category",
        "has_loan": "category",
    }
    assert all(d.level == "stable" for d in report.fields[1:])
    psis = [d.psi for d in report.fields]
    assert psis == sorted(psis, reverse=True)


def test_it_reports_the_score_psi_and_levels_by_threshold():
    rng = np.random.default_rng(4)
    report = drift_report(
        frames(seed=0),
        frames(seed=1),
        fields=["job"],
        score_train=rng.beta(2, 20, 5000),
        score_recent=rng.beta(2, 20, 5000),
        thresholds=(0.0, 0.5),
    )
    assert [d.field for d in report.fields] == ["job"]
    assert report.score is not None and report.score.psi < 0.02
    assert report.score.level == "moderate"  # 0.0 is the watch threshold here
    assert report.moved == []


def test_it_compares_with_a_saved_reference_as_with_the_training_rows():
    train, recent = frames(seed=0), frames(shift=0.5, seed=1)
    scores = np.random.default_rng(5).random(len(train))
    reference = fit_reference(train, scores=scores)
    restored = Reference.from_dict(json.loads(json.dumps(reference.as_dict())))
    assert restored == reference
    from_rows = drift_report(train, recent, score_train=scores, score_recent=scores[:1000])
    from_reference = drift_report(restored, recent, score_recent=scores[:1000])
    assert from_reference.as_dict() == from_rows.as_dict()
    json.dumps(from_reference.as_dict())


def test_it_names_fields_missing_from_the_recent_rows():
    with pytest.raises(ValueError, match="no column.*balance"):
        drift_report(frames(), frames().drop(columns="balance"))


# ---- live quality ---------------------------------------------------------------------------
def calibrated(n: int = 50_000, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 8, n)
    return (rng.random(n) < p).astype(int), p


def test_it_finds_a_small_calibration_error_on_calibrated_probabilities():
    y, p = calibrated()
    quality = live_quality(y, p)
    assert quality.ece < 0.01
    assert quality.mean_predicted == pytest.approx(quality.observed_rate, abs=0.005)
    assert 0.6 < quality.auc < 0.8
    assert len(quality.calibration) == 10
    assert sum(row["count"] for row in quality.calibration) == len(y)


def test_it_finds_a_large_calibration_error_on_doubled_probabilities():
    y, p = calibrated()
    quality = live_quality(y, np.clip(p * 2, 0, 1))
    assert quality.ece > 0.1
    assert quality.mean_predicted > 1.8 * quality.observed_rate
    # Ranking is unchanged: AUC is the same as for the calibrated probabilities.
    assert quality.auc == pytest.approx(live_quality(y, p).auc, abs=1e-3)


def test_it_gives_no_auc_when_the_outcomes_hold_one_class():
    quality = live_quality([0, 0, 0], [0.1, 0.2, 0.3])
    assert quality.auc is None
    assert quality.ece == pytest.approx(0.2)
    json.dumps(quality.as_dict())
