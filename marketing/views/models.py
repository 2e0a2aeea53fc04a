"""Click model pages: runs list, train form, run detail with charts, scoring of segments."""

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.generic import FormView, ListView, TemplateView, View

from marketing.models import DriftCheck, Job, Offer, ScoringRun, Segment, TrainingRun
from marketing.selectors.champions import (
    champions,
    latest_drift_check,
    latest_promotion,
    use_case_promotions,
    use_case_runs,
)
from marketing.selectors.segments import suppressed_count
from marketing.selectors.training import (
    EXCLUSION_REASONS,
    scorer_choices,
    scoring_runs,
    top_scores,
    training_runs,
)
from marketing.services.champions import (
    PromotionError,
    model_promote,
    model_rollback,
    test_figures,
)
from marketing.services.monitoring import (
    MonitoringError,
    challenger_compare_start,
    drift_check_start,
    latest_comparison,
)
from marketing.services.scoring import ScoringSetupError, scoring_run_create
from marketing.services.training import (
    base_model_choices,
    training_run_create,
    training_run_retrain,
)
from marketing.services.training_params import TrainingSetupError, TrainParams, param_bounds
from marketing.stored_texts import translated, translated_html
from marketing.views import model_charts
from marketing.views.explanations import global_section
from marketing.views.jobs import can_cancel, duration_text
from marketing.views.mixins import RoleRequiredMixin

DEFAULTS = TrainParams()
# Versions and promotions a use case's history page shows at most (newest kept).
HISTORY_VERSIONS = 50
PARAM_LABELS = {
    "epochs": gettext_lazy("Epochs"),
    "batch_size": gettext_lazy("Batch size"),
    "learning_rate": gettext_lazy("Learning rate"),
    "max_rows": gettext_lazy("Training rows at most"),
    "max_test_rows": gettext_lazy("Test rows at most"),
    "max_length": gettext_lazy("Longest text (tokens)"),
    "frozen_layers": gettext_lazy("Frozen layers"),
    "num_layers": gettext_lazy("Encoder layers kept"),
    "keep_fields": gettext_lazy("Flagged fields kept"),
    "time_budget_s": gettext_lazy("Time budget (s)"),
    "patience": gettext_lazy("Patience (validations)"),
    "seed": gettext_lazy("Seed"),
    "threads": gettext_lazy("CPU threads"),
}

AUTO = forms.NumberInput(attrs={"placeholder": pgettext_lazy("a setting", "auto")})


