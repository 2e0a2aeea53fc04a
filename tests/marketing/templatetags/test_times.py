"""One time format: how long ago, with the date and time in the reader's format on hover."""

from datetime import UTC, datetime, timedelta

from django.template import Context, Template
from django.utils import timezone, translation

from marketing.templatetags.times import moment


def render(value) -> str:
    return Template("{% load times %}{{ value|moment }}").render(Context({"value": value}))


def test_a_time_reads_how_long_ago_with_the_date_and_time_on_hover(settings):
    settings.TIME_ZONE = "UTC"
    at = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
    with translation.override("en"):
        html = render(at)
    assert html.startswith('<time datetime="2026-12-05T14:30:00+00:00" title="5 Dec 2026, 14:30">')


def test_the_hover_follows_the_readers_language():
    at = timezone.now() - timedelta(hours=3)
    with translation.override("zh-hans"):
        html = render(at)
    assert f'title="{at.astimezone(timezone.get_current_timezone()).year}年' in html
    assert "小时" in html  # "3 hours ago" in Chinese


def test_no_time_reads_as_a_dash():
    assert moment(None) == "—"
