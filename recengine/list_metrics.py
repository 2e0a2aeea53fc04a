"""How good and how varied offer lists are, and what variety costs in accuracy.

`evaluate` measures lists against held-out clicks (precision, recall, NDCG at k) and for
variety (intra-list diversity, catalogue coverage, Gini of exposure, novelty);
`diversity_curve` does it for a range of lambdas, and `DiversityCurve.tradeoff` says how
much diversity is bought for how much NDCG.

Every result has `to_dict()` (JSON-ready, for the API and plotly charts).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recengine.config import config_to_dict, json_ready
from recengine.diversity import (
    OfferSimilarity,
    Recommendations,
    RerankConfig,
    ScoreMatrix,
    recommend,
)

DEFAULT_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)


# --- List metrics -------------------------------------------------------------------------


@dataclass
class ListMetrics:
    # List length the metrics are "at".
    k: int
    # Share of listed slots (k per customer) clicked in the held-out data (None = no clicks).
    precision: float | None
    # Share of each customer's held-out clicks that made the list (None = no clicks given).
    recall: float | None
    # Normalised discounted cumulative gain, binary click relevance (None = no clicks given).
    ndcg: float | None
    # Customers with at least one held-out click (the ones precision/recall/NDCG average).
    customers_evaluated: int
    # Mean click-model score of the listed offers: the expected click rate per listed offer
    # when scores are calibrated probabilities. Needs no held-out data.
    mean_score: float
    # Mean pairwise dissimilarity (1 - similarity) within a list, averaged over lists.
    intra_list_diversity: float | None
    # Share of the catalogue recommended to at least one customer.
    coverage: float
    # Gini coefficient of recommendations per offer (0 = even, near 1 = a few offers get all).
    gini: float
    # Mean -log2 popularity of listed offers (higher = less obvious offers).
    novelty: float | None

    def to_dict(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))


def evaluate(
    recs: Recommendations,
    clicks: np.ndarray | None = None,
    similarity: OfferSimilarity | None = None,
    popularity: np.ndarray | None = None,
) -> ListMetrics:
    """Metrics of the lists: accuracy against held-out `clicks` (boolean customers x offers,
    e.g. from `click_matrix`), intra-list diversity (needs `similarity`), novelty (needs
    `popularity`), coverage, Gini of exposure and mean score (always)."""
    accuracy: dict[str, Any] = {
        "precision": None,
        "recall": None,
        "ndcg": None,
        "customers_evaluated": 0,
    }
    if clicks is not None:
        clicks = np.asarray(clicks, dtype=bool)
        if clicks.shape != (len(recs.customers), len(recs.offers)):
            raise ValueError(
                f"Clicks have shape {clicks.shape}, the lists cover "
                f"{(len(recs.customers), len(recs.offers))} customers x offers."
            )
        accuracy = ranking_metrics(recs.positions, clicks)
    listed = recs.scores[recs.positions >= 0]
    if len(listed) == 0:
        raise ValueError("Every list is empty; there is nothing to measure.")
    return ListMetrics(
        k=recs.k,
        **accuracy,
        mean_score=float(listed.mean()),
        intra_list_diversity=(
            None if similarity is None else intra_list_diversity(recs.positions, similarity)
        ),
        coverage=catalogue_coverage(recs.positions, len(recs.offers)),
        gini=gini(recs.exposure()),
        novelty=None if popularity is None else novelty(recs.positions, popularity),
    )


def ranking_metrics(positions: np.ndarray, clicks: np.ndarray) -> dict[str, float]:
    """Precision, recall and NDCG at k (k = list width) averaged over customers with at
    least one held-out click; an empty slot counts as a miss."""
    n_customers, k = positions.shape
    filled = positions >= 0
    hits = np.zeros(positions.shape, dtype=bool)
    rows = np.broadcast_to(np.arange(n_customers)[:, None], positions.shape)
    hits[filled] = clicks[rows[filled], positions[filled]]
    relevant = clicks.sum(axis=1)
    judged = relevant > 0
    if not judged.any():
        raise ValueError("No customer has a held-out click; accuracy cannot be measured.")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(relevant[judged], k) - 1]
    found = hits[judged].sum(axis=1)
    return {
        "precision": float((found / k).mean()),
        "recall": float((found / relevant[judged]).mean()),
        "ndcg": float(((hits[judged] @ discount) / ideal).mean()),
        "customers_evaluated": int(judged.sum()),
    }


def intra_list_diversity(positions: np.ndarray, similarity: OfferSimilarity) -> float:
    """Mean over lists (with 2+ offers) of the mean pairwise dissimilarity 1 - similarity."""
    n_customers, k = positions.shape
    safe = np.maximum(positions, 0)
    filled = positions >= 0
    pairs = np.zeros((n_customers, k, k), dtype=np.float64)
    for slot in range(k):
        pairs[:, slot, :] = 1.0 - similarity.to_many(safe[:, slot], safe)
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    counted = filled[:, :, None] & filled[:, None, :] & upper
    n_pairs = counted.sum(axis=(1, 2))
    scored = n_pairs > 0
    if not scored.any():
        raise ValueError("No list has two offers; intra-list diversity is undefined.")
    per_list = (pairs * counted).sum(axis=(1, 2))[scored] / n_pairs[scored]
    return float(per_list.mean())


def catalogue_coverage(positions: np.ndarray, n_offers: int) -> float:
    """Share of the catalogue's offers that appear in at least one list."""
    return float(len(np.unique(positions[positions >= 0])) / n_offers)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative amounts (0 = all equal, (n-1)/n = one holds all)."""
    amounts = np.sort(np.asarray(values, dtype=np.float64))
    if (amounts < 0).any():
        raise ValueError("Gini needs non-negative amounts.")
    total = amounts.sum()
    if len(amounts) == 0 or total == 0:
        return 0.0
    n = len(amounts)
    weights = 2 * np.arange(1, n + 1) - n - 1
    return float((weights * amounts).sum() / (n * total))


def offer_popularity(interactions: np.ndarray) -> np.ndarray:
    """Share of customers who interacted with each offer (boolean customers x offers), with
    one pseudo-customer who took every offer, so never-taken offers get a finite novelty."""
    interactions = np.asarray(interactions, dtype=bool)
    return (interactions.sum(axis=0) + 1.0) / (interactions.shape[0] + 1.0)


def novelty(positions: np.ndarray, popularity: np.ndarray) -> float:
    """Mean -log2 popularity of the listed offers (popularity per offer in (0, 1])."""
    popularity = np.asarray(popularity, dtype=np.float64)
    if ((popularity <= 0) | (popularity > 1)).any():
        at = int(np.flatnonzero((popularity <= 0) | (popularity > 1))[0])
        raise ValueError(f"Popularity of offer at column {at} is {popularity[at]}, not in (0, 1].")
    listed = positions[positions >= 0]
    if len(listed) == 0:
        raise ValueError("The lists are empty; novelty is undefined.")
    return float(-np.log2(popularity[listed]).mean())


# --- Accuracy versus diversity ------------------------------------------------------------


@dataclass
class CurvePoint:
    # Diversity weight of this point.
    mmr_lambda: float
    # Metrics of the lists at this lambda.
    metrics: ListMetrics
    # Seconds the re-ranking took.
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"mmr_lambda": self.mmr_lambda, **self.metrics.to_dict(), "seconds": self.seconds}


@dataclass
class TradeOff:
    # Relative intra-list diversity gain asked for (0.2 = 20 % above lambda 0).
    min_diversity_gain: float
    # Relative accuracy loss allowed (0.05 = at most 5 % below lambda 0).
    max_accuracy_loss: float
    # Accuracy measure compared: "ndcg" on held-out clicks, or "mean_score" (the model's own
    # expected click rate) when the curve was measured without clicks.
    accuracy: str
    # Metrics at lambda 0 (pure relevance), the baseline of the comparison.
    baseline: dict[str, Any]
    # Per lambda: relative ILD gain (None when the baseline's ILD is 0, so any gain is
    # unbounded) and relative accuracy loss against the baseline.
    changes: list[dict[str, float | None]]
    # ILD at every lambda > 0 is above the baseline's.
    diversity_rises: bool
    # ILD never falls as lambda grows.
    diversity_monotone: bool
    # Some lambda reaches the gain within the allowed loss.
    meets_target: bool
    # Of the lambdas meeting the target, the one with the largest ILD (None if none).
    best_lambda: float | None

    def to_dict(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))


@dataclass
class DiversityCurve:
    """Metrics per lambda, lambda 0 (pure relevance) first."""

    # One point per lambda, in increasing lambda.
    points: list[CurvePoint]
    # Re-ranking settings shared by every point (its mmr_lambda is the one varied).
    config: RerankConfig

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([point.to_dict() for point in self.points])

    def to_dict(self) -> dict[str, Any]:
        return json_ready(
            {
                "config": config_to_dict(self.config),
                "points": [point.to_dict() for point in self.points],
            }
        )

    def tradeoff(
        self, min_diversity_gain: float = 0.2, max_accuracy_loss: float = 0.05
    ) -> TradeOff:
        """How much intra-list diversity each lambda buys, and for how much accuracy (NDCG
        when the curve had held-out clicks, else the mean score of the listed offers)."""
        base = self.points[0]
        ilds = [point.metrics.intra_list_diversity for point in self.points]
        if base.mmr_lambda != 0 or None in ilds:
            raise ValueError(
                "The curve needs lambda 0 as baseline and intra-list diversity at every lambda."
            )
        known = [ild for ild in ilds if ild is not None]
        ild0 = known[0]
        measure = "mean_score" if base.metrics.ndcg is None else "ndcg"
        acc0 = getattr(base.metrics, measure)
        changes: list[dict[str, float | None]] = []
        meeting: list[tuple[float, CurvePoint]] = []
        for point, ild in zip(self.points[1:], known[1:], strict=True):
            gain = (ild - ild0) / ild0 if ild0 > 0 else None
            loss = (acc0 - getattr(point.metrics, measure)) / acc0 if acc0 > 0 else 0.0
            changes.append(
                {"mmr_lambda": point.mmr_lambda, "diversity_gain": gain, "accuracy_loss": loss}
            )
            enough = ild > 0 if gain is None else gain >= min_diversity_gain
            if enough and loss <= max_accuracy_loss:
                meeting.append((ild, point))
        return TradeOff(
            min_diversity_gain=min_diversity_gain,
            max_accuracy_loss=max_accuracy_loss,
            accuracy=measure,
            baseline=base.to_dict(),
            changes=changes,
            diversity_rises=len(known) > 1 and all(ild > ild0 for ild in known[1:]),
            diversity_monotone=all(b >= a for a, b in zip(known, known[1:], strict=False)),
            meets_target=bool(meeting),
            best_lambda=(max(meeting, key=lambda pair: pair[0])[1].mmr_lambda if meeting else None),
        )


def diversity_curve(
    scores: ScoreMatrix,
    similarity: OfferSimilarity,
    clicks: np.ndarray | None = None,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    config: RerankConfig | None = None,
    popularity: np.ndarray | None = None,
) -> DiversityCurve:
    """Re-rank at each lambda (0 is always included, as the baseline) and measure the lists,
    against held-out `clicks` when given."""
    config = config or RerankConfig()
    points = []
    for lam in sorted({0.0, *map(float, lambdas)}):
        started = time.perf_counter()
        recs = recommend(scores, dataclasses.replace(config, mmr_lambda=lam), similarity)
        seconds = time.perf_counter() - started
        metrics = evaluate(recs, clicks, similarity, popularity)
        points.append(CurvePoint(lam, metrics, round(seconds, 3)))
    return DiversityCurve(points, config)