class TrainForm(forms.Form):
    time_budget_minutes = forms.IntegerField(
        **param_bounds("time_budget_s", unit=60),
        initial=DEFAULTS.time_budget_s // 60,
        label=gettext_lazy("Time budget (minutes)"),
        help_text=gettext_lazy(
            "The most training may take. Rows, layers and passes are picked for this "
            "budget and the worker's hardware; training stops at the budget and keeps the best "
            "model so far."
        ),
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy("Leave empty to name it after the offer and target."),
    )
    segment = forms.ModelChoiceField(
        Segment.objects.all(),
        required=False,
        label=gettext_lazy("Segment"),
        empty_label=gettext_lazy("All customers"),
        help_text=gettext_lazy(
            "Customers to learn from. Only those with a valid model-training consent "
            "are used; the others are counted by reason."
        ),
    )
    offer = forms.ModelChoiceField(
        Offer.objects.all(),
        required=False,
        label=gettext_lazy("Offer"),
        empty_label=gettext_lazy("Every offer (multi-offer model)"),
        help_text=gettext_lazy(
            "One offer: a model for that campaign. Every offer: the offer's title, "
            "category and price become part of the input."
        ),
    )
    target = forms.ChoiceField(
        choices=TrainingRun.Target.choices,
        initial=TrainingRun.Target.CONVERSION,
        widget=forms.RadioSelect,
        label=gettext_lazy("Response to predict"),
    )
    base_model = forms.ChoiceField(
        choices=(),
        label=gettext_lazy("Base model"),
        help_text=gettext_lazy("The pretrained encoder that reads the customer text."),
    )
    mode = forms.ChoiceField(
        choices=TrainingRun.Mode.choices,
        initial=TrainingRun.Mode.LORA,
        widget=forms.RadioSelect,
        label=gettext_lazy("Training mode"),
    )
    epochs = forms.IntegerField(
        required=False,
        **param_bounds("epochs"),
        widget=AUTO,
        label=gettext_lazy("Epochs"),
        help_text=gettext_lazy(
            "Passes over the training rows at most. Empty: as many as the budget allows; "
            "training stops early when the validation AUC stops improving."
        ),
    )
    batch_size = forms.IntegerField(
        **param_bounds("batch_size"),
        initial=DEFAULTS.batch_size,
        label=gettext_lazy("Batch size"),
        help_text=gettext_lazy("Rows per step."),
    )
    learning_rate = forms.FloatField(
        required=False,
        **param_bounds("learning_rate"),
        widget=forms.NumberInput(attrs={"placeholder": pgettext_lazy("a setting", "auto")}),
        label=gettext_lazy("Learning rate"),
        help_text=gettext_lazy("Empty: 0.001 for LoRA and frozen, 0.0001 for full fine-tuning."),
    )
    max_rows = forms.IntegerField(
        required=False,
        **param_bounds("max_rows"),
        widget=AUTO,
        label=gettext_lazy("Training rows at most"),
        help_text=gettext_lazy(
            "A stratified sample when there are more. Empty: as many as the budget allows."
        ),
    )
    max_length = forms.IntegerField(
        **param_bounds("max_length"),
        initial=DEFAULTS.max_length,
        label=gettext_lazy("Longest text (tokens)"),
        help_text=gettext_lazy("A customer's text is usually 30–50 tokens."),
    )
    num_layers = forms.IntegerField(
        required=False,
        **param_bounds("num_layers"),
        widget=AUTO,
        label=gettext_lazy("Encoder layers kept"),
        help_text=gettext_lazy(
            "From the bottom; fewer train and score faster. Empty: 3 on a CPU, all on a GPU."
        ),
    )
    frozen_layers = forms.IntegerField(
        required=False,
        **param_bounds("frozen_layers"),
        widget=AUTO,
        label=gettext_lazy("Frozen layers"),
        help_text=gettext_lazy(
            "Lowest encoder layers left as they are and computed once: much faster. "
            "Empty: 2 on a CPU, none on a GPU."
        ),
    )
    keep_fields = forms.CharField(
        required=False,
        max_length=2000,
        label=gettext_lazy("Keep flagged fields"),
        help_text=gettext_lazy(
            "Before training, every profile field that alone predicts the outcome "
            "almost perfectly, or holds a date after the response, is flagged and left out. "
            "Name here (comma-separated) the flagged fields to keep knowingly."
        ),
    )

    PARAMS = (
        "epochs",
        "batch_size",
        "learning_rate",
        "max_rows",
        "max_length",
        "num_layers",
        "frozen_layers",
    )
    ADVANCED = PARAMS
    EXTRA = ("time_budget_minutes", "keep_fields")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = base_model_choices()
        self.fields["base_model"].choices = [(c, c.removeprefix("packaged:")) for c in choices]
        self.fields["base_model"].initial = settings.CLICK_MODEL_BASE
        offers = list(Offer.objects.all()[:2])
        if len(offers) == 1:
            self.fields["offer"].initial = offers[0].pk

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **{name: data[name] for name in self.PARAMS if data[name] is not None},
            "time_budget_s": data["time_budget_minutes"] * 60,
            "keep_fields": data["keep_fields"],
        }

    def main_fields(self):
        return [f for f in self if f.name not in (*self.ADVANCED, "keep_fields")]

    def param_fields(self):
        return [self["keep_fields"]]

    def advanced_fields(self):
        return [self[name] for name in self.ADVANCED]


class ScoreForm(forms.Form):
    segment = forms.ModelChoiceField(
        Segment.objects.all(),
        required=False,
        empty_label=gettext_lazy("All customers"),
        label=gettext_lazy("Segment to score"),
    )
    scorer = forms.ChoiceField(
        choices=ScoringRun.Scorer.choices,
        initial=ScoringRun.Scorer.SERVED,
        required=False,
        label=gettext_lazy("Scorer"),
    )


class ModelListView(RoleRequiredMixin, ListView):
    template_name = "marketing/models/list.html"
    context_object_name = "runs"
    paginate_by = 25

    def get_queryset(self):
        return training_runs()

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["in_use"] = set(champions().values())
        return ctx


