"""Splits, negative sampling, class imbalance and data fingerprints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split


@dataclass
class SplitConfig:
    # Share of all rows held out for the final test.
    test_size: float = 0.2
    # Share of the remaining (training) rows carved out for validation / early stopping.
    val_size: float = 0.1
    # Seed of every random choice; the same seed gives the same split.
    seed: int = 0
    # "stratified" (keeps the click rate in every part) or "time" (latest rows are the test).
    method: str = "stratified"


@dataclass(frozen=True)
class Split:
    """Row positions (not labels) of each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_rows(y: np.ndarray, config: SplitConfig, times: np.ndarray | None = None) -> Split:
    """Stratified (default) or time-ordered train / validation / test split.

    The stratified test part is exactly `train_test_split(test_size, stratify=y,
    random_state=seed)`, so figures compare with the published reference ones.
    """
    y = np.asarray(y)
    positions = np.arange(len(y))
    if config.method == "time":
        if times is None:
            raise ValueError("A time-based split needs the rows' times.")
        order = np.argsort(np.asarray(times), kind="stable")
        n_test = int(round(len(y) * config.test_size))
        n_val = int(round((len(y) - n_test) * config.val_size))
        rest, test = order[: len(y) - n_test], order[len(y) - n_test :]
        return Split(
            np.sort(rest[: len(rest) - n_val]), np.sort(rest[len(rest) - n_val :]), np.sort(test)
        )
    if config.method != "stratified":
        raise ValueError(f"Unknown split method {config.method!r}")
    rest, test = train_test_split(
        positions, test_size=config.test_size, stratify=y, random_state=config.seed
    )
    train, val = train_test_split(
        rest, test_size=config.val_size, stratify=y[rest], random_state=config.seed
    )
    return Split(np.sort(train), np.sort(val), np.sort(test))


def split_by_user(
    users: np.ndarray,
    times: np.ndarray,
    test_size: float = 0.2,
    val_size: float = 0.1,
    cold_users: float = 0.0,
    seed: int = 0,
) -> Split:
    """Per-customer hold-out: each customer's latest interactions are the test rows.

    `cold_users` moves that share of customers entirely into the test part, so the test also
    measures customers the model never saw (cold start).
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user": np.asarray(users), "time": np.asarray(times)})
    frame["pos"] = np.arange(len(frame))
    unique = frame["user"].unique()
    cold = set(rng.choice(unique, size=int(len(unique) * cold_users), replace=False).tolist())
    # Random tie-break so rows with equal times are not split by file order.
    frame["tie"] = rng.random(len(frame))
    frame = frame.sort_values(["user", "time", "tie"])
    rank = frame.groupby("user").cumcount()
    size = frame.groupby("user")["pos"].transform("size")
    is_test = (rank >= np.ceil(size * (1 - test_size))) | frame["user"].isin(cold)
    test = np.sort(frame.loc[is_test, "pos"].to_numpy())
    rest = frame.loc[~is_test, "pos"].to_numpy()
    val_mask = rng.random(len(rest)) < val_size
    return Split(np.sort(rest[~val_mask]), np.sort(rest[val_mask]), test)


def sample_negatives(
    interactions: pd.DataFrame,
    items: np.ndarray,
    per_user: int | float = 1.0,
    user_col: str = "user",
    item_col: str = "item",
    seed: int = 0,
) -> pd.DataFrame:
    """Unseen (user, item) pairs as non-clicks: `per_user` times each user's interaction count.

    Returns a frame with the user and item columns only; the caller adds the label.
    """
    rng = np.random.default_rng(seed)
    items = np.asarray(items)
    seen = interactions.groupby(user_col)[item_col].agg(set)
    rows: list[tuple[Any, Any]] = []
    for user, seen_items in seen.items():
        want = int(round(len(seen_items) * per_user))
        candidates = rng.choice(items, size=min(len(items), want * 2 + 10), replace=False)
        fresh = [i for i in candidates if i not in seen_items][:want]
        rows.extend((user, i) for i in fresh)
    return pd.DataFrame(rows, columns=[user_col, item_col])


def pos_weight(y: np.ndarray) -> float:
    """Weight of a click in the loss so clicks and non-clicks count equally."""
    y = np.asarray(y)
    positives = max(int(y.sum()), 1)
    return float((len(y) - positives) / positives)


def downsample_negatives(
    positions: np.ndarray, y: np.ndarray, ratio: float, seed: int = 0
) -> np.ndarray:
    """Keep every click and at most `ratio` non-clicks per click (the other imbalance remedy)."""
    rng = np.random.default_rng(seed)
    positions = np.asarray(positions)
    labels = np.asarray(y)[positions]
    pos, neg = positions[labels == 1], positions[labels == 0]
    keep = min(len(neg), int(len(pos) * ratio))
    return np.sort(np.concatenate([pos, rng.choice(neg, size=keep, replace=False)]))


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows' content (order and column names included)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
