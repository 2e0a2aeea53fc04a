"""Rates per user, at ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]``.

- "export", for taking data out: starting an export and downloading a file of customer
  rows. The API and the pages count against the same budget (DRF's cache key for the
  scope), at EXPORT_THROTTLE_RATE.
- "next_best_offers": real-time offer choices (NBO_THROTTLE_RATE), so that one runaway
  client cannot take every worker of the server.
"""

from typing import Any

from rest_framework.throttling import UserRateThrottle


class CountingThrottle(UserRateThrottle):
    """DRF's rate per user, counted in constant time. DRF keeps every request's moment of
    the last period in one cache entry, read and written whole at each request: at the next
    best offers' 6,000 a minute that is a list of thousands of numbers per request. Here the
    cache holds a count per fixed window of one period; the requests of the last period are
    the current window's count plus the previous window's, weighed by the share of it still
    inside the period (requests taken as spread evenly over it)."""

    # Set by DRF from the rate ("6000/min": 6000 requests, 60 seconds).
    num_requests: int
    duration: int

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window, self.elapsed = divmod(self.timer() / self.duration, 1.0)
        current, previous = f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"
        counts = self.cache.get_many([current, previous])
        self.counts = (counts.get(previous, 0), counts.get(current, 0))
        if self.counts[0] * (1.0 - self.elapsed) + self.counts[1] >= self.num_requests:
            return False
        # Two periods: the window is the "previous" of the next one.
        if not self.cache.add(current, 1, 2 * self.duration):
            try:
                self.cache.incr(current)
            except ValueError:  # expired between the two calls
                self.cache.set(current, 1, 2 * self.duration)
        return True

    def wait(self) -> float | None:
        """Seconds until the last period holds fewer requests than the rate allows."""
        previous, current = self.counts
        if current < self.num_requests:
            if not previous:
                return 0.0
            # This window: once enough of the previous one has slid out of the period.
            needed = 1.0 - (self.num_requests - current) / previous
            return max(0.0, (needed - self.elapsed) * self.duration)
        # The next window, where this one is the previous.
        return (1.0 - self.elapsed + 1.0 - self.num_requests / current) * self.duration


class ExportThrottle(CountingThrottle):
    scope = "export"


class NextBestOfferThrottle(CountingThrottle):
    scope = "next_best_offers"