class TrainingRunCreateView(RoleRequiredMixin, FormView):
    template_name = "marketing/models/train.html"
    form_class = TrainForm
    read_roles = RoleRequiredMixin.write_roles

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["defaults"] = asdict(DEFAULTS)
        ctx["default_minutes"] = DEFAULTS.time_budget_s // 60
        ctx["has_offers"] = Offer.objects.exists()
        ctx["hardware"] = training_hardware()
        last = (
            TrainingRun.objects.exclude(leakage=[]).order_by("-created_at", "-id").first()
            if TrainingRun.objects.exists()
            else None
        )
        ctx["last_leaks"] = leak_rows(last.leakage) if last else []
        ctx["last_leaks_run"] = last.name if last else ""
        return ctx

    def form_valid(self, form: TrainForm):
        data = form.cleaned_data
        try:
            run = training_run_create(
                name=data["name"],
                segment=data["segment"],
                offer=data["offer"],
                target=data["target"],
                base_model=data["base_model"],
                mode=data["mode"],
                params=form.params(),
                by=self.request.user,
            )
        except TrainingSetupError as exc:
            form.add_error(None, translated(str(exc)))
            return self.form_invalid(form)
        messages.success(self.request, _("Training of “%(name)s” started.") % {"name": run.name})
        return redirect("model-detail", pk=run.pk)


def setting_items(run: TrainingRun) -> list[tuple[str, Any, bool]]:
    """(label, value, picked for the budget) of each setting the run used; before it starts,
    what was asked (None = to be picked)."""
    used = run.settings or run.params
    asked = run.params
    return [
        (PARAM_LABELS.get(k, k), ", ".join(v) if isinstance(v, list) else v, asked.get(k) is None)
        for k, v in used.items()
        if k != "keep_fields" or v
    ]


def customer_accounting(run: TrainingRun) -> dict[str, Any]:
    """Every customer who was shown or responded to the offer(s): used, left out for want of
    a training consent, or left out by the row cap (runs before this was recorded: None)."""
    consented = run.rows.get("consented_customers")
    if consented is None or run.customers_used is None:
        return {"capped_customers": None, "customers_with_responses": None}
    excluded = sum(run.customers_excluded.values())
    return {
        "capped_customers": consented - run.customers_used,
        "customers_with_responses": consented + excluded,
    }


def training_hardware() -> str:
    """Where a training job will run, in words, for the form."""
    import os

    from marketing.services.jobs import gpu_worker_listening, wants_gpu

    if wants_gpu(Job.Kind.TRAIN) and gpu_worker_listening():
        return _("a GPU worker: every encoder layer trains")
    if settings.JOB_QUEUE == "celery":
        return _("a CPU worker: the settings are picked for its cores when the job starts")
    return _("this server's CPU (%(cores)s cores)") % {"cores": os.cpu_count() or 1}


# A leakage flag's reason -> (its words, the format of its value).
LEAK_REASONS = {
    "predicts_outcome": (gettext_lazy("alone predicts the outcome (AUC %(value)s)"), "{:.3f}"),
    "after_response": (
        gettext_lazy("holds a date after the response on %(value)s of rows"),
        "{:.0%}",
    ),
}


