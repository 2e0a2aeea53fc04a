"""One rate for taking data out: starting an export and downloading a file of customer rows.

The API and the pages count against the same budget per user (DRF's cache key for the
"export" scope), at ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["export"]``
(EXPORT_THROTTLE_RATE).
"""

from rest_framework.throttling import UserRateThrottle


class ExportThrottle(UserRateThrottle):
    scope = "export"
