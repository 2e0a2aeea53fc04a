"""Audience diversity of single-offer campaigns.

`audience_diversity` compares the top-N customers by score with the whole base, attribute by
attribute (numbers binned into quantiles of the base), and lists the groups that are
under-represented or left out. The result has `to_dict()` (JSON-ready, for the API and charts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recengine.config import config_to_dict, json_ready
from recengine.inputs import numeric_column, require_columns, shown


@dataclass
class AudienceConfig:
    # Column with the click model's score (higher = more likely to respond).
    score: str = "score"
    # Audience = this many best-scored customers; None = use top_share.
    top_n: int | None = None
    # Audience share of the base, used when top_n is None.
    top_share: float = 0.1
    # Attributes compared; None = every column except the score.
    attributes: list[str] | None = None
    # Numeric attributes with more distinct values than this are cut into this many
    # quantile bins of the base; fewer distinct values are compared value by value.
    quantiles: int = 4
    # Categorical attributes keep their largest groups up to this many; the rest are
    # pooled as "other" so a long tail does not swamp the report.
    max_groups: int = 20
    # A group is under-represented when audience share / base share is below this
    # (0.8 is the common four-fifths rule of thumb); over-represented above its inverse.
    min_ratio: float = 0.8
    # Groups below this share of the base are reported but never flagged (too few to judge).
    min_base_share: float = 0.02

    def validate(self) -> None:
        if self.top_n is not None and self.top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {self.top_n}.")
        if self.top_n is None and not 0 < self.top_share <= 1:
            raise ValueError(f"top_share must be in (0, 1], got {self.top_share}.")
        if self.quantiles < 2:
            raise ValueError(f"quantiles must be at least 2, got {self.quantiles}.")
        if self.max_groups < 2:
            raise ValueError(f"max_groups must be at least 2, got {self.max_groups}.")
        if not 0 < self.min_ratio < 1:
            raise ValueError(f"min_ratio must be in (0, 1), got {self.min_ratio}.")


@dataclass
class GroupShare:
    # Group label: a category, a value, or a bin such as "30–41" (upper bound included).
    group: str
    # Customers of the group in the base.
    base_count: int
    # Group share of the base.
    base_share: float
    # Customers of the group in the audience (top-N).
    audience_count: int
    # Group share of the audience.
    audience_share: float
    # audience_share / base_share: 1 = represented as in the base, 0 = left out.
    ratio: float
    # "left out", "under-represented", "over-represented" or "" (as in the base, or too small
    # a group to judge).
    flag: str


@dataclass
class AttributeSpread:
    # Attribute (column) compared.
    attribute: str
    # "categorical" or "numeric" (binned into quantiles of the base).
    kind: str
    # One entry per group, largest first for categories, in bin order for numbers.
    groups: list[GroupShare]
    # Jensen-Shannon divergence (bits, 0 = same spread as the base, 1 = disjoint).
    js_divergence: float
    # Total variation distance: share of the audience that would have to change group to
    # match the base.
    total_variation: float
    # Groups flagged under-represented (left-out ones included).
    under_represented: list[str]
    # Groups of the base with nobody in the audience (among those large enough to judge).
    left_out: list[str]


@dataclass
class AudienceDiversity:
    # Customers in the base (the whole scored frame).
    base_size: int
    # Customers in the audience (the top-N by score).
    audience_size: int
    # Lowest score that made the audience.
    score_cutoff: float
    # One entry per compared attribute, most divergent first.
    attributes: list[AttributeSpread]
    # Settings that produced the comparison.
    config: AudienceConfig

    def flagged(self) -> list[dict[str, Any]]:
        """Every under- or over-represented group across attributes, worst ratio first."""
        rows = [
            {"attribute": spread.attribute, **dataclasses.asdict(group)}
            for spread in self.attributes
            for group in spread.groups
            if group.flag
        ]
        return sorted(rows, key=lambda row: row["ratio"])

    def to_frame(self) -> pd.DataFrame:
        """Long frame: attribute, group, counts, shares, ratio, flag."""
        return pd.DataFrame(
            [
                {"attribute": spread.attribute, **dataclasses.asdict(group)}
                for spread in self.attributes
                for group in spread.groups
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return json_ready(
            {
                "base_size": self.base_size,
                "audience_size": self.audience_size,
                "score_cutoff": self.score_cutoff,
                "attributes": [dataclasses.asdict(spread) for spread in self.attributes],
                "flagged": self.flagged(),
                "config": config_to_dict(self.config),
            }
        )


def audience_diversity(
    frame: pd.DataFrame, config: AudienceConfig | None = None
) -> AudienceDiversity:
    """How the top-N customers by score spread over each attribute compared with the whole
    base (every row of `frame`); ties at the cut go to the earlier row."""
    config = config or AudienceConfig()
    config.validate()
    require_columns(frame, [config.score])
    attributes = config.attributes or [c for c in frame.columns if c != config.score]
    require_columns(frame, attributes)
    scores = numeric_column(frame, config.score)
    if np.isnan(scores).any():
        label = frame.index[int(np.flatnonzero(np.isnan(scores))[0])]
        raise ValueError(f"Row {shown(label)}, column {config.score!r}: the score is empty.")
    size = config.top_n or max(1, int(round(len(frame) * config.top_share)))
    if size > len(frame):
        raise ValueError(f"top_n ({size}) is larger than the base ({len(frame)} customers).")
    chosen = np.zeros(len(frame), dtype=bool)
    top = np.argsort(-scores, kind="stable")[:size]
    chosen[top] = True
    spreads = [_attribute_spread(name, frame[name], chosen, config) for name in attributes]
    spreads.sort(key=lambda spread: -spread.js_divergence)
    return AudienceDiversity(
        base_size=len(frame),
        audience_size=size,
        score_cutoff=float(scores[top[-1]]),
        attributes=spreads,
        config=config,
    )


def _attribute_spread(
    name: str, column: pd.Series, chosen: np.ndarray, config: AudienceConfig
) -> AttributeSpread:
    groups, kind = _group_labels(column, config)
    base = groups.value_counts(sort=False)
    base = base[base > 0]
    if kind == "categorical":
        base = base.sort_values(ascending=False, kind="stable")
    audience = groups[chosen].value_counts().reindex(base.index, fill_value=0)
    p_base = base.to_numpy() / base.sum()
    p_audience = audience.to_numpy() / audience.sum()
    rows = []
    for label, n_base, n_aud, s_base, s_aud in zip(
        base.index, base.to_numpy(), audience.to_numpy(), p_base, p_audience, strict=True
    ):
        ratio = s_aud / s_base
        judged = s_base >= config.min_base_share
        flag = ""
        if judged and n_aud == 0:
            flag = "left out"
        elif judged and ratio < config.min_ratio:
            flag = "under-represented"
        elif judged and ratio > 1 / config.min_ratio:
            flag = "over-represented"
        rows.append(
            GroupShare(
                str(label), int(n_base), float(s_base), int(n_aud), float(s_aud), float(ratio), flag
            )
        )
    return AttributeSpread(
        attribute=name,
        kind=kind,
        groups=rows,
        js_divergence=_js_divergence(p_audience, p_base),
        total_variation=float(0.5 * np.abs(p_audience - p_base).sum()),
        under_represented=[g.group for g in rows if g.flag in ("left out", "under-represented")],
        left_out=[g.group for g in rows if g.flag == "left out"],
    )


def _group_labels(column: pd.Series, config: AudienceConfig) -> tuple[pd.Series, str]:
    """Group label of every customer: a quantile bin for numbers with many values, else
    the value itself (the largest `max_groups - 1` kept, the rest "other")."""
    missing = column.isna()
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > config.quantiles:
        bins, edges = pd.qcut(
            column, config.quantiles, labels=False, retbins=True, duplicates="drop"
        )
        names = [f"{edges[i]:g}–{edges[i + 1]:g}" for i in range(len(edges) - 1)]
        if missing.any():
            names.append("(missing)")
        codes = bins.fillna(len(names) - 1).astype(int)
        labels = pd.Series(pd.Categorical.from_codes(codes, pd.Index(names)), index=column.index)
        return labels, "numeric"
    labels = column.astype(object).where(~missing, "(missing)").astype(str)
    counts = labels.value_counts()
    if len(counts) > config.max_groups:
        kept = set(counts.index[: config.max_groups - 1])
        labels = labels.where(labels.isin(kept), "other")
    return labels, "categorical"


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    middle = (p + q) / 2

    def part(x: np.ndarray) -> float:
        used = x > 0
        return float((x[used] * np.log2(x[used] / middle[used])).sum())

    return max(0.0, 0.5 * part(p) + 0.5 * part(q))
