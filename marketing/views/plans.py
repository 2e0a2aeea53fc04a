"""Campaign plan pages: list, plan form, and the plan with its profit curve, realised ROI and
uplift. The numbers come from ``marketing.services.plans``; these views only show them."""

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.generic import ListView, TemplateView, View

from marketing.models import CampaignPlan, Job, Offer, ProfileField
from marketing.roles import MARKETER, has_role
from marketing.selectors.champions import in_use_first
from marketing.selectors.plans import campaign_plans
from marketing.selectors.training import scoring_runs
from marketing.services.plans import (
    ECONOMICS_DEFAULTS,
    ECONOMICS_FIELDS,
    PlanError,
    campaign_plan_actuals,
    campaign_plan_create,
    campaign_plan_update,
    campaign_plan_uplift,
    checked_economics,
    forecast_basis,
)
from marketing.stored_texts import translated, translated_html
from marketing.templatetags.money import money_text, percent_text
from marketing.views import plan_charts
from marketing.views.mixins import RoleRequiredMixin

DEFAULT_ECONOMICS = {"cost_per_contact": 2, "fixed_cost": 500, "value_per_conversion": 80}


# Beside the scores of a model in use in the forms' lists (the champion's come first).
MODEL_IN_USE = gettext_noop("model in use")


