"""Campaign profit planning: what contacting the top of a model's ranking is expected to earn.

Before spending: `plan_campaign(scores, CampaignEconomics(...))` turns one score per customer
into expected conversions, revenue, cost, profit and ROI at every targeting depth (customers
sorted by score, best first), with the profit-maximising depth, the depth the budget pays
for, and random targeting as the reference. `backtest` measures the same curve on known
outcomes (a held-out test set). After the campaign: `realised_roi` puts the
actual responses of the targeted customers beside the forecast. Where the data holds a
treatment and a control group, `recengine.uplift` estimates the effect of the contact itself
and the planner can rank by it (`kind="uplift"`).

The economics and their rules live in `recengine.economics`.

Scores are used as given. A response score is read as the calibrated probability that the
customer converts when contacted; an uplift score as the calibrated change in that probability
that the contact causes. Nothing here re-calibrates them: probabilities that run high or low
shift the expected revenue, the profit and with them the best depth, which is why
`realised_roi` reports the forecast against the actual outcome decile by decile.

Depth is given both as a count of contacts and as a percentage of the scored customers.
Depth 0 means the campaign is not run: no contact cost and no fixed cost.
The plan, backtest and realised-ROI functions return JSON-ready dicts
(floats, ints, lists; None where a ratio is undefined, such as ROI with no cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recengine.economics import CampaignEconomics

ScoreKind = Literal["probability", "uplift"]
TABLE_DEPTHS_PCT = (5, 10, 20, 30, 50, 100)
CALIBRATION_NOTE = (
    "Scores are used as calibrated probabilities (uplift: calibrated changes in probability); "
    "expected conversions are their sums, so miscalibrated scores shift every money figure."
)


# ---- the profit curve -----------------------------------------------------------------------
@dataclass(frozen=True)
class ProfitCurve:
    """Expected results of contacting the k best-scored customers; index k = 0..n contacts."""

    economics: CampaignEconomics
    # Expected conversions among the top k (incremental conversions for uplift scores).
    conversions: np.ndarray
    # Expected conversions of k customers picked at random: k * base_rate.
    random_conversions: np.ndarray
    # Expected conversion rate (or uplift) of a customer picked at random.
    base_rate: float
    # "probability" (response scores) or "uplift".
    kind: ScoreKind = "probability"

    @property
    def customers(self) -> int:
        return len(self.conversions) - 1

    @property
    def contacts(self) -> np.ndarray:
        return np.arange(len(self.conversions))

    @property
    def revenue(self) -> np.ndarray:
        return self.economics.value_per_conversion * self.conversions

    @property
    def cost(self) -> np.ndarray:
        return self.economics.campaign_cost(self.contacts)

    @property
    def profit(self) -> np.ndarray:
        return self.revenue - self.cost

    @property
    def random_profit(self) -> np.ndarray:
        return self.economics.value_per_conversion * self.random_conversions - self.cost

    def best_contacts(self, limit: int | None = None, random: bool = False) -> int:
        """Contacts (1..limit) with the highest profit; the fewest contacts among ties."""
        limit = self.customers if limit is None else min(limit, self.customers)
        if limit < 1:
            return 0
        profit = (self.random_profit if random else self.profit)[1 : limit + 1]
        # Sums of floats make exact ties differ in the last digits; treat those as ties.
        best = profit.max()
        return 1 + int(np.argmax(profit >= best - 1e-9 * max(1.0, abs(best))))

    def at(self, contacts: int, random: bool = False) -> dict:
        """Every figure at one depth, JSON-ready; `random=True` gives random targeting's."""
        if not 0 <= contacts <= self.customers:
            raise ValueError(f"contacts must be between 0 and {self.customers}, got {contacts}.")
        conversions = float((self.random_conversions if random else self.conversions)[contacts])
        cost = float(self.cost[contacts])
        profit = self.economics.value_per_conversion * conversions - cost
        row = {
            "contacts": int(contacts),
            "depth_pct": 100.0 * contacts / self.customers,
            "expected_conversions": conversions,
            "revenue": self.economics.value_per_conversion * conversions,
            "cost": cost,
            "profit": profit,
            "roi": profit / cost if cost > 0 else None,
        }
        if random:
            return row
        random_conversions = float(self.random_conversions[contacts])
        random_profit = float(self.random_profit[contacts])
        return {
            **row,
            "random_conversions": random_conversions,
            "random_profit": random_profit,
            "profit_over_random": profit - random_profit,
            "lift": conversions / random_conversions if random_conversions > 0 else None,
        }


