"""Template helpers for audiences and exports (used on pages other views own)."""

from typing import Any

from django import template

from marketing.selectors.audiences import finished_export_warning, left_out_in_words

register = template.Library()


@register.filter
def left_out_reasons(counts: dict[str, int] | None) -> list[dict[str, Any]]:
    return left_out_in_words(counts or {})


@register.filter
def size_warning(export: Any) -> str:
    """The warning for a finished export with fewer rows than its platform needs matched."""
    return finished_export_warning(export)
