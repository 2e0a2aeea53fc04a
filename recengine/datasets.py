"""Loaders for the benchmark data sets (read from the shared data folder, never copied)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recengine.data import sample_negatives

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BANK_FILE = SHARED_DATA / "bank-marketing" / "bank-additional-full.csv.gz"
MOVIELENS_DIR = SHARED_DATA / "movielens-100k"

# Short marketer names for the bank columns; long dotted names cost tokens.
BANK_LABELS = {
    "job": "",
    "marital": "",
    "education": "",
    "contact": "",
    "month": "",
    "day_of_week": "",
    "default": "credit default",
    "housing": "housing loan",
    "loan": "personal loan",
    "campaign": "calls",
    "pdays": "days since call",
    "previous": "previous calls",
    "poutcome": "previous outcome",
    "emp.var.rate": "employment",
    "cons.price.idx": "prices",
    "cons.conf.idx": "confidence",
    "euribor3m": "euribor",
    "nr.employed": "employed",
}


class DatasetMissing(FileNotFoundError):
    """The data set is not in the shared folder; benchmarks and tests skip with this message."""


@dataclass
class ClickData:
    """Rows with profile (and offer) columns plus a 0/1 `click` column."""

    frame: pd.DataFrame
    # Profile columns that describe the customer.
    customer_fields: list[str]
    # Offer columns (empty for single-offer data such as the bank campaign).
    offer_fields: list[str] = field(default_factory=list)
    # Marketer-facing labels for the text serialiser.
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.frame["click"].to_numpy()


def load_bank(path: Path | str = BANK_FILE, nrows: int | None = None) -> ClickData:
    """UCI Bank Marketing; `duration` is dropped because it is only known after the call."""
    path = Path(path)
    if not path.exists():
        raise DatasetMissing(f"Bank marketing data not found at {path}")
    frame = pd.read_csv(path, sep=";", nrows=nrows).drop(columns=["duration"])
    frame["click"] = (frame.pop("y") == "yes").astype(np.int64)
    fields = [c for c in frame.columns if c != "click"]
    return ClickData(frame, fields, labels=BANK_LABELS)


def load_movielens(
    folder: Path | str = MOVIELENS_DIR, negatives_per_rating: float = 0.5, seed: int = 0
) -> ClickData:
    """MovieLens 100K as a multi-offer click task: rating >= 4 is a click, a lower rating or
    a sampled unrated movie a non-click. Columns: user, item, time, profile, offer, click."""
    folder = Path(folder)
    if not (folder / "u.data").exists():
        raise DatasetMissing(
            f"MovieLens 100K not found at {folder} (research use only, never shipped)"
        )
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "time"])
    users = pd.read_csv(
        folder / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"]
    ).drop(columns=["zip"])
    genres = [g.split("|")[0] for g in (folder / "u.genre").read_text().split("\n") if g.strip()]
    items = pd.read_csv(folder / "u.item", sep="|", encoding="latin-1", header=None)
    items = items.iloc[:, [0, 1] + list(range(5, 5 + len(genres)))]
    items.columns = ["item", "title"] + genres
    items["genres"] = items[genres].apply(
        lambda r: " ".join(g.lower() for g in genres if r[g] == 1 and g != "unknown"), axis=1
    )
    items = items[["item", "title", "genres"]]
    ratings["click"] = (ratings["rating"] >= 4).astype(np.int64)
    negatives = sample_negatives(ratings, items["item"].to_numpy(), negatives_per_rating, seed=seed)
    # A sampled non-click gets a time drawn from that user's own rating times.
    rng = np.random.default_rng(seed)
    times = ratings.groupby("user")["time"].agg(list)
    negatives["time"] = [rng.choice(times[u]) for u in negatives["user"]]
    negatives["click"] = 0
    rows = pd.concat([ratings.drop(columns=["rating"]), negatives], ignore_index=True)
    rows = rows.merge(users, on="user").merge(items, on="item")
    rows = rows.sort_values(["time", "user", "item"], kind="stable").reset_index(drop=True)
    return ClickData(
        rows,
        ["age", "gender", "occupation"],
        ["title", "genres"],
        labels={"title": "movie"},
    )