def profit_curve(
    scores: Sequence[float] | np.ndarray,
    economics: CampaignEconomics,
    *,
    kind: ScoreKind = "probability",
    base_rate: float | None = None,
) -> ProfitCurve:
    """The expected profit curve of ranking customers by `scores` (best first).

    `base_rate` is the expected rate of a random customer for the random reference; by
    default the mean score, which is what the same calibrated model expects of a random pick.
    """
    s = checked_scores(scores, kind)
    lowest = -1.0 if kind == "uplift" else 0.0
    if base_rate is None:
        base_rate = float(s.mean())
    elif not (math.isfinite(base_rate) and lowest <= base_rate <= 1):
        raise ValueError(f"base_rate must be a {kind} rate ({lowest:g}..1), got {base_rate!r}.")
    ranked = np.sort(s)[::-1]
    conversions = np.concatenate([[0.0], np.cumsum(ranked)])
    random_conversions = np.arange(len(s) + 1) * base_rate
    return ProfitCurve(economics, conversions, random_conversions, float(base_rate), kind)


def contacts_at_pct(customers: int, depth_pct: float) -> int:
    """Contacts at a depth given in percent of the customers (at least 1 above 0 %)."""
    if not 0 <= depth_pct <= 100:
        raise ValueError(f"depth_pct must be between 0 and 100, got {depth_pct!r}.")
    if depth_pct == 0:
        return 0
    return max(1, int(round(customers * depth_pct / 100)))


def plan_campaign(
    scores: Sequence[float] | np.ndarray,
    economics: CampaignEconomics,
    *,
    kind: ScoreKind = "probability",
    base_rate: float | None = None,
    table_depths_pct: Sequence[float] = TABLE_DEPTHS_PCT,
) -> dict:
    """The JSON-ready campaign plan for one score per customer.

    Keys: `curve` (arrays at every whole percent 1..100 for charts: depth_pct, contacts,
    expected_conversions, revenue, cost, profit, roi, random_profit, random_conversions,
    lift), `table` (rows at `table_depths_pct`), `best` (profit-maximising depth over every
    contact count), `budget` (the most contacts the budget pays for and the best depth
    within it) and `random` (the same two depths for random targeting).
    """
    return plan_from_curve(
        profit_curve(scores, economics, kind=kind, base_rate=base_rate), table_depths_pct
    )


def plan_from_curve(
    curve: ProfitCurve, table_depths_pct: Sequence[float] = TABLE_DEPTHS_PCT
) -> dict:
    """`plan_campaign` for a profit curve already built (the caller keeps the curve to read
    other depths from it without sorting the scores again)."""
    economics, kind = curve.economics, curve.kind
    n = curve.customers
    depths = list(range(1, 101))
    rows = [curve.at(contacts_at_pct(n, pct)) for pct in depths]
    chart = {
        key: [row[key] for row in rows]
        for key in (
            "contacts",
            "expected_conversions",
            "revenue",
            "cost",
            "profit",
            "roi",
            "random_conversions",
            "random_profit",
            "lift",
        )
    }
    chart = {"depth_pct": [float(p) for p in depths], **chart}
    affordable = economics.affordable_contacts(n)
    best = curve.best_contacts()
    random_best = curve.best_contacts(random=True)
    return {
        "kind": kind,
        "customers": n,
        "base_rate": curve.base_rate,
        "economics": economics.as_dict(),
        "note": CALIBRATION_NOTE,
        "curve": chart,
        "table": [curve.at(contacts_at_pct(n, pct)) for pct in table_depths_pct],
        "best": _decision(curve, best),
        "budget": _budget_section(curve, affordable, random=False),
        "random": {
            "best": _decision(curve, random_best, random=True),
            "budget": _budget_section(curve, affordable, random=True),
        },
    }


def _decision(curve: ProfitCurve, contacts: int, random: bool = False) -> dict:
    row = curve.at(contacts, random=random)
    return {**row, "worth_running": contacts > 0 and row["profit"] > 0}


