import numpy as np
import pandas as pd

from recengine.data import (
    SplitConfig,
    downsample_negatives,
    fingerprint,
    pos_weight,
    sample_negatives,
    split_by_user,
    split_rows,
)


def _labels(n: int = 500) -> np.ndarray:
    return (np.random.default_rng(1).random(n) < 0.2).astype(int)


def test_it_gives_the_same_split_for_the_same_seed():
    y = _labels()
    a, b = split_rows(y, SplitConfig(seed=3)), split_rows(y, SplitConfig(seed=3))
    assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    assert not np.array_equal(a.test, split_rows(y, SplitConfig(seed=4)).test)


def test_it_splits_into_disjoint_stratified_parts():
    y = _labels()
    split = split_rows(y, SplitConfig(test_size=0.2, val_size=0.1))
    parts = np.concatenate([split.train, split.val, split.test])
    assert sorted(parts) == list(range(len(y)))
    assert len(split.test) == 100
    assert abs(y[split.test].mean() - y.mean()) < 0.01


def test_it_holds_out_the_latest_rows_in_a_time_split():
    y = _labels(100)
    times = np.arange(100)[::-1]
    split = split_rows(y, SplitConfig(method="time", test_size=0.2, val_size=0.25), times=times)
    assert sorted(split.test) == list(range(20))
    assert times[split.val].min() > times[split.train].max()


def test_it_holds_out_each_users_latest_interactions_and_whole_cold_users():
    users = np.repeat(np.arange(20), 10)
    times = np.tile(np.arange(10), 20)
    split = split_by_user(users, times, test_size=0.2, val_size=0.0, cold_users=0.1, seed=0)
    trained_users = set(users[split.train])
    assert len(trained_users) == 18
    for user in trained_users:
        assert sorted(times[split.test][users[split.test] == user]) == [8, 9]


def test_it_samples_only_unseen_items_as_negatives():
    seen = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10]})
    negatives = sample_negatives(seen, np.arange(10, 30), per_user=2, seed=0)
    assert len(negatives) == 6  # two per interaction
    pairs = set(zip(seen.user, seen.item, strict=True))
    assert not pairs & set(zip(negatives.user, negatives.item, strict=True))


def test_it_handles_class_imbalance_by_weight_or_sampling():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert pos_weight(y) == 4.0
    kept = downsample_negatives(np.arange(10), y, ratio=2, seed=0)
    assert y[kept].sum() == 2 and len(kept) == 6


def test_it_fingerprints_row_content():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(frame.assign(a=[1, 3]))
