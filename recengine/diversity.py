"""Offer lists per customer, diversity-aware re-ranking and list metrics.

Multi-offer campaigns. The click model scores customer x offer pairs; `ScoreMatrix` holds
those scores (NaN = the offer is not a candidate for that customer, e.g. already taken).
`recommend` turns them into each customer's list of k offers:

- `mmr_lambda = 0` and no cap: the k best-scored offers (`top_k`).
- `mmr_lambda > 0`: maximal marginal relevance. Offers are picked one at a time, each time
  the one with the highest  (1 - lambda) * relevance - lambda * max similarity to the offers
  already in the list, so near-duplicates of what is listed lose ground (`penalty="mean"`
  uses the mean similarity to the listed offers instead). Similarity comes from
  `OfferSimilarity` (Jaccard over category sets such as genres, or cosine over embeddings).
- `method="dpp"`: greedy MAP inference of a determinantal point process over the customer's
  pool, with kernel L = diag(q) S diag(q), S the offer similarity (1 on the diagonal) and
  q = exp(theta * relevance). A list's log det L is its summed relevance (times 2 theta)
  plus log det S of its offers, the log-volume its offers span: it falls towards -inf as
  offers become linear combinations of each other, not just when two are alike. The same
  `mmr_lambda` knob sets theta = (1 - lambda) / (2 lambda), so each step picks the offer with
  the highest  (1 - lambda) * relevance + lambda * log(residual), the residual being what
  of the offer's similarity vector the listed offers do not already explain (an incremental
  Cholesky factor of S over the pool, updated for all customers at once).
- `discount=True`: the relevance term of slot s (0 = first) is weighed by NDCG's position
  discount 1 / log2(s + 2), so each list's first offers stay relevance-led and variety
  comes in lower down, where a swap costs less NDCG (for either method).
- `offer_cap`: no offer goes to more than that many customers. Slots are filled round by
  round (everyone's first offer, then everyone's second...); when more customers want an
  offer than it has places left, the customers who value it most get it and the others
  take their next choice.

The lists are measured for accuracy and variety in `recengine.list_metrics`.

The audience of a single-offer campaign is compared with the base in
`recengine.audience_diversity`.

Every result has `to_dict()` (JSON-ready, for the API and plotly charts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from recengine.config import config_to_dict, json_ready
from recengine.inputs import numeric_column, require_columns, shown

# Offers up to which the whole offer x offer similarity matrix is kept (4096^2 float32 = 64 MiB);
# above it similarities are computed from the features on demand.
FULL_MATRIX_OFFERS = 4096
# Elements (rows x candidates x feature width) computed at once when there is no full matrix.
CHUNK_ELEMENTS = 1 << 22
# Added to the DPP similarity's diagonal: keeps S positive definite when offers coincide
# (identical genres, more offers than embedding dimensions), so an offer the list already
# explains scores log(1e-3) ~ -6.9 instead of -inf and lists can still be filled.
DPP_JITTER = 1e-3


# --- Scores -------------------------------------------------------------------------------


@dataclass
class ScoreMatrix:
    """Scores of every customer (row) for every offer (column); NaN = not a candidate."""

    # Float array (customers x offers); higher = more likely to click.
    values: np.ndarray
    # Customer id of each row.
    customers: np.ndarray
    # Offer id of each column.
    offers: np.ndarray

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.customers = np.asarray(self.customers)
        self.offers = np.asarray(self.offers)
        if self.values.ndim != 2:
            raise ValueError(f"Scores must be a 2-D array, got shape {self.values.shape}.")
        if self.values.shape != (len(self.customers), len(self.offers)):
            raise ValueError(
                f"Scores have shape {self.values.shape} but there are {len(self.customers)} "
                f"customer ids and {len(self.offers)} offer ids."
            )
        for name, ids in (("customer", self.customers), ("offer", self.offers)):
            duplicated = pd.Index(ids).duplicated()
            if duplicated.any():
                at = int(np.flatnonzero(duplicated)[0])
                raise ValueError(f"{name} id {shown(ids[at])} appears twice (position {at}).")
        infinite = np.isinf(self.values)
        if infinite.any():
            row, col = np.argwhere(infinite)[0]
            raise ValueError(
                f"Score at row {row} (customer {shown(self.customers[row])}), column {col} "
                f"(offer {shown(self.offers[col])}) is infinite; use NaN for 'not a candidate'."
            )

    @classmethod
    def from_array(
        cls,
        values: np.ndarray,
        customers: Sequence | None = None,
        offers: Sequence | None = None,
    ) -> ScoreMatrix:
        """Scores as an array; ids default to row and column positions."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"Scores must be a 2-D array, got shape {values.shape}.")
        return cls(
            values,
            np.arange(values.shape[0]) if customers is None else np.asarray(customers),
            np.arange(values.shape[1]) if offers is None else np.asarray(offers),
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        customer: str = "customer",
        offer: str = "offer",
        score: str = "score",
    ) -> ScoreMatrix:
        """Scores from a long frame, one row per (customer, offer) candidate pair."""
        require_columns(frame, [customer, offer, score])
        values = numeric_column(frame, score)
        pairs = frame[[customer, offer]]
        duplicated = pairs.duplicated()
        if duplicated.any():
            label = frame.index[int(np.flatnonzero(duplicated.to_numpy())[0])]
            raise ValueError(
                f"Row {shown(label)}: customer {shown(frame.at[label, customer])} and offer "
                f"{shown(frame.at[label, offer])} (columns {customer!r}, {offer!r}) appear "
                "twice."
            )
        rows, customers = pd.factorize(frame[customer], sort=True)
        cols, offers = pd.factorize(frame[offer], sort=True)
        matrix = np.full((len(customers), len(offers)), np.nan)
        matrix[rows, cols] = values
        return cls(matrix, np.asarray(customers), np.asarray(offers))

    @property
    def n_customers(self) -> int:
        return self.values.shape[0]

    @property
    def n_offers(self) -> int:
        return self.values.shape[1]


