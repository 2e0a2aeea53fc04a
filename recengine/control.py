"""Control groups: hold back a random share of an audience, then measure what the contact did.

`assign_control` picks who is held back: each customer's draw comes from a hash of the seed
and their key, so the same customer lands in the same group in a rerun, whatever the order
of the input. `incremental_lift` compares the response rates of the contacted and held-back
groups after the campaign, with a confidence interval, and says when the groups are too small
to tell. `minimum_detectable_lift` says beforehand how small a lift given group sizes can show.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

# Strata of the score-stratified assignment: control and contacted groups then hold the same
# mix of high and low scorers, so their response rates differ by the contact, not the mix.
STRATA = 10


# ---- who is held back ---------------------------------------------------------------------
def control_draws(keys: Sequence[str], seed: int) -> np.ndarray:
    """Each key's draw: 64 bits of blake2b(seed, key) as an unsigned integer.

    The draw depends on nothing but the seed and the key, so it survives reruns, reordering
    and a growing audience (Python's hash() is salted per process, so it would not).
    """
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest())
            for key in keys
        ),
        dtype=np.uint64,
        count=len(keys),
    )


def assign_control(
    keys: Sequence[str], scores: np.ndarray | None, share: float, seed: int
) -> np.ndarray:
    """True for each customer held back as control, in the order of `keys`.

    Without scores each customer is held back when their draw falls in the lowest `share` of
    the draw range: the control holds `share` of the audience up to chance, and a customer
    keeps their group when the audience grows. With scores the audience is split into score
    deciles (ties broken by draw) and each decile holds back its members with the lowest
    draws; the counts are rounded cumulatively over the deciles, so the whole audience holds
    back exactly round(share * n) and each decile round(share * n_decile) give or take one
    (exactly that when share * n_decile is whole). A grown audience can move decile edges,
    so stratified groups are stable under reruns and reordering but not under growth.
    """
    if not 0 < share <= 0.5:
        raise ValueError(
            f"share must be above 0 and at most 0.5 (the control cannot outnumber the "
            f"contacted customers), got {share!r}."
        )
    keys = [str(k) for k in keys]
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique: the same customer appears more than once.")
    draws = control_draws(keys, seed)
    if scores is None:
        return draws / 2.0**64 < share
    s = np.asarray(scores, dtype=float).ravel()
    if len(s) != len(keys):
        raise ValueError(f"'keys' has {len(keys)} rows but 'scores' has {len(s)}.")
    if not np.isfinite(s).all():
        raise ValueError(f"Row {int(np.flatnonzero(~np.isfinite(s))[0])}: the score is missing.")
    control = np.zeros(len(keys), dtype=bool)
    by_score = np.lexsort((draws, s))
    held_before = 0
    seen = 0
    for stratum in np.array_split(by_score, min(STRATA, max(len(keys), 1))):
        seen += len(stratum)
        held = _round_half_up(share * seen) - held_before
        held_before += held
        control[stratum[np.argsort(draws[stratum], kind="stable")[:held]]] = True
    return control


def _round_half_up(x: float) -> int:
    # Not round(): half-to-even takes 2.5 down but 3.5 up, so halves would go either way.
    # The tiny nudge makes 0.35 * 10 (3.4999... in floating point) count as the 3.5 it is.
    return math.floor(x + 0.5 + 1e-9)


# ---- what the contact did -----------------------------------------------------------------
@dataclass
class Lift:
    """The campaign's effect: contacted vs held-back response, with confidence intervals."""

    treated_n: int
    treated_conversions: int
    control_n: int
    control_conversions: int
    treated_rate: float
    control_rate: float
    # Absolute lift: treated_rate - control_rate, and its interval (Newcombe's hybrid score).
    lift: float
    lift_interval: tuple[float, float]
    # lift / control_rate (None when nobody in the control converted).
    relative_lift: float | None
    # Conversions the contact caused among the treated: lift * treated_n.
    incremental_conversions: float
    incremental_conversions_interval: tuple[float, float]
    # value_per_conversion * incremental conversions (None without a value).
    incremental_revenue: float | None
    incremental_revenue_interval: tuple[float, float] | None
    # Incremental revenue - cost_per_contact * treated_n (None without value and cost).
    incremental_profit: float | None
    incremental_profit_interval: tuple[float, float] | None
    # Incremental profit / contact cost (None without value and cost, or at zero cost).
    roi: float | None
    roi_interval: tuple[float, float] | None
    confidence: float
    # Whether the groups are large enough and the interval excludes no effect; `reason` says
    # why not, or what the campaign did.
    conclusive: bool
    reason: str

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def incremental_lift(
    treated_n: int,
    treated_conversions: int,
    control_n: int,
    control_conversions: int,
    *,
    value_per_conversion: float | None = None,
    cost_per_contact: float | None = None,
    confidence: float = 0.95,
    min_group: int = 30,
    min_conversions: int = 5,
) -> Lift:
    """The lift in response rate the contact caused, from the treated and control counts.

    The interval of the difference of two rates is Newcombe's hybrid score interval
    (Newcombe 1998, method 10), built from each rate's Wilson interval: unlike the normal
    approximation it stays inside [-1, 1] and keeps close to its stated coverage at the low
    response rates and small control groups campaigns have. The result is not conclusive when
    either group has fewer than `min_group` members or `min_conversions` conversions, or when
    the interval contains 0.
    """
    _check_group(treated_n, treated_conversions, "treated")
    _check_group(control_n, control_conversions, "control")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}.")
    for name, amount in (
        ("value_per_conversion", value_per_conversion),
        ("cost_per_contact", cost_per_contact),
    ):
        if amount is not None and not (math.isfinite(amount) and amount >= 0):
            raise ValueError(f"{name} must be a number of 0 or more, got {amount!r}.")
    z = _z(confidence)
    treated_rate, control_rate = treated_conversions / treated_n, control_conversions / control_n
    lift = treated_rate - control_rate
    low, high = newcombe_interval(
        treated_conversions, treated_n, control_conversions, control_n, z=z
    )

    revenue = revenue_interval = profit = profit_interval = roi = roi_interval = None
    if value_per_conversion is not None:
        revenue = value_per_conversion * lift * treated_n
        revenue_interval = (
            value_per_conversion * low * treated_n,
            value_per_conversion * high * treated_n,
        )
        if cost_per_contact is not None:
            cost = cost_per_contact * treated_n
            profit = revenue - cost
            profit_interval = (revenue_interval[0] - cost, revenue_interval[1] - cost)
            if cost > 0:
                roi = profit / cost
                roi_interval = (profit_interval[0] / cost, profit_interval[1] / cost)

    conclusive, reason = _verdict(
        (treated_n, treated_conversions, control_n, control_conversions),
        lift,
        (low, high),
        confidence,
        min_group,
        min_conversions,
    )
    return Lift(
        treated_n=treated_n,
        treated_conversions=treated_conversions,
        control_n=control_n,
        control_conversions=control_conversions,
        treated_rate=treated_rate,
        control_rate=control_rate,
        lift=lift,
        lift_interval=(low, high),
        relative_lift=lift / control_rate if control_rate > 0 else None,
        incremental_conversions=lift * treated_n,
        incremental_conversions_interval=(low * treated_n, high * treated_n),
        incremental_revenue=revenue,
        incremental_revenue_interval=revenue_interval,
        incremental_profit=profit,
        incremental_profit_interval=profit_interval,
        roi=roi,
        roi_interval=roi_interval,
        confidence=confidence,
        conclusive=conclusive,
        reason=reason,
    )


