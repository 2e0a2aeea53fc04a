"""Money and shares as the campaign pages show them: "€12,345" (whole units), "€1.50" for
unit prices, in the currency of settings.CURRENCY_SYMBOL, and "12%" for shares and ratios."""

import math

from django import template
from django.conf import settings

register = template.Library()


def currency() -> str:
    """The currency symbol; a code such as "CHF" is followed by a space ("CHF 1,200")."""
    symbol = settings.CURRENCY_SYMBOL
    return f"{symbol} " if symbol[-1:].isalpha() else symbol


def money_text(value: float | None, *, cents: bool = False) -> str:
    """The currency with thousands separators; a minus sign before it; "—" for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    amount = abs(float(value))
    text = f"{amount:,.2f}" if cents else f"{round(amount):,.0f}"
    sign = "−" if float(value) < 0 and text.strip("0.,") else ""
    return f"{sign}{currency()}{text}"


@register.simple_tag
def currency_symbol() -> str:
    """The site's currency as set (settings.CURRENCY_SYMBOL), for labels and hints."""
    return settings.CURRENCY_SYMBOL


@register.filter
def money(value: float | None) -> str:
    return money_text(value)


@register.filter
def money_cents(value: float | None) -> str:
    return money_text(value, cents=True)


def percent_text(share: float | None) -> str:
    """A share or ratio as a percentage: "12%", "1,250%" (an ROI), two significant digits
    below 1% ("0.31%") so a small share does not read as none; "—" for nothing (e.g. ROI
    without cost)."""
    if share is None or not math.isfinite(share):
        return "—"
    value = 100 * float(share)
    if value == 0 or abs(value) >= 1:
        return f"{value:,.0f}%"
    return f"{value:.2g}%"


@register.filter
def percent(value: float | None) -> str:
    return percent_text(value)