def click_matrix(
    frame: pd.DataFrame,
    customers: Sequence | np.ndarray,
    offers: Sequence | np.ndarray,
    customer: str = "customer",
    offer: str = "offer",
) -> np.ndarray:
    """Boolean (customers x offers) matrix of the pairs listed in `frame`, e.g. held-out
    clicks, aligned with a `ScoreMatrix`'s ids."""
    require_columns(frame, [customer, offer])
    positions = []
    for column, ids, what in ((customer, customers, "customer"), (offer, offers, "offer")):
        found = pd.Index(ids).get_indexer(frame[column])
        if (found < 0).any():
            label = frame.index[int(np.flatnonzero(found < 0)[0])]
            raise ValueError(
                f"Row {shown(label)}, column {column!r}: {what} "
                f"{shown(frame.at[label, column])} is not among the scored {what}s."
            )
        positions.append(found)
    matrix = np.zeros((len(customers), len(offers)), dtype=bool)
    matrix[positions[0], positions[1]] = True
    return matrix


# --- Offer similarity ---------------------------------------------------------------------


@dataclass
class OfferSimilarity:
    """Similarity of offers: Jaccard over category sets or cosine over embeddings.

    Build it with `from_categories` or `from_embeddings`; rows follow the score matrix's
    offer columns.
    """

    # One row per offer: 0/1 category indicators ("jaccard") or an embedding ("cosine").
    features: np.ndarray
    # "jaccard": shared categories / categories of either; "cosine": angle of embeddings.
    kind: Literal["jaccard", "cosine"]
    # Category name of each feature column (Jaccard only; for display).
    categories: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"Offer features must be 2-D, got shape {features.shape}.")
        if self.kind == "cosine":
            norms = np.linalg.norm(features, axis=1)
            if (norms == 0).any() or not np.isfinite(norms).all():
                row = int(np.flatnonzero((norms == 0) | ~np.isfinite(norms))[0])
                raise ValueError(f"Offer embedding at row {row} is zero or not finite.")
            features = features / norms[:, None]
        elif self.kind == "jaccard":
            if not np.isin(features, (0.0, 1.0)).all():
                row, col = np.argwhere(~np.isin(features, (0.0, 1.0)))[0]
                raise ValueError(f"Category indicator at row {row}, column {col} is not 0 or 1.")
        else:
            raise ValueError(f"Unknown similarity kind {self.kind!r} (jaccard or cosine).")
        self.features = features
        self._sizes = features.sum(axis=1)
        self._matrix = (
            self._from_dot(features @ features.T, self._sizes[:, None], self._sizes[None, :])
            if len(features) <= FULL_MATRIX_OFFERS
            else None
        )

    @classmethod
    def from_categories(
        cls, categories: Sequence[str | Iterable[str] | None], sep: str | None = None
    ) -> OfferSimilarity:
        """Jaccard similarity over each offer's category set. An entry is an iterable of
        names or one string split on `sep` (None = whitespace); None/NaN = no category."""
        sets = [_category_set(entry, sep) for entry in categories]
        names = sorted(set().union(*sets)) if sets else []
        column = {name: i for i, name in enumerate(names)}
        features = np.zeros((len(sets), len(names)), dtype=np.float32)
        for row, entry in enumerate(sets):
            features[row, [column[name] for name in entry]] = 1.0
        return cls(features, "jaccard", names)

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray) -> OfferSimilarity:
        """Cosine similarity over one embedding row per offer."""
        return cls(np.asarray(embeddings), "cosine")

    @property
    def n_offers(self) -> int:
        return len(self.features)

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity of offers `a` and `b` (position arrays, broadcast against each other)."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        if self._matrix is not None:
            return self._matrix[a, b]
        return self._pairs(a, b)

    def to_many(self, offers: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Similarity of offer `offers[i]` to each of `candidates[i, :]`, in memory-bounded
        chunks of rows."""
        if self._matrix is not None:
            return self._matrix[offers[:, None], candidates]
        out = np.empty(candidates.shape, dtype=np.float32)
        step = max(1, CHUNK_ELEMENTS // max(1, candidates.shape[1] * self.features.shape[1]))
        for start in range(0, len(offers), step):
            rows = slice(start, start + step)
            out[rows] = self._pairs(offers[rows, None], candidates[rows])
        return out

    def matrix(self) -> np.ndarray:
        """The full offer x offer similarity matrix (mind the size for large catalogues)."""
        if self._matrix is not None:
            return self._matrix
        every = np.arange(self.n_offers)
        return self.between(every[:, None], every[None, :])

    def _pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.broadcast_arrays(a, b)
        dot = np.einsum("...d,...d->...", self.features[a], self.features[b])
        return self._from_dot(dot, self._sizes[a], self._sizes[b])

    def _from_dot(self, dot: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
        if self.kind == "cosine":
            return dot
        union = size_a + size_b - dot
        # Two offers without any category share nothing we know of: similarity 0.
        return np.divide(dot, union, out=np.zeros_like(dot), where=union > 0)


def _category_set(entry: Any, sep: str | None) -> set[str]:
    if entry is None or (isinstance(entry, float) and np.isnan(entry)):
        return set()
    if isinstance(entry, str):
        return {part.strip() for part in entry.split(sep) if part.strip()}
    return {str(part) for part in entry}


# --- Re-ranking ---------------------------------------------------------------------------


@dataclass
class RerankConfig:
    # Offers per customer list.
    k: int = 10
    # Diversity weight in [0, 1]: 0 = pure relevance, larger = more variety within a list
    # (the same knob for both methods).
    mmr_lambda: float = 0.0
    # Best-scored offers per customer that the re-ranking chooses from (None = every
    # candidate); a pool keeps low-relevance offers out however diverse they are.
    pool_size: int | None = 100
    # Most customers one offer may be recommended to (None = no cap).
    offer_cap: int | None = None
    # Similarity to the list so far that is penalised: "max" (classic MMR, the closest
    # listed offer) or "mean" (the average over listed offers, which is what intra-list
    # diversity measures).
    penalty: Literal["max", "mean"] = "max"
    # Min-max scale each customer's pool scores to [0, 1] before mixing with similarity, so
    # lambda means the same for customers with high and low scores.
    rescale: bool = True
    # Re-ranking: "mmr" (relevance minus a similarity penalty, `penalty` applies) or "dpp"
    # (greedy determinantal point process: relevance plus the log-volume the list spans).
    method: Literal["mmr", "dpp"] = "mmr"
    # Weigh relevance by each slot's NDCG discount, 1 / log2(slot + 2): the first offers stay
    # relevance-led and variety comes in lower down the list, where a swap costs less
    # (the greedy then maximises discounted relevance plus lambda times variety).
    discount: bool = False

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}.")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda}.")
        if self.pool_size is not None and self.pool_size < self.k:
            raise ValueError(f"pool_size ({self.pool_size}) must be at least k ({self.k}).")
        if self.offer_cap is not None and self.offer_cap < 1:
            raise ValueError(f"offer_cap must be at least 1, got {self.offer_cap}.")
        if self.penalty not in ("max", "mean"):
            raise ValueError(f"penalty must be 'max' or 'mean', got {self.penalty!r}.")
        if self.method not in ("mmr", "dpp"):
            raise ValueError(f"method must be 'mmr' or 'dpp', got {self.method!r}.")


@dataclass
class Recommendations:
    """Each customer's offer list, best first."""

    # Offer positions (columns of the score matrix), customers x k; -1 = empty slot (the
    # customer ran out of candidates, e.g. because of caps). Empty slots only trail a list.
    positions: np.ndarray
    # The click model's score of each listed offer (NaN for an empty slot).
    scores: np.ndarray
    # Customer id of each row.
    customers: np.ndarray
    # Offer id of each score-matrix column (the catalogue).
    offers: np.ndarray
    # Settings that produced the lists.
    config: RerankConfig

    @property
    def k(self) -> int:
        return self.positions.shape[1]

    def exposure(self) -> np.ndarray:
        """Customers each catalogue offer is recommended to."""
        listed = self.positions[self.positions >= 0]
        return np.bincount(listed, minlength=len(self.offers))

    def to_frame(self) -> pd.DataFrame:
        """Long frame: customer, rank (1 = first), offer, score; empty slots left out."""
        rows, ranks = np.nonzero(self.positions >= 0)
        return pd.DataFrame(
            {
                "customer": self.customers[rows],
                "rank": ranks + 1,
                "offer": self.offers[self.positions[rows, ranks]],
                "score": self.scores[rows, ranks],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        lists = []
        for row, customer in enumerate(self.customers):
            filled = self.positions[row] >= 0
            lists.append(
                {
                    "customer": customer,
                    "offers": self.offers[self.positions[row, filled]].tolist(),
                    "scores": self.scores[row, filled].tolist(),
                }
            )
        counts = self.exposure()
        return json_ready(
            {
                "config": config_to_dict(self.config),
                "k": self.k,
                "lists": lists,
                "exposure": {
                    "offers": self.offers[counts > 0].tolist(),
                    "customers": counts[counts > 0].tolist(),
                },
            }
        )


def top_k(scores: ScoreMatrix, k: int) -> np.ndarray:
    """Positions of each customer's k best-scored offers, best first (ties: lower column
    first); -1 where a customer has fewer than k candidates."""
    pool, valid = _ranked_pool(scores.values, k)
    return np.where(valid, pool, -1)


def recommend(
    scores: ScoreMatrix,
    config: RerankConfig | None = None,
    similarity: OfferSimilarity | None = None,
) -> Recommendations:
    """Each customer's list of `config.k` offers: top-k, MMR or DPP re-ranked, and/or capped
    per offer (see the module docstring). `similarity` is needed when `mmr_lambda` > 0."""
    config = config or RerankConfig()
    config.validate()
    _check_similarity(config, similarity, scores.n_offers)
    k = min(config.k, scores.n_offers)
    if config.mmr_lambda == 0 and config.offer_cap is None:
        positions = top_k(scores, k)
    else:
        positions = _greedy_lists(scores.values, k, config, similarity)
    rows = np.arange(scores.n_customers)[:, None]
    listed = np.where(positions >= 0, scores.values[rows, np.maximum(positions, 0)], np.nan)
    return Recommendations(positions, listed, scores.customers, scores.offers, config)


def _check_similarity(
    config: RerankConfig, similarity: OfferSimilarity | None, n_offers: int
) -> None:
    if config.mmr_lambda > 0 and similarity is None:
        raise ValueError("mmr_lambda > 0 needs an OfferSimilarity to measure variety.")
    if similarity is not None and similarity.n_offers != n_offers:
        raise ValueError(f"The similarity has {similarity.n_offers} offers, the scores {n_offers}.")


def recommend_one(
    scores: np.ndarray,
    config: RerankConfig | None = None,
    similarity: OfferSimilarity | None = None,
) -> np.ndarray:
    """One customer's list (a real-time request): `recommend` for the single row of scores
    `scores` (one per offer of the catalogue, NaN = not a candidate), as the positions of
    the listed offers, best first (no -1). The same choice as `recommend` on a one-row
    `ScoreMatrix` (where `offer_cap` never binds: a list holds an offer once), without its
    checks of the ids and the list object, which cost more than the choice for one row."""
    config = config or RerankConfig()
    config.validate()
    values = np.asarray(scores, dtype=np.float64).reshape(1, -1)
    if np.isinf(values).any():
        at = int(np.flatnonzero(np.isinf(values[0]))[0])
        raise ValueError(f"Score at column {at} is infinite; use NaN for 'not a candidate'.")
    _check_similarity(config, similarity, values.shape[1])
    if not values.shape[1]:
        return np.zeros(0, dtype=np.int64)
    k = min(config.k, values.shape[1])
    if config.mmr_lambda == 0:
        # One list: a cap of at least one place per offer never binds.
        pool, valid = _ranked_pool(values, k)
        return pool[0][valid[0]]
    if config.method == "mmr":
        assert similarity is not None  # checked above
        return _one_mmr_list(values, k, config, similarity)
    positions = _greedy_lists(values, k, config, similarity)[0]
    return positions[positions >= 0]


def _one_mmr_list(
    values: np.ndarray, k: int, config: RerankConfig, similarity: OfferSimilarity
) -> np.ndarray:
    """`_greedy_lists` with `_MMRPenalty` for a single row and no cap, on flat arrays: the
    same picks in a fraction of the array operations, which for one row cost more than the
    arithmetic. (The tests hold the two to the same lists.)"""
    pool, valid = (a[0] for a in _ranked_pool(values, config.pool_size))
    relevance = values[0, pool]
    if config.rescale:
        relevance = _rescale_rows(relevance[None, :], valid[None, :])[0]
    lam = config.mmr_lambda
    base = np.where(valid, (1.0 - lam) * np.nan_to_num(relevance), -np.inf)
    weight = 1.0 / np.log2(np.arange(k) + 2.0) if config.discount else np.ones(k)
    near = np.zeros(len(pool))
    listed: list[int] = []
    for slot in range(k):
        divisor = max(slot, 1) if config.penalty == "mean" else 1
        value = base * weight[slot] - (lam / divisor) * near
        pick = int(value.argmax())
        if not np.isfinite(value[pick]):
            break
        listed.append(int(pool[pick]))
        base[pick] = -np.inf
        added = similarity.to_many(pool[pick : pick + 1], pool[None, :])[0]
        near = near + added if config.penalty == "mean" else np.maximum(near, added)
    return np.array(listed, dtype=np.int64)


def _ranked_pool(values: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `size` best columns, best first (ties: lower column first), and whether
    each is a candidate (score not NaN)."""
    n_rows, n_cols = values.shape
    size = n_cols if size is None else min(size, n_cols)
    filled = np.where(np.isnan(values), -np.inf, values)
    if size < n_cols:
        # The `size`-th best score of each row; ties with it are taken lowest column first,
        # so the pool (and hence every list) does not depend on partitioning order.
        cut = -np.partition(-filled, size - 1, axis=1)[:, size - 1 : size]
        above = filled > cut
        at_cut = filled == cut
        room = size - above.sum(axis=1, keepdims=True)
        chosen = above | (at_cut & (np.cumsum(at_cut, axis=1) <= room))
        pool = np.nonzero(chosen)[1].reshape(n_rows, size)  # column order within a row
    else:
        pool = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    order = np.argsort(-np.take_along_axis(filled, pool, axis=1), axis=1, kind="stable")
    pool = np.take_along_axis(pool, order, axis=1)
    return pool, np.isfinite(np.take_along_axis(filled, pool, axis=1))


def _greedy_lists(
    values: np.ndarray, k: int, config: RerankConfig, similarity: OfferSimilarity | None
) -> np.ndarray:
    """MMR, DPP and/or capped lists, filled slot by slot for all customers at once."""
    n_customers, n_offers = values.shape
    pool, valid = _ranked_pool(values, config.pool_size)
    relevance = np.take_along_axis(values, pool, axis=1)
    if config.rescale:
        relevance = _rescale_rows(relevance, valid)
    lam = config.mmr_lambda
    # Value of each pool offer before its diversity term; -inf = not available.
    base = np.where(valid, (1.0 - lam) * np.nan_to_num(relevance), -np.inf)
    variety: _MMRPenalty | _DPPGain | None = None
    if lam > 0 and similarity is not None:
        kind = _DPPGain if config.method == "dpp" else _MMRPenalty
        variety = kind(pool, k, config, similarity)
    weight = 1.0 / np.log2(np.arange(k) + 2.0) if config.discount else np.ones(k)
    places = np.full(n_offers, config.offer_cap if config.offer_cap else n_customers * k)
    positions = np.full((n_customers, k), -1, dtype=np.int64)
    for slot in range(k):
        waiting = np.ones(n_customers, dtype=bool)
        while waiting.any():
            who = np.flatnonzero(waiting)
            # Every customer still picking has `slot` offers listed (gaps only trail lists).
            value = base[who] * weight[slot]
            if variety is not None:
                value += variety.term(who, slot)
            if config.offer_cap is not None:
                value[places[pool[who]] <= 0] = -np.inf
            pick = value.argmax(axis=1)
            best = value[np.arange(len(who)), pick]
            out_of_candidates = ~np.isfinite(best)
            waiting[who[out_of_candidates]] = False
            who, pick, best = (
                who[~out_of_candidates],
                pick[~out_of_candidates],
                best[~out_of_candidates],
            )
            offer = pool[who, pick]
            if config.offer_cap is not None:
                granted = _within_places(offer, best, places)
                who, pick, offer = who[granted], pick[granted], offer[granted]
                places -= np.bincount(offer, minlength=n_offers)
            positions[who, slot] = offer
            base[who, pick] = -np.inf
            waiting[who] = False
            if variety is not None and len(who):
                variety.add(who, pick, slot)
    return positions


class _MMRPenalty:
    """MMR's diversity term: minus lambda times the max (or mean) similarity of each pool
    offer to the customer's list so far."""

    def __init__(
        self, pool: np.ndarray, k: int, config: RerankConfig, similarity: OfferSimilarity
    ) -> None:
        self.pool, self.config, self.similarity = pool, config, similarity
        # Max (or summed, for "mean") similarity of each pool offer to the list so far.
        self.near = np.zeros(pool.shape)

    def term(self, who: np.ndarray, slot: int) -> np.ndarray:
        divisor = max(slot, 1) if self.config.penalty == "mean" else 1
        return -(self.config.mmr_lambda / divisor) * self.near[who]

    def add(self, who: np.ndarray, pick: np.ndarray, slot: int) -> None:
        added = self.similarity.to_many(self.pool[who, pick], self.pool[who])
        if self.config.penalty == "mean":
            self.near[who] += added
        else:
            self.near[who] = np.maximum(self.near[who], added)


class _DPPGain:
    """The DPP's diversity term: lambda times log of each pool offer's residual, the squared
    distance of its feature vector (in the space where S is the inner product) from the span
    of the listed offers'; adding offer i multiplies det S of the list by residual_i.

    Kept as an incremental Cholesky factor of S restricted to the pool: after listing offer
    j, every pool offer i gets a new factor entry e_i = (S_ji - <c_j, c_i>) / sqrt(r_j) and
    its residual drops by e_i^2. One listing costs O(slot x pool) per customer."""

    def __init__(
        self, pool: np.ndarray, k: int, config: RerankConfig, similarity: OfferSimilarity
    ) -> None:
        self.pool, self.lam, self.similarity = pool, config.mmr_lambda, similarity
        # Cholesky factor rows: factors[t, c, i] = entry t of pool offer i for customer c.
        self.factors = np.zeros((k, *pool.shape), dtype=np.float32)
        # Every offer is fully similar to itself (also an offer with no category, whose
        # Jaccard row is all 0), plus the jitter that keeps S positive definite.
        self.residual = np.full(pool.shape, 1.0 + DPP_JITTER)

    def term(self, who: np.ndarray, slot: int) -> np.ndarray:
        return self.lam * np.log(self.residual[_rows(who, len(self.pool))])

    def add(self, who: np.ndarray, pick: np.ndarray, slot: int) -> None:
        rows = _rows(who, len(self.pool))
        picked = np.arange(len(who)), pick
        listed = self.pool[who, pick]
        entry = self.similarity.to_many(listed, self.pool[rows]).astype(np.float64)
        for earlier in self.factors[:slot]:
            factor = earlier[rows]
            entry -= factor[picked][:, None] * factor
        entry /= np.sqrt(self.residual[rows][picked])[:, None]
        self.factors[slot, rows] = entry
        # Rounding can push a residual below the jitter it can never fall under exactly.
        self.residual[rows] = np.maximum(self.residual[rows] - entry**2, DPP_JITTER)


def _rows(who: np.ndarray, n_rows: int) -> np.ndarray | slice:
    """`who` as an index; every row in order as a slice, which numpy does not copy."""
    return slice(None) if len(who) == n_rows else who


def _rescale_rows(relevance: np.ndarray, valid: np.ndarray) -> np.ndarray:
    low = np.where(valid, relevance, np.inf).min(axis=1, keepdims=True)
    high = np.where(valid, relevance, -np.inf).max(axis=1, keepdims=True)
    span = high - low
    usable = valid & np.isfinite(span) & (span > 0)
    scaled = np.zeros_like(relevance)
    np.divide(
        relevance - np.where(np.isfinite(low), low, 0.0),
        np.where(usable, span, 1.0),
        out=scaled,
        where=usable,
    )
    return scaled


def _within_places(offer: np.ndarray, value: np.ndarray, places: np.ndarray) -> np.ndarray:
    """Which requests to grant: per offer, the highest-valued requests up to its places."""
    order = np.lexsort((-value, offer))
    ranked = offer[order]
    starts = np.r_[True, ranked[1:] != ranked[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(ranked)), 0))
    granted = np.empty(len(offer), dtype=bool)
    granted[order] = (np.arange(len(ranked)) - first) < places[ranked]
    return granted
