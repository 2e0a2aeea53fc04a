"""Reading segments: who is in them and how many, with small groups hidden and every shown
count rounded (the one rule for counts of customers on pages and in the API)."""

from typing import Any

from django.conf import settings
from django.db.models import Max, Min, Q, QuerySet
from django.utils.translation import gettext as _

from marketing.models import Customer
from marketing.segments import compile_rules


def segment_customers(rules: dict[str, Any] | None) -> QuerySet[Customer]:
    """The customers matching ``rules`` (raises ``SegmentRuleError`` for a bad tree)."""
    return Customer.objects.filter(compile_rules(rules))


def shown_count(count: int) -> int | None:
    """A count of customers as it may be shown anywhere: None below ``MIN_GROUP_SIZE`` (k),
    otherwise rounded to the nearest multiple of k.

    Hiding small counts alone is undone by subtraction: "everyone" minus "everyone but them"
    is them. Rounded to multiples of k, two shown counts whose groups differ by fewer than
    k people differ by 0 or by k, so a difference never tells a hidden group's size; it is
    always as consistent with nobody, or with a group large enough to be shown, as with a
    small one. Zero is hidden too, so "nobody" cannot be told from "a few people".
    """
    k = settings.MIN_GROUP_SIZE
    if count < k:
        return None
    return k * ((count + k // 2) // k)


def suppressed_count(count: int) -> dict[str, Any]:
    """``{"count", "display", "suppressed"}`` of a count by the rule of ``shown_count``."""
    shown = shown_count(count)
    if shown is None:
        return {
            "count": None,
            "display": _("fewer than %(count)s") % {"count": settings.MIN_GROUP_SIZE},
            "suppressed": True,
        }
    return {"count": shown, "display": f"{shown:,}", "suppressed": False}


# The live preview of unsaved rules reads customers in this many windows of ids...
ESTIMATE_WINDOWS = 10
# ... of this many consecutive ids each, spread evenly over the ids in use.
ESTIMATE_WINDOW_IDS = 1000


def id_windows() -> tuple[Q | None, float]:
    """A bounded sample of the customer base for live previews: ``(windows, scale)``.

    ``windows`` is None when the customer ids span at most ``ESTIMATE_WINDOWS *
    ESTIMATE_WINDOW_IDS`` (count everyone, exactly); otherwise a Q for ``ESTIMATE_WINDOWS``
    windows of consecutive ids spread evenly over the ids in use, and ``scale`` the factor
    from a count within them to an estimate for the whole base (the ids spanned over the ids
    covered: the windows' density of customers stands for the base's). Each window is a range
    scan of the primary key, so the work is the same at 10 million customers as at 10,000.
    """
    span = Customer.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if span["first"] is None:
        return None, 1.0
    first, ids = span["first"], span["last"] - span["first"] + 1
    covered = ESTIMATE_WINDOWS * ESTIMATE_WINDOW_IDS
    if ids <= covered:
        return None, 1.0
    step = (ids - ESTIMATE_WINDOW_IDS) // (ESTIMATE_WINDOWS - 1)
    windows = Q()
    for i in range(ESTIMATE_WINDOWS):
        start = first + i * step
        windows |= Q(pk__range=(start, start + ESTIMATE_WINDOW_IDS - 1))
    return windows, ids / covered


def segment_count_preview(rules: dict[str, Any] | None) -> dict[str, Any]:
    """``{"count", "display", "suppressed", "estimated"}`` for a live preview of ``rules``,
    which the builder asks for as the marketer types: never a count of the whole base.

    A small base is counted exactly; a larger one is estimated from the customers in the
    windows of ``id_windows``. The saved segment's exact count is a job
    (``marketing.services.figures``). An estimate goes through the small-count rule like any
    count.
    """
    members = segment_customers(rules)
    windows, scale = id_windows()
    if windows is None:
        return suppressed_count(members.count()) | {"estimated": False}
    return suppressed_count(round(members.filter(windows).count() * scale)) | {"estimated": True}
