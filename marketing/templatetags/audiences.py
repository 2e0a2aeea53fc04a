"""Template helpers for audiences and exports (used on pages other views own)."""

from typing import Any

from django import template

from marketing.selectors.audiences import left_out_in_words

register = template.Library()


@register.filter
def left_out_reasons(counts: dict[str, int] | None) -> list[dict[str, Any]]:
    return left_out_in_words(counts or {})