class EconomicsForm(forms.Form):
    """The campaign economics; which are required and the rules they obey are the engine's."""

    cost_per_contact = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        label=gettext_lazy("Cost per contact"),
        help_text=gettext_lazy("What reaching one customer costs: call time, postage, a voucher."),
    )
    fixed_cost = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        label=gettext_lazy("Fixed cost"),
        help_text=gettext_lazy(
            "Paid once if the campaign runs at all: creative, set-up, platform fee."
        ),
    )
    value_per_conversion = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        label=gettext_lazy("Value per conversion"),
        help_text=gettext_lazy("The margin one conversion earns before contact costs."),
    )
    budget = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        label=gettext_lazy("Budget"),
        help_text=gettext_lazy(
            "The most the whole campaign may cost, fixed cost included. Empty: no limit."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ECONOMICS_FIELDS:
            field = self.fields[name]
            field.required = name not in ECONOMICS_DEFAULTS
            # "Budget (€)": the currency set for this site.
            field.label = _("%(label)s (%(currency)s)") % {
                "label": field.label,
                "currency": settings.CURRENCY_SYMBOL,
            }

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        try:
            checked_economics(self.economics())
        except PlanError as exc:
            self.add_plan_errors(exc)
        return cleaned

    def economics(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            name: None if data.get(name) is None else float(data[name]) for name in ECONOMICS_FIELDS
        }

    def economics_fields(self):
        return [self[name] for name in self.fields if name in ECONOMICS_FIELDS]

    def add_plan_errors(self, error: PlanError) -> None:
        """The service's errors beside their fields; a field the form already faulted keeps
        its own error."""
        for field, message in error.errors.items():
            if field not in self.errors:
                # Translated; the names it quotes marked as such.
                self.add_error(field if field in self.fields else None, translated_html(message))


class ReplanForm(EconomicsForm):
    contacts = forms.IntegerField(
        min_value=1,
        required=False,
        label=gettext_lazy("Customers to contact"),
        help_text=gettext_lazy("Empty: the number that earns the most."),
    )


class PlanForm(EconomicsForm):
    name = forms.CharField(max_length=200, label=gettext_lazy("Plan name"))
    scoring_run = forms.ModelChoiceField(
        scoring_runs().filter(job__status=Job.Status.SUCCEEDED),
        label=gettext_lazy("Scores"),
        empty_label=None,
        help_text=gettext_lazy("The scoring run whose customers the campaign would contact."),
    )
    offer = forms.ModelChoiceField(
        Offer.objects.all(),
        required=False,
        label=gettext_lazy("Offer"),
        empty_label=gettext_lazy("The model's offer"),
        help_text=gettext_lazy("Only for scores of every offer: the offer this campaign is for."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["scoring_run"])
        field.label_from_instance = _scoring_label
        # The models in use first: the form's default is the latest scoring of a champion.
        field.queryset = in_use_first(scoring_runs().filter(job__status=Job.Status.SUCCEEDED))


def _scoring_label(scoring) -> str:
    where = scoring.segment.name if scoring.segment else _("All customers")
    label = f"#{scoring.pk} · {where} · {scoring.training_run.name} ({scoring.customers_scored:,})"
    return f"{label} · {_(MODEL_IN_USE)}" if getattr(scoring, "in_use", False) else label


class ActualsForm(forms.Form):
    campaign = forms.CharField(
        max_length=100,
        label=gettext_lazy("Campaign name"),
        help_text=gettext_lazy("The campaign name the responses were uploaded under."),
    )


class UpliftForm(forms.Form):
    treatment_attribute = forms.CharField(
        max_length=64,
        label=gettext_lazy("Treatment attribute"),
        help_text=gettext_lazy("The profile field that marks who was contacted, e.g. “contacted”."),
    )
    treatment_value = forms.CharField(
        max_length=100,
        label=gettext_lazy("Treated when it equals"),
        help_text=gettext_lazy("Everyone else is the control group."),
    )


def best_depth_sentence(result: dict[str, Any]) -> str:
    """The plan's advice in one sentence (two when the budget binds)."""
    best, budget = result["best"], result["budget"]
    if not best["worth_running"]:
        return _(
            "No depth pays: even the best-scored customers are expected to earn less than "
            "the campaign costs (at best %(profit)s). Lower the costs, raise the value per "
            "conversion, or don't run it."
        ) % {"profit": money_text(best["profit"])}
    words = {
        "pct": percent_text(best["depth_pct"] / 100),
        "contacts": f"{best['contacts']:,}",
        "profit": money_text(best["profit"]),
    }
    if budget["limit"] is None or budget["max_contacts"] >= best["contacts"]:
        return (
            _("Contact the top %(pct)s (%(contacts)s customers): expected profit %(profit)s.")
            % words
        )
    within = budget["best_within_budget"]
    words["limit"] = money_text(budget["limit"])
    if within["contacts"] == 0:
        return _(
            "The budget of %(limit)s does not allow the campaign: %(reason)s Without a limit, "
            "the top %(pct)s (%(contacts)s customers) would earn %(profit)s."
        ) % {**words, "reason": translated(budget["reason"] or "")}
    return _(
        "Contact the top %(within_pct)s (%(within_contacts)s customers): expected profit "
        "%(within_profit)s within the budget of %(limit)s, which pays for %(max_contacts)s "
        "contacts. Without the budget limit, the top %(pct)s (%(contacts)s customers) would "
        "earn %(profit)s."
    ) % {
        **words,
        "within_pct": percent_text(within["depth_pct"] / 100),
        "within_contacts": f"{within['contacts']:,}",
        "within_profit": money_text(within["profit"]),
        "max_contacts": f"{budget['max_contacts']:,}",
    }


def _plain_amount(value: float | None) -> float | int | None:
    """12 rather than 12.0 in a form field."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _initial_economics(plan: CampaignPlan) -> dict[str, Any]:
    return {**{k: _plain_amount(v) for k, v in plan.economics.items()}, "contacts": plan.contacts}


def detail_context(request, plan: CampaignPlan, **forms_given) -> dict[str, Any]:
    result, actual, uplift = plan.result, plan.actual, plan.uplift
    uplift_job = None
    if uplift.get("job"):
        uplift_job = Job.objects.filter(pk=uplift["job"]).first()
    evaluation = uplift.get("evaluation") if uplift.get("status") == "ok" else None
    forecast = dict(result.get("forecast") or forecast_basis(plan.scoring_run))
    # Stored in English; the scoring run's own label reads in the reader's language.
    forecast["scorer"] = plan.scoring_run.get_scorer_display()
    return {
        "plan": plan,
        "result": result,
        "best_sentence": best_depth_sentence(result),
        # The engine's words, stored in English.
        "note": translated(result.get("note") or ""),
        "budget_reason": translated(result["budget"].get("reason") or ""),
        "forecast": forecast,
        "chosen": result["chosen"],
        "profit_chart": plan_charts.profit_curve(result),
        "gains_chart": plan_charts.gains_and_lift(result),
        "replan_form": forms_given.get("replan_form")
        or ReplanForm(initial=_initial_economics(plan)),
        "actuals_form": forms_given.get("actuals_form")
        or ActualsForm(initial={"campaign": plan.campaign}),
        "uplift_form": forms_given.get("uplift_form")
        or UpliftForm(
            initial={
                "treatment_attribute": uplift.get("treatment_attribute", ""),
                "treatment_value": uplift.get("treatment_value", ""),
            }
        ),
        "profile_fields": list(ProfileField.objects.values_list("name", flat=True)),
        "actual": actual,
        "actual_rows": _actual_rows(actual) if actual else [],
        "measured_at": parse_datetime(actual.get("measured_at") or "") if actual else None,
        "actual_chart": plan_charts.forecast_vs_actual(actual) if actual else None,
        "uplift": uplift,
        "uplift_reasons": [translated_html(reason) for reason in uplift.get("reasons") or []],
        "uplift_job": uplift_job,
        "uplift_failure": translated_html(uplift_job.message) if uplift_job else "",
        "uplift_running": uplift_job is not None and not uplift_job.is_finished,
        "qini_chart": plan_charts.qini(evaluation) if evaluation else None,
        "uplift_chart": plan_charts.uplift_by_decile(evaluation) if evaluation else None,
        "can_plan": has_role(request.user, (MARKETER,)),
    }


def _actual_rows(actual: dict[str, Any]) -> list[dict[str, Any]]:
    forecast, real, diff = actual["forecast"], actual["actual"], actual["difference"]

    def signed(value, fmt) -> str:
        if value is None:
            return "—"
        text = fmt(value)
        return "+" + text if value > 0 else text.replace("-", "−", 1)

    def points(value: str) -> str:
        # Percentage points.
        return _("%(value)s pts") % {"value": value}

    rows = [
        (_("Conversions"), lambda v: f"{v:,.1f}", lambda v: f"{v:,.1f}"),
        (_("Conversion rate"), lambda v: f"{v:.1%}", lambda v: points(f"{100 * v:.1f}")),
        (_("Revenue"), money_text, money_text),
        (_("Cost"), money_text, money_text),
        (_("Profit"), money_text, money_text),
        ("ROI", lambda v: "—" if v is None else f"{v:.0%}", lambda v: points(f"{100 * v:.0f}")),
    ]
    keys = ["conversions", "conversion_rate", "revenue", "cost", "profit", "roi"]
    out = []
    for (label, fmt, diff_fmt), key in zip(rows, keys, strict=True):
        out.append(
            {
                "label": label,
                "forecast": fmt(forecast[key]) if forecast[key] is not None else "—",
                "actual": fmt(real[key]) if real[key] is not None else "—",
                "difference": signed(diff[key], diff_fmt),
                "good": None if diff[key] in (None, 0) or key == "cost" else diff[key] > 0,
            }
        )
    return out


class PlanListView(RoleRequiredMixin, ListView):
    template_name = "marketing/plans/list.html"
    context_object_name = "plans"
    paginate_by = 25

    def get_queryset(self):
        return campaign_plans()

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["has_scores"] = scoring_runs().filter(job__status=Job.Status.SUCCEEDED).exists()
        return ctx


class PlanCreateView(RoleRequiredMixin, View):
    read_roles = RoleRequiredMixin.write_roles
    template_name = "marketing/plans/form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        initial: dict[str, Any] = dict(DEFAULT_ECONOMICS)
        scoring = None
        if request.GET.get("scoring_run", "").isdigit():
            scoring = (
                scoring_runs()
                .filter(pk=int(request.GET["scoring_run"]), job__status=Job.Status.SUCCEEDED)
                .first()
            )
        if scoring is not None:
            initial["scoring_run"] = scoring.pk
            offer = scoring.training_run.offer
            initial["name"] = _("%(offer)s · scores #%(scores)s") % {
                "offer": offer.title if offer else _("Campaign"),
                "scores": scoring.pk,
            }
            if offer is not None and offer.price is not None:
                initial["value_per_conversion"] = _plain_amount(
                    float(offer.price - (offer.unit_cost or 0))
                )
        return self._render(PlanForm(initial=initial))

    def post(self, request):
        form = PlanForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                plan = campaign_plan_create(
                    scoring_run=data["scoring_run"],
                    name=data["name"],
                    offer=data["offer"],
                    economics=form.economics(),
                    by=request.user,
                )
            except PlanError as exc:
                form.add_plan_errors(exc)
            else:
                messages.success(request, _("Plan “%(name)s” computed.") % {"name": plan.name})
                return redirect("plan-detail", pk=plan.pk)
        return self._render(form, status=400)

    def _render(self, form: PlanForm, status: int = 200):
        choices = cast(forms.ModelChoiceField, form.fields["scoring_run"]).queryset
        has_scores = choices is not None and choices.exists()
        return render(
            self.request,
            self.template_name,
            {"form": form, "has_scores": has_scores},
            status=status,
        )


class PlanDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/plans/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        plan = get_object_or_404(campaign_plans(), pk=kwargs["pk"])
        ctx.update(detail_context(self.request, plan))
        return ctx


class _PlanPostView(RoleRequiredMixin, View):
    """POST only: one change to a plan; errors show on the plan page beside the form."""

    form_class: type[forms.Form]
    form_name: str
    anchor: str

    def apply(self, plan: CampaignPlan, form) -> None:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int):
        plan = get_object_or_404(campaign_plans(), pk=pk)
        form = self.form_class(request.POST)
        if form.is_valid():
            try:
                self.apply(plan, form)
            except PlanError as exc:
                for field, message in exc.errors.items():
                    form.add_error(
                        field if field in form.fields else None, translated_html(message)
                    )
            else:
                return redirect(reverse("plan-detail", args=[plan.pk]) + f"#{self.anchor}")
        ctx = detail_context(request, plan, **{self.form_name: form})
        return render(request, PlanDetailView.template_name, ctx, status=400)


class PlanReplanView(_PlanPostView):
    form_class = ReplanForm
    form_name = "replan_form"
    anchor = "profit"

    def apply(self, plan: CampaignPlan, form: ReplanForm) -> None:
        campaign_plan_update(
            plan=plan,
            economics=form.economics(),
            contacts=form.cleaned_data["contacts"],
            by=self.request.user,
        )
        messages.success(self.request, _("Plan recomputed with the new economics."))


class PlanActualsView(_PlanPostView):
    form_class = ActualsForm
    form_name = "actuals_form"
    anchor = "actuals"

    def apply(self, plan: CampaignPlan, form: ActualsForm) -> None:
        campaign_plan_actuals(
            plan=plan, campaign=form.cleaned_data["campaign"], by=self.request.user
        )
        messages.success(self.request, _("Realised figures measured."))


class PlanUpliftView(_PlanPostView):
    form_class = UpliftForm
    form_name = "uplift_form"
    anchor = "uplift"

    def apply(self, plan: CampaignPlan, form: UpliftForm) -> None:
        campaign_plan_uplift(plan=plan, by=self.request.user, **form.cleaned_data)
        messages.success(self.request, _("Uplift estimate started."))
