"""Frequency cap: no offer is shown to a customer more than `cap` times in the last `days` days."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd


def capped(
    offer_ids: Iterable[Hashable],
    shown_times: Mapping[Hashable, Iterable[Any]],
    *,
    cap: int,
    days: float,
    now: datetime,
) -> set[Hashable]:
    """The offers of `offer_ids` already shown `cap` times or more in the `days` days up to
    `now`: one more show would break the cap, so they are left out of the next contact.

    `shown_times` maps an offer id to the times it was shown to this customer (datetimes,
    pandas timestamps or a numpy datetime64 array); offers missing from it were never shown.
    A show exactly `days` ago still counts; shows after `now` do not. The times and `now` must
    both carry a time zone or both not (comparing the two raises TypeError).
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1 show, got {cap!r}.")
    if not days > 0:
        raise ValueError(f"days must be above 0, got {days!r}.")
    end = pd.Timestamp(now)
    start = end - timedelta(days=days)
    over = set()
    for offer in offer_ids:
        shows = sum(start <= pd.Timestamp(t) <= end for t in shown_times.get(offer, ()))
        if shows >= cap:
            over.add(offer)
    return over
