"""Showing texts stored in English in the reader's language (see ``marketing.stored_texts``)."""

from django import template
from django.utils.html import json_script

from marketing.stored_texts import catalogue, in_english, translated, translated_html

register = template.Library()


@register.filter
def stored_text(text: str | None, scope: str = "") -> str:
    """``{{ job.message|stored_text }}``; ``{{ problem.reason|stored_text:"reason" }}``."""
    return translated(text or "", scope)


@register.simple_tag(takes_context=True)
def stored_texts_script(context) -> str:
    """Once a page, outside English: the translations that the page's script applies to the
    texts job polling brings (``static/js/app.js``)."""
    request = context.get("request")
    if in_english() or request is None or getattr(request, "_stored_texts_sent", False):
        return ""
    request._stored_texts_sent = True
    return json_script(catalogue(), "stored-texts")


@register.filter
def stored_html(text: str | None, scope: str = "") -> str:
    """``stored_text`` as HTML, the values it quotes (names, uploaded values) marked
    ``translate="no"``: for a message in a page's text, not in an attribute."""
    return translated_html(text or "", scope)
