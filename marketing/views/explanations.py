"""Explanation pages: "Which fields matter" on a model's page, "Why this score" on a
customer's page (read here, drawn by the template tags in ``templatetags/explanations.py``), and
the two POST views that start an explanation Job."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.generic import View

from marketing.models import Customer, ExplanationRun, Job, Purpose, TrainingRun
from marketing.roles import MARKETER, has_role
from marketing.selectors.consent import has_consent
from marketing.selectors.explanations import (
    default_training_run,
    latest_customer_explanation,
    latest_global_explanation,
)
from marketing.selectors.training import finished_training_runs, training_runs
from marketing.services.explanations import (
    DEFAULT_SAMPLE_SIZE,
    SAMPLE_LIMITS,
    ExplanationSetupError,
    explanation_run_create,
)
from marketing.stored_texts import translated, translated_html
from marketing.templatetags.money import percent_text
from marketing.views import explanation_charts
from marketing.views.mixins import RoleRequiredMixin
from marketing.views.model_charts import MODEL_NAMES

# GET parameter of the customer page naming the model to explain.
MODEL_PARAM = "explain_model"
# How an explanation was computed (recengine's method codes), in words.
METHODS = {
    "tree": pgettext_lazy("explanation method", "tree"),
    "permutation": pgettext_lazy("explanation method", "permutation"),
    "linear": pgettext_lazy("explanation method", "linear"),
}


class GlobalExplainForm(forms.Form):
    sample_size = forms.IntegerField(
        min_value=SAMPLE_LIMITS[0], max_value=SAMPLE_LIMITS[1], initial=DEFAULT_SAMPLE_SIZE
    )


class CustomerExplainForm(forms.Form):
    training_run = forms.ModelChoiceField(finished_training_runs())


class _PostOnly(RoleRequiredMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])


class ModelExplainView(_PostOnly):
    """Start the global importance of a model's fields."""

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        form = GlobalExplainForm(request.POST)
        target = reverse("model-detail", args=[run.pk]) + "#explain-global"
        if not form.is_valid():
            low, high = SAMPLE_LIMITS
            messages.error(
                request,
                _("Choose a sample of %(low)s to %(high)s customers.") % {"low": low, "high": high},
            )
            return redirect(target)
        try:
            explanation_run_create(
                training_run=run,
                scope=ExplanationRun.Scope.GLOBAL,
                sample_size=form.cleaned_data["sample_size"],
                by=request.user,
            )
        except ExplanationSetupError as exc:
            messages.error(request, translated(str(exc)))
        else:
            messages.success(request, _("Field importance is being computed."))
        return redirect(target)


class CustomerExplainView(_PostOnly):
    """Start the explanation of one customer's score by the chosen model."""

    def post(self, request, pk: int):
        customer = get_object_or_404(Customer, pk=pk)
        form = CustomerExplainForm(request.POST)
        url = reverse("customer-detail", args=[customer.pk])
        if not form.is_valid():
            messages.error(request, _("Choose a finished model to explain the score with."))
            return redirect(url + "#explain-customer")
        run = form.cleaned_data["training_run"]
        try:
            explanation_run_create(
                training_run=run,
                scope=ExplanationRun.Scope.CUSTOMER,
                customer=customer,
                by=request.user,
            )
        except ExplanationSetupError as exc:
            messages.error(request, translated(str(exc)))
        else:
            messages.success(request, _("The explanation is being computed."))
        return redirect(f"{url}?{MODEL_PARAM}={run.pk}#explain-customer")


# ---- page sections ----------------------------------------------------------------------------
def global_section(run: TrainingRun, user) -> dict[str, Any]:
    """What "Which fields matter" shows on the model's page."""
    explanation = latest_global_explanation(run)
    ctx: dict[str, Any] = {
        "run": run,
        "explanation": explanation,
        "finished": run.job.status == Job.Status.SUCCEEDED and bool(run.model_id),
        "can_launch": has_role(user, [MARKETER]),
        "default_sample": DEFAULT_SAMPLE_SIZE,
        "sample_limits": SAMPLE_LIMITS,
        "failure": _failure(explanation),
    }
    if explanation is not None and _has_result(explanation):
        result = explanation.result
        ctx.update(
            chart=explanation_charts.field_importance(result),
            model_rows=_model_rows(result, lambda part: part["max_local_accuracy_error"]),
            top_field=result["bert"]["fields"][0]["label"] if result["bert"]["fields"] else "",
        )
    return ctx


