from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recengine.frequency import capped

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def days_ago(*days: float) -> list[datetime]:
    return [NOW - timedelta(days=d) for d in days]


def test_it_caps_an_offer_shown_exactly_cap_times_in_the_window():
    shown = {"A": days_ago(1, 2, 3)}
    assert capped(["A"], shown, cap=3, days=7, now=NOW) == {"A"}


def test_it_leaves_an_offer_shown_one_time_fewer_than_the_cap():
    shown = {"A": days_ago(1, 2)}
    assert capped(["A"], shown, cap=3, days=7, now=NOW) == set()


def test_it_ignores_shows_older_than_the_window():
    shown = {"A": days_ago(1, 2, 7.5, 30)}
    assert capped(["A"], shown, cap=3, days=7, now=NOW) == set()


def test_it_counts_a_show_exactly_days_ago_but_not_one_after_now():
    shown = {"A": days_ago(7, 1), "B": days_ago(1, -1)}
    assert capped(["A", "B"], shown, cap=2, days=7, now=NOW) == {"A"}


def test_it_checks_only_the_offers_asked_about():
    shown = {"A": days_ago(1, 2), "B": days_ago(1, 2), "C": days_ago(1)}
    assert capped(["B", "C", "D"], shown, cap=2, days=7, now=NOW) == {"B"}


def test_it_reads_a_numpy_array_of_times():
    now = datetime(2025, 6, 30, 12, 0)
    shown = {7: np.array(["2025-06-29T10:00", "2025-06-20T10:00"], dtype="datetime64[s]")}
    assert capped([7], shown, cap=1, days=3, now=now) == {7}
    assert capped([7], shown, cap=2, days=3, now=now) == set()


@pytest.mark.parametrize("cap, days", [(0, 7), (3, 0)])
def test_it_refuses_a_cap_or_window_below_one(cap, days):
    with pytest.raises(ValueError):
        capped(["A"], {}, cap=cap, days=days, now=NOW)
