import numpy as np
import pandas as pd

from recengine.leakage import LeakageConfig, leaking_fields, single_field_auc


def frame_with_leaks(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    job = rng.choice(["admin", "student", "retired", "services"], n)
    logit = -1.0 + 1.5 * (job == "student") + 0.02 * (age - 40)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    responded = pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    frame = pd.DataFrame(
        {
            "age": age,
            "job": job,
            # The outcome under other names: a 0/1 number, yes/no words, and a value filled
            # only for buyers.
            "bought": y,
            "subscribed": np.where(y == 1, "yes", "no"),
            "order_value": np.where(y == 1, rng.uniform(10, 500, n), np.nan),
            # Recorded after the response: the date the account was upgraded.
            "upgraded_on": (responded + pd.to_timedelta(rng.integers(1, 60, n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            # Before the response: the date the customer joined.
            "joined_on": (responded - pd.to_timedelta(rng.integers(30, 900, n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
        }
    )
    return frame, y, responded


def test_it_flags_copies_of_the_label_and_dates_after_the_response_and_nothing_else():
    frame, y, responded = frame_with_leaks()
    leaks = leaking_fields(
        frame,
        y,
        list(frame.columns),
        date_fields=["upgraded_on", "joined_on"],
        response_dates=responded,
    )
    by_field = {leak.field: leak for leak in leaks}
    assert set(by_field) == {"bought", "subscribed", "order_value", "upgraded_on"}
    assert by_field["bought"].reason == "predicts_outcome" and by_field["bought"].value == 1.0
    assert by_field["subscribed"].value > 0.99
    assert by_field["upgraded_on"].reason == "after_response"
    assert by_field["upgraded_on"].value == 1.0


def test_a_strong_honest_field_is_not_a_leak():
    frame, y, _ = frame_with_leaks()
    # job alone ranks clearly better than chance, and far from perfectly.
    auc = single_field_auc(frame["job"], y, LeakageConfig())
    assert 0.55 < auc < 0.9
    assert leaking_fields(frame, y, ["age", "job"]) == []


def test_a_value_held_by_one_row_cannot_score_itself():
    # An id per row: in-sample it would "predict" every label; out of fold it is noise.
    frame, y, _ = frame_with_leaks()
    ids = pd.Series([f"C{i}" for i in range(len(y))])
    assert single_field_auc(ids, y, LeakageConfig()) < 0.6


def test_a_single_class_has_nothing_to_leak():
    frame, _, _ = frame_with_leaks(100)
    assert leaking_fields(frame, np.zeros(100, dtype=int), list(frame.columns)) == []