def leak_rows(leakage: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run's leakage flags in words."""
    rows = []
    for leak in leakage or []:
        value = leak.get("value", 0)
        words, fmt = LEAK_REASONS.get(leak.get("reason", ""), (None, "{}"))
        why = fmt.format(value) if words is None else words % {"value": fmt.format(value)}
        rows.append({**leak, "why": why})
    return rows


METRIC_COLUMNS = (
    ("bert", "BERT"),
    ("baseline", gettext_lazy("LightGBM baseline")),
    ("blend", gettext_lazy("Blend")),
)


def metric_columns(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The models the run measured, in table order; the one that scores is marked served."""
    served = "blend" if metrics.get("blend", {}).get("served") else "bert"
    return [
        {"key": key, "label": str(label), "served": key == served}
        for key, label in METRIC_COLUMNS
        if metrics.get(key)
    ]


def _lift_in_top(share: str) -> Callable[[dict[str, Any]], Any]:
    return lambda m: m.get("lift", {}).get(share)


def metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's models side by side, the best value of each metric marked."""
    keys = [column["key"] for column in metric_columns(metrics)]
    first = metrics["bert"]
    # (label, hint, the value in one model's metrics, higher is better, format)
    rows: list[tuple[str, str, Callable[[dict[str, Any]], Any], bool, str]] = [
        (
            _("Test ROC-AUC"),
            _("How well scores rank responders above the rest (0.5 = chance)"),
            lambda m: m.get("roc_auc"),
            True,
            "{:.3f}",
        ),
        (
            _("PR-AUC"),
            _("Precision across recall levels; base rate = chance"),
            lambda m: m.get("pr_auc"),
            True,
            "{:.3f}",
        ),
        (
            _("Log loss"),
            _("Quality of the probabilities; lower is better"),
            lambda m: m.get("log_loss"),
            False,
            "{:.4f}",
        ),
        (
            _("Brier score"),
            _("Squared error of the probabilities; lower is better"),
            lambda m: m.get("brier"),
            False,
            "{:.4f}",
        ),
    ]
    for share in ("5%", "10%", "20%"):
        if share in first["lift"]:
            rows.append(
                (
                    _("Lift in the top %(share)s") % {"share": share},
                    _("Response rate there ÷ overall rate"),
                    _lift_in_top(share),
                    True,
                    "{:.2f}×",
                )
            )
    if "20%" in first["gains"]:
        rows.append(
            (
                _("Responders in the top %(share)s") % {"share": "20%"},
                _("Share of all responders reached"),
                lambda m: m.get("gains", {}).get("20%"),
                True,
                "{:.0%}",
            )
        )
    out = []
    for label, hint, value_of, higher, fmt in rows:
        values = {key: value_of(metrics[key]) for key in keys}
        known = [v for v in values.values() if v is not None]
        best = (max(known) if higher else min(known)) if len(set(known)) > 1 else None
        out.append(
            {
                "label": label,
                "hint": hint,
                "cells": [
                    {
                        "text": "—" if v is None else fmt.format(v),
                        "best": v is not None and v == best,
                    }
                    for v in values.values()
                ],
            }
        )
    return out


NUMERIC_ENCODINGS = {
    "standard": pgettext_lazy("numeric encoding", "standard"),
    "piecewise": pgettext_lazy("numeric encoding", "piecewise"),
}


def numeric_inputs(inputs: dict[str, Any]) -> dict[str, Any] | None:
    """How the numbers reach the model, for "What the model reads": the encoding in words, the
    "not applicable" codes and the numeric fields (field names, kept as they are)."""
    if not inputs.get("numeric_fields"):
        return None
    codes = inputs.get("sentinels") or {}
    sentinels = ", ".join(f"{name} = {floatformat(value, '-2')}" for name, value in codes.items())
    encoding = inputs.get("numeric_encoding", "")
    return {
        "encoding": NUMERIC_ENCODINGS.get(encoding, encoding),
        "sentinels": format_html('<span translate="no">{}</span>', sentinels) if sentinels else "",
        "fields": format_html(
            '<span translate="no">{}</span>', ", ".join(inputs["numeric_fields"])
        ),
    }


def exclusion_rows(excluded: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "display": suppressed_count(excluded.get(key, 0))["display"]
            if excluded.get(key, 0)
            else "0",
        }
        for key, label in EXCLUSION_REASONS.items()
    ]


class TrainingRunDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/models/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = get_object_or_404(training_runs(), pk=kwargs["pk"])
        job = run.job
        ctx.update(
            run=run,
            job=job,
            can_cancel=can_cancel(job, self.request.user),
            duration=duration_text(job),
            param_items=setting_items(run),
            leaks=leak_rows(run.leakage),
            **customer_accounting(run),
            consent_at=parse_datetime(run.consent_snapshot.get("at") or ""),
            exclusions=exclusion_rows(run.customers_excluded),
            excluded_total=sum(run.customers_excluded.values()),
            curves_chart=model_charts.training_curves(run.curves),
            scorings=list(scoring_runs().filter(training_run=run)[:10]),
            score_form=ScoreForm(),
            # A segment page's "Score it" link names the segment to preselect.
            chosen_segment=self.request.GET.get("segment", ""),
            scorers=scorer_choices(run),
            can_score=job.status == Job.Status.SUCCEEDED and bool(run.model_id),
            explain_global=global_section(run, self.request.user),
            failure=translated_html(job.message) if job.status == Job.Status.FAILED else "",
            numeric_inputs=numeric_inputs(run.metrics.get("inputs") or {}),
            use_case=use_case_section(run),
            drift=drift_section(run),
        )
        if run.metrics.get("bert") and run.metrics.get("baseline"):
            ctx.update(
                metric_rows=metric_rows(run.metrics),
                metric_columns=metric_columns(run.metrics),
                roc_chart=model_charts.roc_curves(run.metrics),
                calibration_chart=model_charts.calibration(run.metrics),
                gains_chart=model_charts.cumulative_gains(run.metrics),
                auc_gap=run.metrics["bert"]["roc_auc"] - run.metrics["baseline"]["roc_auc"],
            )
        latest = next((s for s in ctx["scorings"] if s.job.status == Job.Status.SUCCEEDED), None)
        if latest is not None:
            ctx["latest_scoring"] = latest
            ctx["histogram"] = model_charts.score_histogram(latest.distribution)
        return ctx


def use_case_section(run: TrainingRun) -> dict[str, Any] | None:
    """Whether a finished run's model is the one its use case uses, and the champion else."""
    if run.job.status != Job.Status.SUCCEEDED or not run.model_id:
        return None
    promotion = latest_promotion(run.offer_id, run.target)
    champion = promotion.training_run if promotion else None
    return {
        "is_champion": champion is not None and champion.pk == run.pk,
        "champion": champion,
        "promotion": promotion,
        "can_roll_back": promotion is not None
        and promotion.previous_id is not None
        and champion is not None
        and champion.pk == run.pk,
        "champion_auc": test_figures(champion)["roc_auc"] if champion else None,
        "run_auc": test_figures(run)["roc_auc"],
        "comparison": comparison_section(run) if champion and champion.pk != run.pk else None,
    }


def comparison_section(run: TrainingRun) -> dict[str, Any]:
    """The newest comparison of a challenger with the model in use, for its page."""
    job = latest_comparison(run)
    finished = job is not None and job.status == Job.Status.SUCCEEDED
    return {
        "job": job,
        "result": job.result if finished and job else None,
        "failure": translated_html(job.message)
        if job is not None and job.status == Job.Status.FAILED
        else "",
    }


def drift_section(run: TrainingRun) -> dict[str, Any] | None:
    """The newest drift check of a finished run's model, for its page."""
    if run.job.status != Job.Status.SUCCEEDED or not run.model_id:
        return None
    check = latest_drift_check(run)
    finished = check is not None and check.job.status == Job.Status.SUCCEEDED
    return {
        "check": check,
        "finished": finished,
        "chart": model_charts.field_drift(check.report) if finished and check else None,
        "moved": ", ".join(check.report.get("moved") or []) if finished and check else "",
        "failure": translated_html(check.job.message)
        if check is not None and check.job.status == Job.Status.FAILED
        else "",
        "can_check": bool(run.reference),
    }


class _MonitoringJobView(RoleRequiredMixin, View):
    """POST only: start a monitoring job of the run's model (``start``), say so, and go back
    to the part of its page (``anchor``) that follows the job."""

    start: Callable[..., Any]
    started: Any
    anchor: str

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        try:
            self.start(run=run, by=request.user)
        except MonitoringError as exc:
            messages.error(request, translated(str(exc)))
        else:
            messages.success(request, self.started)
        return redirect(f"{reverse('model-detail', args=[run.pk])}#{self.anchor}")


class DriftCheckView(_MonitoringJobView):
    """Check the model's drift now (a job)."""

    start = staticmethod(drift_check_start)
    started = gettext_lazy("Drift check started.")
    anchor = "drift"


class ModelCompareView(_MonitoringJobView):
    """Compare the model with the model in use on the same recent responses (a job)."""

    start = staticmethod(challenger_compare_start)
    started = gettext_lazy("Comparison with the model in use started.")
    anchor = "use-case"


class ModelPromoteView(RoleRequiredMixin, View):
    """POST only: put the run's model in use for its offer and target (the champion)."""

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        try:
            model_promote(run=run, by=request.user, note=request.POST.get("note", ""))
        except PromotionError as exc:
            messages.error(request, translated(str(exc)))
        else:
            messages.success(request, _("“%(name)s” is now the model in use.") % {"name": run.name})
        return redirect("model-detail", pk=run.pk)


class ModelRollbackView(RoleRequiredMixin, View):
    """POST only: put the model in use before this run's back in use."""

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        try:
            promotion = model_rollback(
                offer=run.offer,
                target=run.target,
                by=request.user,
                note=request.POST.get("note", ""),
            )
        except PromotionError as exc:
            messages.error(request, translated(str(exc)))
            return redirect("model-detail", pk=run.pk)
        messages.success(
            request,
            _("Rolled back: “%(name)s” is the model in use again.")
            % {"name": promotion.training_run.name},
        )
        return redirect("model-detail", pk=promotion.training_run_id)


class ModelHistoryView(RoleRequiredMixin, TemplateView):
    """The versions of a run's use case (offer and target): their test figures over time and
    who put which one in use."""

    template_name = "marketing/models/history.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = get_object_or_404(training_runs(), pk=kwargs["pk"])
        versions = list(use_case_runs(run).reverse()[:HISTORY_VERSIONS])[::-1]
        promotions = list(use_case_promotions(run.offer_id, run.target)[:HISTORY_VERSIONS])
        champion = promotions[0].training_run if promotions else None
        rows = [
            {
                "run": version,
                "figures": test_figures(version),
                "baseline_auc": (version.metrics.get("baseline") or {}).get("roc_auc"),
                "in_use": champion is not None and champion.pk == version.pk,
            }
            for version in versions
        ]
        checks = list(
            DriftCheck.objects.filter(
                training_run__in=[v.pk for v in versions], job__status=Job.Status.SUCCEEDED
            )
            .select_related("training_run")
            .order_by("created_at", "id")[:HISTORY_VERSIONS]
        )
        ctx.update(
            run=run,
            versions=rows,
            promotions=promotions,
            champion=champion,
            chart=model_charts.versions_over_time(rows, promotions),
            drift_checks=checks[::-1],
            drift_chart=model_charts.drift_over_time(checks),
        )
        return ctx


class TrainingRunRetrainView(RoleRequiredMixin, View):
    """POST only: train the run's model again on today's data (without the erased)."""

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        try:
            new = training_run_retrain(
                run=run, by=request.user, start=request.POST.get("start", TrainingRun.Start.SCRATCH)
            )
        except TrainingSetupError as exc:
            messages.error(request, translated(str(exc)))
            return redirect("model-detail", pk=run.pk)
        messages.success(request, _("Retraining started: “%(name)s”.") % {"name": new.name})
        return redirect("model-detail", pk=new.pk)


class ScoringRunCreateView(RoleRequiredMixin, View):
    """POST only: score a segment with a finished run's model, then show the scoring."""

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        run = get_object_or_404(training_runs(), pk=pk)
        form = ScoreForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a segment and a scorer."))
            return redirect("model-detail", pk=run.pk)
        try:
            scoring = scoring_run_create(
                training_run=run,
                segment=form.cleaned_data["segment"],
                scorer=form.cleaned_data["scorer"] or ScoringRun.Scorer.SERVED,
                by=request.user,
            )
        except ScoringSetupError as exc:
            messages.error(request, translated(str(exc)))
            return redirect("model-detail", pk=run.pk)
        messages.success(request, _("Scoring started."))
        return redirect("model-scoring-detail", pk=scoring.pk)


class ScoringRunDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/models/scoring.html"

    @cached_property
    def scoring(self):
        return get_object_or_404(scoring_runs(), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        scoring = self.scoring
        finished = scoring.job.status == Job.Status.SUCCEEDED
        ctx.update(
            scoring=scoring,
            run=scoring.training_run,
            job=scoring.job,
            can_cancel=can_cancel(scoring.job, self.request.user),
            duration=duration_text(scoring.job),
            exclusions=exclusion_rows(scoring.customers_excluded),
            excluded_total=sum(scoring.customers_excluded.values()),
            histogram=model_charts.score_histogram(scoring.distribution) if finished else None,
            failure=translated_html(scoring.job.message)
            if scoring.job.status == Job.Status.FAILED
            else "",
            top=top_scores(scoring) if finished else [],
        )
        return ctx
