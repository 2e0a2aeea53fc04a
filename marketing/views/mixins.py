import math
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.roles import ALL_ROLES, MARKETER, has_role
from marketing.stored_texts import in_english
from marketing.throttles import ExportThrottle


class RoleRequiredMixin:
    """Page access by role: ``read_roles`` for GET/HEAD, ``write_roles`` for anything else."""

    read_roles: Iterable[str] = ALL_ROLES
    write_roles: Iterable[str] = (MARKETER,)

    def dispatch(self, request, *args, **kwargs):
        roles = (
            self.read_roles if request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        )
        if not has_role(request.user, roles):
            raise PermissionDenied(_("Your role does not allow this page."))
        return super().dispatch(request, *args, **kwargs)


class ExportThrottleMixin:
    """Exports and downloads from the pages, at the API's export rate and on the same count.

    Put after ``RoleRequiredMixin`` so that a refused role is not counted.
    """

    def dispatch(self, request, *args, **kwargs):
        throttle = ExportThrottle()
        handled = hasattr(self, request.method.lower())
        if handled and not throttle.allow_request(request, self):
            wait = math.ceil(throttle.wait() or 1)
            response = render(
                request,
                "429.html",
                {"rate": rate_text(throttle.rate), "wait_minutes": math.ceil(wait / 60)},
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return super().dispatch(request, *args, **kwargs)


# The period of a throttle rate ("30/hour", "2/min": DRF reads its first letter).
PERIODS = {
    "s": gettext_lazy("second"),
    "m": gettext_lazy("minute"),
    "h": gettext_lazy("hour"),
    "d": gettext_lazy("day"),
}


def rate_text(rate: str | None) -> str:
    """A throttle rate as the 429 page says it: as set in English ("30/hour"), its period in
    words of the reader's language otherwise."""
    number, __, period = (rate or "").partition("/")
    word = PERIODS.get(period[:1])
    if in_english() or word is None:
        return rate or ""
    return f"{number}/{word}"
