"""Rates per user, at ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]``.

- "export", for taking data out: starting an export and downloading a file of customer
  rows. The API and the pages count against the same budget (DRF's cache key for the
  scope), at EXPORT_THROTTLE_RATE.
- "next_best_offers": real-time offer choices (NBO_THROTTLE_RATE), so that one runaway
  client cannot take every worker of the server.
"""

from rest_framework.throttling import UserRateThrottle


class ExportThrottle(UserRateThrottle):
    scope = "export"


class NextBestOfferThrottle(UserRateThrottle):
    scope = "next_best_offers"
