"""Reading segments: who is in them and how many, with small groups hidden."""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from marketing.models import Customer
from marketing.segments import compile_rules


def segment_customers(rules: dict[str, Any] | None) -> QuerySet[Customer]:
    """The customers matching ``rules`` (raises ``SegmentRuleError`` for a bad tree)."""
    return Customer.objects.filter(compile_rules(rules))


def suppressed_count(count: int) -> dict[str, Any]:
    """A count as it may be shown: below ``MIN_GROUP_SIZE`` it is hidden.

    Zero is hidden too, so a preview never tells "nobody" from "a few people": otherwise
    narrowing a rule until the count drops to 0 would confirm that a specific few exist.
    """
    k = settings.MIN_GROUP_SIZE
    if count < k:
        return {"count": None, "display": f"fewer than {k}", "suppressed": True}
    return {"count": count, "display": f"{count:,}", "suppressed": False}


def segment_count_preview(rules: dict[str, Any] | None) -> dict[str, Any]:
    """``{"count", "display", "suppressed"}`` for a live preview of ``rules``."""
    return suppressed_count(segment_customers(rules).count())
