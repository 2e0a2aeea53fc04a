"""Recommendation pages (offer lists re-ranked for diversity, from multi-offer scoring runs)
and the audience diversity of a single-offer scoring run."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from marketing.selectors.figures import audience_diversity_figures
from marketing.selectors.recommendations import (
    audience_attributes,
    multi_offer_scoring_runs,
    recommendation_runs,
    run_lists,
)
from marketing.selectors.training import scoring_runs
from marketing.services.audience_diversity import (
    AudienceDiversityError,
    audience_diversity_settings,
    report_in_words,
)
from marketing.services.figures import audience_diversity_refresh
from marketing.services.recommendations import (
    ACCURACY_BASES,
    MAX_K,
    MIN_K,
    SIMILARITIES,
    RecommendationSetupError,
    recommendation_run_create,
)
from marketing.stored_texts import translated, translated_html
from marketing.views import recommendation_charts
from marketing.views.jobs import can_cancel, duration_text
from marketing.views.mixins import RoleRequiredMixin

TOP_SHARES = (1, 5, 10, 20, 30, 50)


class ScoringRunChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        segment = obj.segment.name if obj.segment else _("all customers")
        return f"#{obj.pk} · {obj.training_run.name} · {segment}"


class RecommendationForm(forms.Form):
    scoring_run = ScoringRunChoice(
        multi_offer_scoring_runs(),
        label=gettext_lazy("Scores"),
        help_text=gettext_lazy(
            "A finished scoring run of a multi-offer model (one score per customer and offer)."
        ),
    )
    k = forms.IntegerField(
        min_value=MIN_K,
        max_value=MAX_K,
        initial=5,
        label=gettext_lazy("Offers per customer"),
    )
    diversity = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        initial=0.3,
        label=gettext_lazy("Diversity (λ)"),
        widget=forms.NumberInput(attrs={"type": "range", "step": "0.05"}),
        help_text=gettext_lazy(
            "0 lists each customer's best-scored offers. Higher values give up some "
            "score for variety: each next offer is picked for its score minus λ times its "
            "similarity to the offers already listed."
        ),
    )
    similarity = forms.ChoiceField(
        choices=[
            ("categories", gettext_lazy("Shared categories")),
            ("text", gettext_lazy("What the offers say (text)")),
        ],
        initial="categories",
        label=gettext_lazy("Offers count as alike by"),
        help_text=gettext_lazy(
            "Categories: offers sharing a category tag (comma-separated in the offer's "
            "category) are alike. Text: the offers' title, category and description are read by "
            "the model's sentence encoder; slower, and works without categories."
        ),
    )
    offer_cap = forms.IntegerField(
        min_value=1,
        required=False,
        label=gettext_lazy("Customers per offer at most"),
        help_text=gettext_lazy(
            "Spreads offers with limited stock or budget: once an offer reaches the cap, the "
            "customers who value it most keep it and the others get their next choice."
        ),
    )


class RecommendationListView(RoleRequiredMixin, ListView):
    template_name = "marketing/recommendations/list.html"
    context_object_name = "runs"
    paginate_by = 25

    def get_queryset(self):
        return recommendation_runs()

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["has_sources"] = multi_offer_scoring_runs().exists()
        return ctx


class RecommendationCreateView(RoleRequiredMixin, FormView):
    template_name = "marketing/recommendations/create.html"
    form_class = RecommendationForm
    read_roles = RoleRequiredMixin.write_roles

    def get_initial(self):
        initial = super().get_initial()
        for name in ("scoring_run", "k", "diversity", "offer_cap", "similarity"):
            if self.request.GET.get(name):
                initial[name] = self.request.GET[name]
        return initial

    def form_valid(self, form: RecommendationForm):
        data = form.cleaned_data
        try:
            run = recommendation_run_create(
                scoring_run=data["scoring_run"],
                k=data["k"],
                diversity=data["diversity"],
                offer_cap=data["offer_cap"],
                similarity=data["similarity"],
                by=self.request.user,
            )
        except RecommendationSetupError as exc:
            form.add_error(None, translated(str(exc)))
            return self.form_invalid(form)
        messages.success(self.request, _("Recommendations started."))
        return redirect("recommendation-detail", pk=run.pk)


class RecommendationDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/recommendations/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = get_object_or_404(recommendation_runs(), pk=kwargs["pk"])
        result = run.result or {}
        ctx.update(
            run=run,
            job=run.job,
            result=result,
            scoring=run.scoring_run,
            can_cancel=can_cancel(run.job, self.request.user),
            duration=duration_text(run.job),
            job_failure=translated_html(run.job.message),
        )
        if result:
            exposure = result["exposure"]
            ctx.update(
                accuracy_sentence=_accuracy_sentence(result),
                warnings=[translated_html(text) for text in result.get("warnings") or []],
                similarity_text=_similarity_text(result["similarity"]),
                metrics=result["metrics"],
                accuracy_measure=recommendation_charts.accuracy_measure(result),
                curve_chart=recommendation_charts.accuracy_vs_diversity(result),
                exposure_chart=recommendation_charts.exposure_per_offer(result),
                offers_listed=sum(1 for row in exposure if row["customers"]),
                lists=run_lists(run),
                ranks=range(1, run.k + 1),
                excluded_total=sum((result.get("customers_excluded") or {}).values()),
                rerun_query=f"scoring_run={run.scoring_run_id}&k={run.k}"
                f"&diversity={run.diversity}"
                + (f"&offer_cap={run.offer_cap}" if run.offer_cap else "")
                + f"&similarity={result['similarity']['kind']}",
            )
        return ctx


def _similarity_text(similarity: dict) -> str:
    kind = similarity.get("kind")
    return _(SIMILARITIES[kind]) if kind in SIMILARITIES else similarity.get("text", "")


def _accuracy_sentence(result: dict) -> str:
    """What accuracy is measured against, in one sentence (stored in English as a key)."""
    basis = result.get("accuracy_basis")
    words = {
        "basis": _(ACCURACY_BASES[basis])
        if basis in ACCURACY_BASES
        else result.get("accuracy_basis_text", ""),
        "responses": f"{result.get('evaluation_clicks') or 0:,}",
        "date": (result.get("training_cutoff") or "")[:10],
    }
    if result.get("evaluation_clicks") and result.get("training_cutoff"):
        sentence = _(
            "Accuracy is measured against %(basis)s: %(responses)s customer–offer responses; "
            "the model read its training data on %(date)s."
        )
    elif result.get("evaluation_clicks"):
        sentence = _(
            "Accuracy is measured against %(basis)s: %(responses)s customer–offer responses."
        )
    elif result.get("training_cutoff"):
        sentence = _(
            "Accuracy is measured against %(basis)s; the model read its training data on %(date)s."
        )
    else:
        sentence = _("Accuracy is measured against %(basis)s.")
    return sentence % words


def _top_choice(share: int) -> str:
    return _("Top %(share)s %%") % {"share": share}


# A choice's label reads in the language of the page that shows it.
_top_choice_lazy = lazy(_top_choice, str)


class AudienceForm(forms.Form):
    top = forms.TypedChoiceField(
        choices=[(str(s), _top_choice_lazy(s)) for s in TOP_SHARES],
        coerce=int,
        required=False,
        empty_value=10,  # type: ignore[arg-type]  # any value is allowed; the stub says str
        label=gettext_lazy("Audience"),
    )
    top_n = forms.IntegerField(
        min_value=1, required=False, label=gettext_lazy("or the top N customers")
    )
    attributes = forms.MultipleChoiceField(
        choices=(), required=False, label=gettext_lazy("Attributes")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attributes"].choices = [
            (f.name, f.label or f.name) for f in audience_attributes()
        ]


# Attributes drawn as charts on the audience diversity page; the rest are listed.
CHARTS_FIRST = 4


class AudienceDiversityView(RoleRequiredMixin, TemplateView):
    """The last computed audience diversity of a single-offer scoring run, its age and the
    computation under way; computing is a job (``AudienceDiversityComputeView``)."""

    template_name = "marketing/recommendations/audience.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        scoring = get_object_or_404(scoring_runs(), pk=kwargs["pk"])
        figures = audience_diversity_figures(scoring)
        report = figures["report"]
        failed = figures.get("failed_job")
        ctx.update(
            scoring=scoring,
            run=scoring.training_run,
            figures=figures,
            report=report,
            form=AudienceForm(initial=_settings_of(report)),
            selected_top=_selected_top(report),
            failure_message=translated_html(failed.message) if failed else "",
        )
        try:
            audience_diversity_settings(scoring_run=scoring)
        except AudienceDiversityError as exc:
            ctx["error"] = translated_html(str(exc))
        if report is not None:
            # The report keeps its words in English: the top and the findings read anew here.
            words = report_in_words(report, _)
            ctx.update(top_label=words["top_label"], findings=words["under_represented"])
            # The attributes come most different from the base first: the few that matter
            # are drawn, the others listed by how much of the top differs from the base.
            spreads = [
                {**spread, "differs": round(100 * spread.get("total_variation", 0.0))}
                for spread in report["attributes"]
            ]
            ctx["charts"] = [
                {
                    "spread": spread,
                    "chart_id": f"audience-chart-{i}",
                    "chart": recommendation_charts.audience_shares(spread, words["top_label"]),
                }
                for i, spread in enumerate(spreads[:CHARTS_FIRST])
            ]
            ctx["other_spreads"] = spreads[CHARTS_FIRST:]
        return ctx


class AudienceDiversityComputeView(RoleRequiredMixin, View):
    """Start computing the audience diversity for the chosen top ("Compute", "Recompute")."""

    def post(self, request, pk: int):
        scoring = get_object_or_404(scoring_runs(), pk=pk)
        form = AudienceForm(request.POST)
        page = reverse("model-audience-diversity", args=[pk]) + "#diversity"
        if not form.is_valid():
            errors = "; ".join(
                _("%(field)s: %(errors)s")
                % {
                    "field": form.fields[name].label if name in form.fields else name,
                    "errors": " ".join(str(e) for e in found),
                }
                for name, found in form.errors.items()
            )
            messages.error(request, _("Not computed: %(errors)s") % {"errors": errors})
            return redirect(page)
        values = form.cleaned_data
        top_n = values.get("top_n")
        try:
            audience_diversity_refresh(
                scoring_run=scoring,
                top_n=top_n,
                top_share=None if top_n else (values.get("top") or 10) / 100,
                attributes=values.get("attributes") or None,
                by=request.user,
            )
        except AudienceDiversityError as exc:
            messages.error(request, translated(str(exc)))
        else:
            messages.success(request, _("Computing started: the figures update when it is done."))
        return redirect(page)


def _settings_of(report: dict | None) -> dict:
    if report is None:
        return {}
    return {"top_n": report["top_n"], "attributes": [a["attribute"] for a in report["attributes"]]}


def _selected_top(report: dict | None) -> str:
    """The top share the form shows: the last computed one, 10 % before any."""
    if report is None:
        return "10"
    if report["top_n"] is not None:
        return ""
    return str(round(100 * report["top_share"]))
