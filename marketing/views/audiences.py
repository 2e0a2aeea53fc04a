"""Audience pages: the builder, the audience with its last counted readiness and one export
button per platform, the export history and the download of a file.

Freezing and counting grow with the audience, so they are jobs: the buttons start them and
the page shows their progress, then the figures they stored.
"""

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import dateformat
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.generic import FormView, ListView, TemplateView, View

from marketing.errors import ApplicationError
from marketing.exporters.formats import FORMATS
from marketing.models import Audience, Export, Job, Offer, ScoringRun, Segment
from marketing.responses import export_attachment
from marketing.roles import DATA_STEWARD, MARKETER, has_role
from marketing.segments import SegmentRuleError
from marketing.selectors.audiences import (
    AudienceCut,
    AudienceDefinitionError,
    audience_member_sample,
    audiences,
    exports,
    left_out_in_words,
)
from marketing.selectors.champions import in_use_first
from marketing.selectors.figures import audience_figures, unfinished_job
from marketing.selectors.training import scoring_runs
from marketing.services.audience_results import (
    AudienceResultsError,
    audience_results_start,
    default_value_per_conversion,
)
from marketing.services.audiences import audience_create, audience_freeze_start, audience_why
from marketing.services.exports import (
    ExportError,
    ExportFileMissing,
    export_create,
    export_download,
)
from marketing.services.figures import audience_figures_refresh
from marketing.templatetags.money import money_text, percent_text
from marketing.views import audience_charts
from marketing.views.mixins import ExportThrottleMixin, RoleRequiredMixin

DOWNLOADERS = (MARKETER, DATA_STEWARD)
CUT_HELP = {
    Audience.Cut.ALL: gettext_lazy("No cut: the whole segment, scored or not."),
    Audience.Cut.TOP_N: gettext_lazy("The N customers with the highest scores."),
    Audience.Cut.TOP_PERCENT: gettext_lazy("The given share of scored customers, highest first."),
    Audience.Cut.THRESHOLD: gettext_lazy("Everyone scored at least this high (0 to 1)."),
}


def can_download(user) -> bool:
    return has_role(user, DOWNLOADERS)


# Beside the scores of a model in use in the forms' lists (the champion's come first).
MODEL_IN_USE = gettext_noop("model in use")


class ScoringRunChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: ScoringRun) -> str:
        where = obj.segment.name if obj.segment else _("all customers")
        # The month's name in the active language ("05 Dec 2026 11:17" in English).
        when = dateformat.format(obj.created_at, "d M Y H:i")
        label = f"{obj.training_run.name} · {where} · {when}"
        return f"{label} · {_(MODEL_IN_USE)}" if getattr(obj, "in_use", False) else label


class AudienceForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        required=False,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy("Leave empty to name it after the segment."),
    )
    segment = forms.ModelChoiceField(
        Segment.objects.all(), empty_label=None, label=gettext_lazy("Segment")
    )
    scoring_run = ScoringRunChoice(
        scoring_runs().filter(job__status="succeeded"),
        required=False,
        label=gettext_lazy("Scoring run"),
        empty_label=gettext_lazy("No scores: everyone in the segment"),
        help_text=gettext_lazy(
            "Scores of a click model rank the members; a cut keeps the best of them."
        ),
    )
    offer = forms.ModelChoiceField(
        Offer.objects.all(),
        required=False,
        label=gettext_lazy("Offer"),
        empty_label=gettext_lazy("Each customer's best offer"),
        help_text=gettext_lazy("For a model of every offer: whose score ranks the members."),
    )
    cut = forms.ChoiceField(
        choices=Audience.Cut.choices,
        initial=Audience.Cut.ALL,
        widget=forms.RadioSelect,
        label=gettext_lazy("Cut"),
    )
    cut_value = forms.FloatField(required=False, label=gettext_lazy("Cut value"))
    control_percent = forms.FloatField(
        required=False,
        label=gettext_lazy("Control group (%)"),
        help_text=gettext_lazy(
            "The share of the members held back at random (up to 50 %): never exported, "
            "compared with the contacted members afterwards to show what the campaign "
            "changed. Empty or 0: no control group."
        ),
    )
    control_seed = forms.IntegerField(
        required=False,
        label=gettext_lazy("Seed"),
        help_text=gettext_lazy(
            "The same seed holds back the same members again. Empty: a random seed, kept "
            "with the audience."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The models in use first, marked.
        field = cast(forms.ModelChoiceField, self.fields["scoring_run"])
        field.queryset = in_use_first(scoring_runs().filter(job__status="succeeded"))

    def definition(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "segment": data["segment"],
            "scoring_run": data["scoring_run"],
            "offer": data["offer"],
            "cut": AudienceCut(data["cut"], data["cut_value"]),
        }

    def show_error(self, exc: ApplicationError) -> None:
        """The service's error beside the fields it names, or above the form."""
        named = {f: m for f, m in exc.errors.items() if f in self.fields}
        for field, message in named.items():
            self.add_error(field, message)
        if not named:
            self.add_error(None, str(exc))


class ResultsForm(forms.Form):
    """What a campaign's results are measured with (see ``audience_results_start``)."""

    value_per_conversion = forms.FloatField(
        required=False,
        label=gettext_lazy("Value per conversion"),
        help_text=gettext_lazy("Empty: the offer's price, when it has one."),
    )
    cost_per_contact = forms.FloatField(
        required=False,
        label=gettext_lazy("Cost per contact"),
        help_text=gettext_lazy("With a value, gives the incremental profit and ROI."),
    )
    until = forms.DateField(
        required=False,
        label=gettext_lazy("Responses up to"),
        help_text=gettext_lazy("A day (YYYY-MM-DD), included. Empty: up to now."),
    )


class AudienceListView(RoleRequiredMixin, ListView):
    template_name = "marketing/audiences/list.html"
    context_object_name = "audiences"
    paginate_by = 25

    def get_queryset(self):
        return audiences()


class AudienceBuilderView(RoleRequiredMixin, FormView):
    """Build an audience and freeze it; the preview panel asks the API as the form changes."""

    template_name = "marketing/audiences/builder.html"
    form_class = AudienceForm
    read_roles = RoleRequiredMixin.write_roles

    def get_initial(self) -> dict[str, Any]:
        return {
            "segment": self.request.GET.get("segment"),
            "scoring_run": self.request.GET.get("scoring_run"),
        }

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["has_segments"] = Segment.objects.exists()
        ctx["cut_help"] = CUT_HELP
        ctx["formats"] = list(FORMATS.values())
        ctx["format_labels"] = {key: str(fmt.label) for key, fmt in FORMATS.items()}
        return ctx

    def form_valid(self, form: AudienceForm):
        data = form.cleaned_data
        try:
            audience = audience_create(
                name=data["name"],
                **form.definition(),
                control_percent=data["control_percent"],
                control_seed=data["control_seed"],
                by=self.request.user,
            )
            audience_freeze_start(audience=audience, by=self.request.user)
        except (AudienceDefinitionError, SegmentRuleError) as exc:
            form.show_error(exc)
            return self.form_invalid(form)
        messages.success(
            self.request,
            _("Audience “%(name)s” created; its members are being frozen.")
            % {"name": audience.name},
        )
        return redirect("audience-detail", pk=audience.pk)


class AudienceDetailView(RoleRequiredMixin, TemplateView):
    """The audience with its last counted figures: no query here grows with the audience."""

    template_name = "marketing/audiences/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        audience = get_object_or_404(audiences(), pk=kwargs["pk"])
        figures = audience_figures(audience)
        preview = figures["preview"]
        for row in preview["formats"] if preview else []:
            row["reasons"] = left_out_in_words(row["left_out"])
        ctx.update(
            audience=audience,
            preview=preview,
            figures=figures,
            freeze_job=None
            if audience.is_frozen
            else unfinished_job(Job.Kind.AUDIENCE_FREEZE, audience=audience.pk),
            snapshot_left_out=left_out_in_words(audience.consent_snapshot.get("left_out", {})),
            exports=list(exports().filter(audience=audience)[:50]),
            can_download=can_download(self.request.user),
            cut_text=AudienceCut(audience.cut, audience.cut_value).describe(audience.scoring_run),
            why=audience_why(audience),
            sample=audience_member_sample(audience)
            if audience.is_frozen and preview and not preview["suppressed"]
            else [],
            contacted_size=audience.size - audience.control_size,
            **results_context(audience),
        )
        return ctx


def results_context(audience: Audience, form: ResultsForm | None = None) -> dict[str, Any]:
    """The audience's campaign results as the page shows them, the measure under way, and the
    form that starts the next."""
    if not audience.control_size:
        return {"results": None}
    results = audience.results or None
    latest = (
        Job.objects.filter(kind=Job.Kind.AUDIENCE_RESULTS, params__audience=audience.pk)
        .order_by("-created_at", "-id")
        .first()
    )
    value = (results or {}).get("value_per_conversion")
    if value is None:
        value = default_value_per_conversion(audience)
    return {
        "results": results,
        "results_job": latest if latest is not None and not latest.is_finished else None,
        "results_failed": latest
        if latest is not None and latest.status == Job.Status.FAILED
        else None,
        "results_at": parse_datetime(results["at"]) if results else None,
        "results_sentences": results_sentences(results) if results else [],
        "results_figures": results_figures(results) if results else [],
        "results_groups": [
            {"label": label, **results[key], "rate_text": _rate(results[key]["rate"])}
            for key, label in (("treated", _("Contacted")), ("control", _("Control group")))
        ]
        if results
        else [],
        "results_chart": audience_charts.response_rates(results) if results else None,
        "results_form": form
        or ResultsForm(
            initial={
                "value_per_conversion": _plain_amount(value),
                "cost_per_contact": _plain_amount((results or {}).get("cost_per_contact")),
                "until": (results or {}).get("until"),
            }
        ),
    }


def _plain_amount(value: float | None) -> float | int | None:
    """12 rather than 12.0 in a form field."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _points(rate: float) -> str:
    return _("%(points)s points") % {"points": f"{rate * 100:+.2f}"}


def _rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.2%}"


def results_figures(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The lift and what it is worth, each with its interval, as (label, text) rows."""
    lift = results["lift"]
    if lift is None:
        return []
    level = f"{results['confidence']:.0%}"

    def with_interval(value: str, interval: list[float], shown) -> str:
        return _("%(value)s (%(level)s interval %(low)s to %(high)s)") % {
            "value": value,
            "level": level,
            "low": shown(interval[0]),
            "high": shown(interval[1]),
        }

    def count(value: float) -> str:
        return f"{value:,.1f}"

    rows = [
        (
            _("Lift in response rate"),
            with_interval(_points(lift["lift"]), lift["lift_interval"], _points),
        ),
        (
            _("Incremental responses"),
            with_interval(
                count(lift["incremental_conversions"]),
                lift["incremental_conversions_interval"],
                count,
            ),
        ),
    ]
    if lift["incremental_profit"] is not None:
        rows.append(
            (
                _("Incremental profit"),
                with_interval(
                    money_text(lift["incremental_profit"]),
                    lift["incremental_profit_interval"],
                    money_text,
                ),
            )
        )
    elif lift["incremental_revenue"] is not None:
        rows.append(
            (
                _("Incremental revenue"),
                with_interval(
                    money_text(lift["incremental_revenue"]),
                    lift["incremental_revenue_interval"],
                    money_text,
                ),
            )
        )
    if lift["roi"] is not None:
        rows.append(
            (_("ROI"), with_interval(percent_text(lift["roi"]), lift["roi_interval"], percent_text))
        )
    return rows


def results_sentences(results: dict[str, Any]) -> list[str]:
    """What the campaign did, in plain sentences of the active language: the lift with its
    interval, or why it is too small to tell (and the smallest lift the groups could show)."""
    lift = results["lift"]
    level = percent_text(results["confidence"])
    detectable = results.get("minimum_detectable_lift")
    smallest = (
        _("With groups of these sizes, a lift smaller than about %(points)s is unlikely to show.")
        % {"points": _("%(points)s points") % {"points": f"{detectable * 100:.2f}"}}
        if detectable
        else ""
    )
    if lift is None:
        return [
            _("Too small to tell: one of the groups has no members left."),
            smallest,
        ]
    words = {
        "treated": f"{lift['treated_rate']:.1%}",
        "control": f"{lift['control_rate']:.1%}",
        "level": level,
        "low": _points(lift["lift_interval"][0]),
        "high": _points(lift["lift_interval"][1]),
        "count": f"{abs(lift['incremental_conversions']):,.1f}",
        "count_low": f"{lift['incremental_conversions_interval'][0]:,.1f}",
        "count_high": f"{lift['incremental_conversions_interval'][1]:,.1f}",
        "min_group": f"{results['min_group']:,}",
        "min_responses": f"{results['min_responses']:,}",
    }
    if results["too_few"]:
        return [
            _(
                "Too small to tell: each group needs at least %(min_group)s members and "
                "%(min_responses)s responses."
            )
            % words,
            smallest,
        ]
    if not lift["conclusive"]:
        return [
            _(
                "Too small to tell: contacted members responded at %(treated)s and the "
                "control group at %(control)s, but the %(level)s interval of the difference "
                "(%(low)s to %(high)s) includes no effect."
            )
            % words,
            smallest,
        ]
    if lift["lift"] > 0:
        sentence = _(
            "The campaign worked: contacted members responded at %(treated)s against "
            "%(control)s in the control group, about %(count)s extra responses (%(level)s "
            "interval %(count_low)s to %(count_high)s)."
        )
    else:
        sentence = _(
            "The campaign lowered the response: contacted members responded at %(treated)s "
            "against %(control)s in the control group, about %(count)s fewer responses "
            "(%(level)s interval %(count_low)s to %(count_high)s)."
        )
    sentences = [sentence % words]
    if lift["incremental_profit"] is not None:
        low, high = lift["incremental_profit_interval"]
        sentences.append(
            _("Incremental profit %(profit)s (%(level)s interval %(low)s to %(high)s).")
            % {
                "profit": money_text(lift["incremental_profit"]),
                "level": level,
                "low": money_text(low),
                "high": money_text(high),
            }
        )
    return sentences


class AudienceFreezeView(RoleRequiredMixin, View):
    """Start freezing the audience; the page shows the job's progress."""

    def post(self, request, pk: int):
        audience = get_object_or_404(Audience, pk=pk)
        try:
            audience_freeze_start(audience=audience, by=request.user)
        except (AudienceDefinitionError, SegmentRuleError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Freezing started: the members are being written."))
        return redirect("audience-detail", pk=pk)


class AudienceResultsView(RoleRequiredMixin, View):
    """Start measuring the campaign's results ("Measure results"); the page shows the job's
    progress, then the figures."""

    def post(self, request, pk: int):
        audience = get_object_or_404(Audience, pk=pk)
        form = ResultsForm(request.POST)
        if form.is_valid():
            try:
                audience_results_start(audience=audience, **form.cleaned_data, by=request.user)
            except AudienceResultsError as exc:
                for text in exc.errors.values() or [str(exc)]:
                    messages.error(request, text)
            else:
                messages.success(
                    request, _("Measuring started: the results show here when it is done.")
                )
        else:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, str(error))
        return redirect(reverse("audience-detail", args=[pk]) + "#results")


class AudienceCountView(RoleRequiredMixin, View):
    """Start counting the audience's consent and match readiness ("Count now", "Recount")."""

    def post(self, request, pk: int):
        audience = get_object_or_404(Audience, pk=pk)
        audience_figures_refresh(audience=audience, by=request.user)
        messages.success(request, _("Counting started: the figures update when it is done."))
        return redirect(reverse("audience-detail", args=[pk]) + "#figures")


class AudienceExportView(RoleRequiredMixin, ExportThrottleMixin, View):
    """Start an export of the audience for one platform; progress shows on the audience."""

    def post(self, request, pk: int):
        audience = get_object_or_404(Audience, pk=pk)
        try:
            export = export_create(
                audience=audience, platform=request.POST.get("platform", ""), by=request.user
            )
        except ExportError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("Export #%(number)s started: %(format)s.")
                % {"number": export.pk, "format": export.get_platform_display()},
            )
        return redirect(reverse("audience-detail", args=[audience.pk]) + "#exports")


class ExportListView(RoleRequiredMixin, ListView):
    template_name = "marketing/audiences/exports.html"
    context_object_name = "exports"
    paginate_by = 25

    def get_queryset(self):
        rows = exports()
        platform = self.request.GET.get("platform", "")
        if platform in FORMATS:
            rows = rows.filter(platform=platform)
        return rows

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        platform = self.request.GET.get("platform", "")
        ctx.update(
            can_download=can_download(self.request.user),
            formats=list(FORMATS.values()),
            platform=platform,
            query_prefix=f"platform={platform}&" if platform in FORMATS else "",
        )
        return ctx


class ExportDownloadView(RoleRequiredMixin, ExportThrottleMixin, View):
    """The export's file, streamed; marketers and data stewards only, every download logged."""

    read_roles = DOWNLOADERS

    def get(self, request, pk: int):
        export = get_object_or_404(Export.objects.select_related("job"), pk=pk)
        try:
            file, name = export_download(export=export, by=request.user)
        except ExportFileMissing as exc:
            raise Http404(str(exc)) from None
        return export_attachment(export, file, filename=name)
