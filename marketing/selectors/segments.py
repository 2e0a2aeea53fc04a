"""Reading segments: who is in them and how many, with small groups hidden and every shown
count rounded (the one rule for counts of customers on pages and in the API)."""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

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
            "display": f"fewer than {settings.MIN_GROUP_SIZE}",
            "suppressed": True,
        }
    return {"count": shown, "display": f"{shown:,}", "suppressed": False}


def segment_count_preview(rules: dict[str, Any] | None) -> dict[str, Any]:
    """``{"count", "display", "suppressed"}`` for a live preview of ``rules``."""
    return suppressed_count(segment_customers(rules).count())