def customer_section(customer: Customer, user, requested: str | None) -> dict[str, Any]:
    """What "Why this score" shows on the customer's page; ``requested`` is the model the
    page names in its ``MODEL_PARAM`` parameter."""
    ctx: dict[str, Any] = {
        "customer": customer,
        "can_launch": has_role(user, [MARKETER]),
        "consented": has_consent(customer, Purpose.PROFILING),
        "models": list(finished_training_runs().order_by("-created_at", "-id")[:50]),
        "model_param": MODEL_PARAM,
    }
    if not ctx["consented"] or not ctx["models"]:
        return ctx
    chosen = None
    if requested and requested.isdigit():
        chosen = next((m for m in ctx["models"] if m.pk == int(requested)), None)
    chosen = chosen or default_training_run(customer)
    explanation = latest_customer_explanation(customer, chosen)
    ctx.update(chosen=chosen, explanation=explanation, failure=_failure(explanation))
    if explanation is not None and _has_result(explanation):
        result = explanation.result
        served = result.get("served")
        ctx.update(
            bert_chart=explanation_charts.waterfall(result["bert"]),
            baseline_chart=explanation_charts.waterfall(result["baseline"]),
            served=served,
            served_weights=served_weights(served),
            learned_from=result.get("learned_from", False),
            served_chart=explanation_charts.waterfall(served) if served else None,
            model_rows=_model_rows(result, lambda part: part["local_accuracy_error"]),
            offer=result.get("offer"),
            in_words=score_in_words(served or result["bert"], served=served is not None),
        )
    return ctx


def _failure(explanation: ExplanationRun | None) -> SafeString | str:
    """Why the explanation failed, in the reader's language ("" unless it failed)."""
    if explanation is None or explanation.job.status != Job.Status.FAILED:
        return ""
    return translated_html(explanation.job.message)


def _has_result(explanation: ExplanationRun) -> bool:
    return explanation.job.status == Job.Status.SUCCEEDED and all(
        key in explanation.result for key in ("bert", "baseline")
    )


def _model_rows(result: dict[str, Any], error_of) -> list[dict[str, Any]]:
    rows = []
    for key in ("bert", "baseline"):
        part = result[key]
        error = error_of(part)
        rows.append(
            {
                "key": key,
                "name": str(MODEL_NAMES[key]),
                "part": part,
                "error": error,
                "error_text": f"{error:.1e}",
                "method": METHODS.get(part["method"], part["method"]),
                "chance": percent_text(part.get("probability")),
            }
        )
    return rows


def score_in_words(explanation: dict[str, Any], *, served: bool = False) -> str:
    figures = {
        "chance": percent_text(explanation["probability"]),
        "logit": f"{explanation['logit']:.2f}",
        "typical": percent_text(explanation["base_probability"]),
        "typical_logit": f"{explanation['base_value']:.2f}",
    }
    if served:
        return (
            _(
                "The served model (BERT and LightGBM blended) gives this customer a %(chance)s "
                "chance of a response (log-odds %(logit)s), against %(typical)s for a typical "
                "customer (log-odds %(typical_logit)s)."
            )
            % figures
        )
    return (
        _(
            "BERT gives this customer a %(chance)s chance of a response (log-odds %(logit)s), "
            "against %(typical)s for a typical customer (log-odds %(typical_logit)s)."
        )
        % figures
    )


def served_weights(served: dict[str, Any] | None) -> str:
    """The served blend's weights of its members, named."""
    weights = (served or {}).get("weights") or {}
    return ", ".join(
        f"{MODEL_NAMES.get(name, name)} {weight:.2f}" for name, weight in weights.items()
    )
