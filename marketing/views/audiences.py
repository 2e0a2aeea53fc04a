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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView, ListView, TemplateView, View

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
from marketing.services.audiences import audience_create, audience_freeze_start, audience_why
from marketing.services.exports import (
    ExportError,
    ExportFileMissing,
    export_create,
    export_download,
)
from marketing.services.figures import audience_figures_refresh
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


class ScoringRunChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: ScoringRun) -> str:
        where = obj.segment.name if obj.segment else _("all customers")
        # The month's name in the active language ("05 Dec 2026 11:17" in English).
        when = dateformat.format(obj.created_at, "d M Y H:i")
        label = f"{obj.training_run.name} · {where} · {when}"
        return f"{label} · {_('model in use')}" if getattr(obj, "in_use", False) else label


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
            audience = audience_create(name=data["name"], **form.definition(), by=self.request.user)
            audience_freeze_start(audience=audience, by=self.request.user)
        except (AudienceDefinitionError, SegmentRuleError) as exc:
            form.add_error(None, str(exc))
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
        )
        return ctx


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
