"""Template helpers for audiences and exports (used on pages other views own)."""

from typing import Any

from django import template

from marketing.models import Customer, Export
from marketing.selectors.audiences import customer_exports, left_out_in_words

register = template.Library()


@register.simple_tag
def exports_including(customer: Customer, limit: int = 20) -> list[Export]:
    """Finished exports whose file held the customer, newest first."""
    return list(customer_exports(customer)[:limit])


@register.filter
def left_out_reasons(counts: dict[str, int] | None) -> list[dict[str, Any]]:
    return left_out_in_words(counts or {})