def wilson_interval(successes: int, n: int, *, z: float) -> tuple[float, float]:
    """Wilson's score interval of the rate successes / n."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    successes_1: int, n_1: int, successes_2: int, n_2: int, *, z: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of the difference of rates p1 - p2."""
    p1, p2 = successes_1 / n_1, successes_2 / n_2
    low_1, high_1 = wilson_interval(successes_1, n_1, z=z)
    low_2, high_2 = wilson_interval(successes_2, n_2, z=z)
    difference = p1 - p2
    return (
        difference - math.sqrt((p1 - low_1) ** 2 + (high_2 - p2) ** 2),
        difference + math.sqrt((high_1 - p1) ** 2 + (p2 - low_2) ** 2),
    )


def _verdict(
    counts: tuple[int, int, int, int],
    lift: float,
    interval: tuple[float, float],
    confidence: float,
    min_group: int,
    min_conversions: int,
) -> tuple[bool, str]:
    treated_n, treated_conversions, control_n, control_conversions = counts
    small = []
    for name, n, wins in (
        ("treated", treated_n, treated_conversions),
        ("control", control_n, control_conversions),
    ):
        if n < min_group:
            small.append(f"the {name} group has {n} members (at least {min_group} needed)")
        elif wins < min_conversions:
            small.append(
                f"the {name} group has {wins} conversions (at least {min_conversions} needed)"
            )
    low, high = interval
    level = f"{confidence:.0%}"
    span = f"{_points(low)} to {_points(high)} points"
    if small:
        return False, "Too small to tell: " + "; ".join(small) + "."
    if low <= 0 <= high:
        return False, (
            f"Too small to tell: the {level} interval of the lift ({span}) includes no effect."
        )
    direction = "raised" if lift > 0 else "lowered"
    return True, (
        f"The contact {direction} the response rate by {abs(lift) * 100:.2f} points "
        f"({level} interval {span})."
    )


def _points(rate_difference: float) -> str:
    return f"{rate_difference * 100:+.2f}"


def _check_group(n: int, conversions: int, name: str) -> None:
    if n < 1:
        raise ValueError(f"The {name} group is empty: {name}_n must be at least 1, got {n}.")
    if not 0 <= conversions <= n:
        raise ValueError(
            f"{name}_conversions must be between 0 and {name}_n ({n}), got {conversions}."
        )


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


# ---- before the campaign ------------------------------------------------------------------
def minimum_detectable_lift(
    control_n: int, treated_n: int, base_rate: float, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest absolute lift (in rate, e.g. 0.01 = 1 point) that groups of these sizes
    detect with probability `power` in a two-sided test at level `alpha`, for a response
    rate near `base_rate`: (z(1 - alpha / 2) + z(power)) * sqrt(p (1 - p) (1/n_c + 1/n_t)).
    """
    if control_n < 1 or treated_n < 1:
        raise ValueError(
            f"Both groups need at least 1 member, got control_n={control_n}, treated_n={treated_n}."
        )
    if not 0 < base_rate < 1:
        raise ValueError(f"base_rate must be between 0 and 1 (exclusive), got {base_rate!r}.")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be between 0 and 1, got {alpha!r}, {power!r}.")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(base_rate * (1 - base_rate) * (1 / control_n + 1 / treated_n))
