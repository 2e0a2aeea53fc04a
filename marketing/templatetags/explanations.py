"""The explanation sections of the model and customer pages (pages other views own)."""

from typing import Any

from django import template

from marketing.models import Customer, TrainingRun
from marketing.views.explanations import MODEL_PARAM, customer_section, global_section

register = template.Library()


@register.inclusion_tag("marketing/explanations/global.html", takes_context=True)
def model_explanations(context, run: TrainingRun) -> dict[str, Any]:
    """"Which fields matter": global importance of the model's fields, BERT beside the
    baseline."""
    request = context["request"]
    return {**global_section(run, request.user), "request": request,
            "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("marketing/explanations/customer.html", takes_context=True)
def customer_explanations(context, customer: Customer) -> dict[str, Any]:
    """"Why this score": the customer's score split into field contributions."""
    request = context["request"]
    section = customer_section(customer, request.user, request.GET.get(MODEL_PARAM))
    return {**section, "request": request, "csrf_token": context.get("csrf_token"),
            "model_param": MODEL_PARAM}
