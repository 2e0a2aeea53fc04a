"""One way to show a time on every page: how long ago, with the date and time on hover."""

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import formats, timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def moment(value: datetime | None) -> str:
    """``{{ job.created_at|moment }}``: "3 hours ago" in a ``<time>`` whose title is the
    date and time in the reader's format ("5 Dec 2026, 14:30"); "—" without a time."""
    if not value:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        formats.date_format(local, "DATETIME_FORMAT"),
        naturaltime(value),
    )