def _budget_section(curve: ProfitCurve, affordable: int, random: bool) -> dict:
    economics = curve.economics
    reason = None
    if economics.budget is None:
        reason = "No budget given: every customer is affordable."
    elif affordable == 0:
        reason = (
            "The budget does not cover the fixed cost."
            if economics.budget < economics.fixed_cost
            else "The budget left after the fixed cost does not pay for one contact."
        )
    best = curve.best_contacts(affordable, random=random)
    return {
        "limit": economics.budget,
        "max_contacts": affordable,
        "max_depth_pct": 100.0 * affordable / curve.customers,
        "at_max_contacts": curve.at(affordable, random=random),
        "best_within_budget": _decision(curve, best, random=random),
        "reason": reason,
    }


def backtest(
    scores: Sequence[float] | np.ndarray,
    converted: Sequence[Any] | np.ndarray,
    economics: CampaignEconomics,
    *,
    kind: ScoreKind = "probability",
) -> dict:
    """The profit curve measured on known outcomes (e.g. a held-out test set).

    Unlike `plan_campaign`, which a model's own probabilities always show above random,
    this counts the actual conversions among the top k and compares with k times the actual
    conversion rate, so it tells whether the ranking really beats random targeting.
    Arrays at every whole percent 1..100: depth_pct, contacts, actual_conversions,
    actual_profit, random_profit, profit_over_random.
    """
    s = checked_scores(scores, kind)
    y = checked_binary(converted, "converted")
    same_length(s, y, "scores", "converted")
    order = np.argsort(-s, kind="stable")
    actual = np.concatenate([[0.0], np.cumsum(y[order])])
    curve = ProfitCurve(
        economics, actual, np.arange(len(s) + 1) * float(y.mean()), float(y.mean()), kind
    )
    contacts = [contacts_at_pct(len(s), pct) for pct in range(1, 101)]
    profit = [float(curve.profit[k]) for k in contacts]
    random_profit = [float(curve.random_profit[k]) for k in contacts]
    return {
        "customers": len(s),
        "actual_rate": float(y.mean()),
        "depth_pct": [float(p) for p in range(1, 101)],
        "contacts": contacts,
        "actual_conversions": [float(actual[k]) for k in contacts],
        "actual_profit": profit,
        "random_profit": random_profit,
        "profit_over_random": [a - b for a, b in zip(profit, random_profit, strict=True)],
        "best": curve.at(curve.best_contacts()),
    }


# ---- after the campaign ---------------------------------------------------------------------
def realised_roi(
    forecast: Sequence[float] | np.ndarray,
    converted: Sequence[Any] | np.ndarray,
    economics: CampaignEconomics,
    *,
    values: Sequence[float] | np.ndarray | None = None,
    n_bins: int = 10,
) -> dict:
    """The targeted customers' actual results beside the forecast that chose them.

    `forecast`: each contacted customer's probability when the campaign was planned;
    `converted`: whether they converted (0/1, bool or yes/no); `values`: optionally what each
    conversion actually earned (rows that did not convert must hold 0 or nothing). Without
    values, every conversion earns `economics.value_per_conversion`.
    Returns forecast, actual and difference (conversions, revenue, cost, profit, roi,
    conversion_rate), the 95 % range of conversions the forecast allows for, and per-decile
    (by forecast, highest first) forecast vs actual conversion rates.
    """
    p = checked_scores(forecast, "probability", column="forecast")
    y = checked_binary(converted, "converted")
    same_length(p, y, "forecast", "converted")
    earned = y * economics.value_per_conversion
    if values is not None:
        earned = _checked_values(values, y)
    cost = economics.campaign_cost(len(p))
    forecast_part = _results(
        float(p.sum()), economics.value_per_conversion * float(p.sum()), cost, len(p)
    )
    actual_part = _results(float(y.sum()), float(earned.sum()), cost, len(p))
    spread = math.sqrt(float((p * (1 - p)).sum()))
    low, high = p.sum() - 1.96 * spread, p.sum() + 1.96 * spread
    return {
        "contacts": len(p),
        "economics": economics.as_dict(),
        "forecast": forecast_part,
        "actual": actual_part,
        "difference": {
            k: (
                None
                if actual_part[k] is None or forecast_part[k] is None
                else actual_part[k] - forecast_part[k]
            )
            for k in forecast_part
        },
        "expected_conversions_range": [float(max(low, 0.0)), float(high)],
        "within_expected_range": bool(low <= y.sum() <= high),
        "deciles": _forecast_deciles(p, y, n_bins),
    }


