import json
from typing import Any

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from marketing.models import Job, ProfileField, Segment
from marketing.segments import (
    OPERATOR_LABELS,
    RULE_SENTENCES,
    SegmentRuleError,
    available_fields,
    compile_rules,
)
from marketing.selectors.figures import overview_figures, segment_figures, segments_with_figures
from marketing.selectors.segments import segment_customers
from marketing.selectors.training import training_runs
from marketing.services.figures import segment_figures_refresh
from marketing.services.segments import segment_create, segment_update
from marketing.views.mixins import RoleRequiredMixin

SAMPLE_SIZE = 20
SAMPLE_COLUMNS = 4


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=120, label=gettext_lazy("Name"))
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=gettext_lazy("Description"),
    )
    rules = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, segment: Segment | None = None, **kwargs):
        self.segment = segment
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Segment.objects.filter(name__iexact=name)
        if self.segment is not None:
            others = others.exclude(pk=self.segment.pk)
        if others.exists():
            raise forms.ValidationError(_("A segment with this name exists already."))
        return name

    def clean_rules(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("rules") or ""
        try:
            rules = json.loads(raw) if raw else {"op": "and", "rules": []}
        except ValueError:
            raise forms.ValidationError(
                _("The rules could not be read; please rebuild them.")
            ) from None
        if not isinstance(rules, dict):
            raise forms.ValidationError(_("The rules could not be read; please rebuild them."))
        return rules


def _figures(segment: Segment) -> dict[str, Any]:
    """The segment's stored figures, with ``count["error"]`` naming rules that no longer
    compile (checked without a query)."""
    figures = segment_figures(segment)
    try:
        compile_rules(segment.rules)
    except SegmentRuleError as exc:
        figures["count"] = {"count": None, "display": "—", "suppressed": False, "error": str(exc)}
    else:
        figures["count"] = figures["count"] | {"error": ""}
    return figures


class SegmentListView(RoleRequiredMixin, ListView):
    """Segments with their last counts; counting is a job (no count per row here)."""

    template_name = "marketing/segments/list.html"
    context_object_name = "segments"
    paginate_by = 50

    def get_queryset(self):
        return segments_with_figures()

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        describe = RuleDescriber()
        rows = []
        for segment in ctx["segments"]:
            figures = _figures(segment)
            rows.append(
                {
                    "segment": segment,
                    "count": figures["count"],
                    "figures": figures,
                    "summary": describe(segment.rules),
                }
            )
        ctx["rows"] = rows
        return ctx


class SegmentBuilderView(RoleRequiredMixin, FormView):
    """Create a segment (no ``pk``) or change one; the rules come from the builder script."""

    template_name = "marketing/segments/builder.html"
    form_class = SegmentForm
    read_roles = RoleRequiredMixin.write_roles

    @cached_property
    def segment(self) -> Segment | None:
        pk = self.kwargs.get("pk")
        return get_object_or_404(Segment, pk=pk) if pk else None

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["segment"] = self.segment
        return kwargs

    def get_initial(self):
        if self.segment is None:
            return {}
        return {"name": self.segment.name, "description": self.segment.description}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        form = ctx["form"]
        if form.is_bound:
            rules = form.cleaned_data.get("rules") if hasattr(form, "cleaned_data") else None
        else:
            rules = self.segment.rules if self.segment else None
        ctx["segment"] = self.segment
        ctx["initial_rules"] = rules or {"op": "and", "rules": []}
        ctx["operator_labels"] = {key: str(label) for key, label in OPERATOR_LABELS.items()}
        ctx["has_profile_fields"] = ProfileField.objects.exists()
        # The last counted base (the overview's figures), not a count per page view.
        shown = overview_figures()["customer_count_shown"]
        ctx["customer_total"] = (shown or {}).get("count") or 0
        return ctx

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            if self.segment is None:
                segment = segment_create(
                    name=data["name"],
                    rules=data["rules"],
                    description=data["description"],
                    by=self.request.user,
                )
                messages.success(
                    self.request, _("Segment “%(name)s” saved.") % {"name": segment.name}
                )
            else:
                segment = segment_update(
                    segment=self.segment,
                    name=data["name"],
                    rules=data["rules"],
                    description=data["description"],
                    by=self.request.user,
                )
                messages.success(
                    self.request, _("Segment “%(name)s” updated.") % {"name": segment.name}
                )
        except SegmentRuleError as exc:
            form.add_error(None, _("A rule needs fixing: %(error)s") % {"error": exc})
            return self.form_invalid(form)
        return redirect("segment-detail", pk=segment.pk)


class SegmentDetailView(RoleRequiredMixin, TemplateView):
    """The segment with its last counts and a few members (a bounded read by id)."""

    template_name = "marketing/segments/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        segment = get_object_or_404(segments_with_figures(), pk=kwargs["pk"])
        figures = _figures(segment)
        count = figures["count"]
        ctx.update(
            segment=segment,
            count=count,
            figures=figures,
            reachable=figures["reach"],
            summary=RuleDescriber()(segment.rules),
            latest_model=training_runs()
            .filter(job__status=Job.Status.SUCCEEDED)
            .order_by("-created_at")
            .first(),
        )
        if count["error"] or count["count"] is None or figures["stale"]:
            return ctx
        columns = list(ProfileField.objects.order_by("id")[:SAMPLE_COLUMNS])
        ctx["columns"] = columns
        # In id order: the primary key's index is read until SAMPLE_SIZE members are found,
        # where ordering by anything else would sort the whole segment.
        members = segment_customers(segment.rules).order_by("pk")[:SAMPLE_SIZE]
        ctx["sample"] = [
            (c.pk, c.pseudonym, [c.attributes.get(f.name, "—") for f in columns]) for c in members
        ]
        return ctx


class SegmentCountView(RoleRequiredMixin, View):
    """Start counting the segment ("Count now", "Recount"); the page shows the progress."""

    def post(self, request, pk: int):
        segment = get_object_or_404(Segment, pk=pk)
        segment_figures_refresh(segment=segment, by=request.user)
        messages.success(request, _("Counting started: the figures update when it is done."))
        return redirect(reverse("segment-detail", args=[pk]))


class RuleDescriber:
    """A rules tree in words, e.g. ``Age at least 30 and (Job is admin. or Has consent: …)``,
    in the active language: one sentence per operator (``RULE_SENTENCES``)."""

    def __init__(self) -> None:
        self._labels: dict[str, str] | None = None

    def __call__(self, rules: dict | None) -> str:
        if not rules or not rules.get("rules"):
            return _("Everyone")
        return self._group(rules, top=True)

    def _label(self, field: str) -> str:
        if self._labels is None:
            self._labels = {f["field"]: str(f["label"]) for f in available_fields()}
        return self._labels.get(field, field)

    def _group(self, node: dict, top: bool = False) -> str:
        joined = (
            _("%(left)s or %(right)s") if node.get("op") == "or" else _("%(left)s and %(right)s")
        )
        parts = [
            self._group(child)
            if isinstance(child, dict) and "rules" in child
            else self._rule(child)
            for child in node.get("rules", [])
        ]
        text = parts[0] if parts else ""
        for part in parts[1:]:
            text = joined % {"left": text, "right": part}
        return text if top or len(parts) < 2 else _("(%(rules)s)") % {"rules": text}

    def _rule(self, rule: Any) -> str:
        if not isinstance(rule, dict):
            return "?"
        operator = str(rule.get("operator", "?"))
        field = self._label(str(rule.get("field", "?")))
        value = rule.get("value")
        sentence = RULE_SENTENCES.get(operator)
        no_value = value in (None, "")
        if sentence is None:
            text = self._words(field, operator, value)
        elif operator == "between":
            if isinstance(value, list) and len(value) == 2:
                text = sentence % {"field": field, "low": value[0], "high": value[1]}
            else:
                text = self._words(field, operator, value)
        elif operator in ("in", "not_in"):
            if isinstance(value, list):
                text = sentence % {"field": field, "values": ", ".join(str(v) for v in value)}
            else:
                text = self._words(field, operator, value)
        elif operator in _VALUE_OPERATORS:
            if isinstance(value, list) or no_value:
                text = self._words(field, operator, value)
            else:
                text = sentence % {"field": field, "value": value}
        elif no_value:
            text = sentence % {"field": field}
        else:
            text = self._words(field, operator, value)
        if rule.get("within_days"):
            text = _("%(rule)s in the last %(days)s days") % {
                "rule": text,
                "days": rule["within_days"],
            }
        if rule.get("offer"):
            text = _("%(rule)s for offer %(offer)s") % {"rule": text, "offer": rule["offer"]}
        return text

    @staticmethod
    def _words(field: str, operator: str, value: Any) -> str:
        """A rule no sentence fits (an odd value for its operator): its parts side by side."""
        words = [field, str(OPERATOR_LABELS.get(operator, operator))]
        if isinstance(value, list):
            sep = " and " if operator == "between" else ", "
            words.append(sep.join(str(v) for v in value))
        elif value not in (None, ""):
            words.append(str(value))
        return " ".join(words)


# Operators whose sentence names one value.
_VALUE_OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte", "contains", "before", "after"}
