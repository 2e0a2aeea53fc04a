"""The explanation sections of the model and customer pages (pages other views own); the
views read the sections (``views/explanations.py``), these tags only draw them."""

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("marketing/explanations/global.html", takes_context=True)
def model_explanations(context, section: dict[str, Any]) -> dict[str, Any]:
    """ "Which fields matter": global importance of the model's fields, BERT beside the
    baseline."""
    return {**section, "request": context["request"], "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("marketing/explanations/customer.html", takes_context=True)
def customer_explanations(context, section: dict[str, Any]) -> dict[str, Any]:
    """ "Why this score": the customer's score split into field contributions."""
    return {**section, "request": context["request"], "csrf_token": context.get("csrf_token")}