def _results(conversions: float, revenue: float, cost: float, contacts: int) -> dict:
    profit = revenue - cost
    return {
        "conversions": conversions,
        "conversion_rate": conversions / contacts,
        "revenue": revenue,
        "cost": cost,
        "profit": profit,
        "roi": profit / cost if cost > 0 else None,
    }


def _forecast_deciles(p: np.ndarray, y: np.ndarray, n_bins: int) -> list[dict]:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}.")
    order = np.argsort(-p, kind="stable")
    out = []
    for number, rows in enumerate(np.array_split(order, min(n_bins, len(p))), start=1):
        out.append(
            {
                "decile": number,
                "customers": len(rows),
                "forecast_rate": float(p[rows].mean()),
                "actual_rate": float(y[rows].mean()),
                "forecast_conversions": float(p[rows].sum()),
                "actual_conversions": int(y[rows].sum()),
            }
        )
    return out


def _checked_values(values: Sequence[float] | np.ndarray, y: np.ndarray) -> np.ndarray:
    v = _floats(values, "value")
    same_length(v, y, "value", "converted")
    for i in range(len(v)):
        if y[i] == 1 and not (math.isfinite(v[i]) and v[i] >= 0):
            raise ValueError(
                f"Row {i}, column 'value': {float(v[i])!r} is not a value a conversion can earn "
                "(a number of 0 or more)."
            )
        if y[i] == 0 and not (math.isnan(v[i]) or v[i] == 0):
            raise ValueError(
                f"Row {i}, column 'value': {float(v[i])!r} on a customer who did not convert "
                "(leave it empty or 0)."
            )
    return np.where(y == 1, v, 0.0)


# ---- input checks ---------------------------------------------------------------------------
def checked_scores(
    scores: Sequence[float] | np.ndarray, kind: ScoreKind = "probability", column: str = "score"
) -> np.ndarray:
    """Scores as floats; a clear error naming the first bad row otherwise."""
    if kind not in ("probability", "uplift"):
        raise ValueError(f"kind must be 'probability' or 'uplift', got {kind!r}.")
    s = _floats(scores, column)
    if len(s) == 0:
        raise ValueError(f"No customers: column '{column}' is empty.")
    low = -1.0 if kind == "uplift" else 0.0
    bad = np.flatnonzero(~np.isfinite(s) | (s < low) | (s > 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"Row {i}, column '{column}': {float(s[i])!r} is not a {kind} "
            f"(between {low:g} and 1); {bad.size} row(s) out of range."
        )
    return s


def checked_binary(values: Sequence[Any] | np.ndarray | pd.Series, column: str) -> np.ndarray:
    """0/1 per row from 0/1, booleans or yes/no/true/false text; errors name the bad row."""
    raw = _one_per_row(values, column)
    if raw.dtype.kind in "biuf" and np.isin(raw, (0, 1)).all():
        return raw.astype(np.int64)
    words = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "y": 1, "n": 0}
    out = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        if isinstance(value, str) and value.strip().lower() in words:
            out[i] = words[value.strip().lower()]
        elif isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating) and (
            value in (0, 1)
        ):
            out[i] = int(value)
        else:
            raise ValueError(
                f"Row {i}, column '{column}': {_plain(value)!r} is not 0/1 (or yes/no)."
            )
    return out


def _floats(values: Sequence[float] | np.ndarray, column: str) -> np.ndarray:
    raw = _one_per_row(values, column)
    if raw.dtype.kind in "iuf":
        return raw.astype(float)
    out = np.empty(len(raw), dtype=float)
    for i, value in enumerate(raw):
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            if value is None:
                out[i] = math.nan
                continue
            raise ValueError(f"Row {i}, column '{column}': {_plain(value)!r} is not a number.")
        out[i] = float(value)
    return out


def _one_per_row(values: Any, column: str) -> np.ndarray:
    """A 1-D array; mixed input stays as objects so text never swallows the numbers."""
    raw = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if raw.dtype.kind in "USO":
        raw = np.asarray(
            values.to_numpy() if isinstance(values, pd.Series) else values, dtype=object
        )
    if raw.ndim != 1:
        raise ValueError(f"Column '{column}' must hold one value per row, got shape {raw.shape}.")
    return raw


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for readable error messages."""
    return value.item() if isinstance(value, np.generic) else value


def same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"'{name_a}' has {len(a)} rows but '{name_b}' has {len(b)}.")
