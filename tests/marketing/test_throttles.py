"""The per-user rates: a count per window of one period, the previous window weighed by the
share of it still inside the period."""

from types import SimpleNamespace

import pytest
from django.core.cache import cache

from marketing.throttles import NextBestOfferThrottle

PERIOD = 60.0


@pytest.fixture
def clock(monkeypatch):
    now = SimpleNamespace(value=1000 * PERIOD)  # the start of a window
    monkeypatch.setattr(NextBestOfferThrottle, "timer", lambda self: now.value)
    monkeypatch.setattr(NextBestOfferThrottle, "THROTTLE_RATES", {"next_best_offers": "10/min"})
    return now


def asks(times: int, user: int = 7) -> list[bool]:
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user))
    return [NextBestOfferThrottle().allow_request(request, None) for _ in range(times)]


def test_it_allows_the_rate_and_refuses_the_next_request_until_the_period_allows_it(clock):
    clock.value += 0.5 * PERIOD
    assert asks(11) == [True] * 10 + [False]
    throttle = NextBestOfferThrottle()
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=7))
    assert not throttle.allow_request(request, None)
    # This window's 10 become the next one's previous: 10 x (1 - share) < 10 once any of
    # it has passed: a request refused halfway through waits the half left.
    assert throttle.wait() == pytest.approx(0.5 * PERIOD, abs=0.01)
    assert asks(1, user=8) == [True]  # another user counts on their own


def test_it_weighs_the_previous_window_by_the_share_still_inside_the_period(clock):
    assert asks(10) == [True] * 10  # the whole window's worth, at its start
    clock.value += 1.25 * PERIOD  # a quarter into the next window: 7.5 of them count

    assert asks(4) == [True, True, True, False]  # 7.5 + 2 < 10, 7.5 + 3 is not

    throttle = NextBestOfferThrottle()
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=7))
    assert not throttle.allow_request(request, None)
    # Room for one more once the previous window's part falls below 7: at 3/10 of the
    # window, 0.05 of a period later.
    assert throttle.wait() == pytest.approx(0.05 * PERIOD)
    clock.value += 0.06 * PERIOD
    assert asks(1) == [True]


def test_it_keeps_one_number_per_window_whatever_the_rate(clock, monkeypatch):
    monkeypatch.setattr(NextBestOfferThrottle, "THROTTLE_RATES", {"next_best_offers": "100000/min"})
    assert all(asks(500))
    key = NextBestOfferThrottle.cache_format % {"scope": "next_best_offers", "ident": 7}
    assert cache.get(f"{key}:1000") == 500
