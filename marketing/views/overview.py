from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views import View
from django.views.generic import TemplateView

from marketing.roles import DATA_STEWARD, MARKETER
from marketing.selectors.champions import drift_alerts
from marketing.selectors.figures import shown_breakdown
from marketing.selectors.overview import breakdown_fields, overview_counts
from marketing.services.demo import DemoDataRefused, demo_data_load
from marketing.services.figures import figures_refresh_all, overview_refresh
from marketing.stored_texts import translated
from marketing.views import charts
from marketing.views.mixins import RoleRequiredMixin


class OverviewView(RoleRequiredMixin, TemplateView):
    """Uploads and jobs, and the last counts of the customer base that a job stored: the page
    never counts the base itself."""

    template_name = "marketing/overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(overview_counts())
        ctx["drift_alerts"] = drift_alerts()
        figures = ctx["figures"]
        consent_rows = figures["consent_rows"]
        ctx["consent_rows"] = consent_rows
        if figures["counted"] and figures["customer_count_shown"]["count"] is not None:
            ctx["consent_chart"] = charts.horizontal_bars(
                [row["label"] for row in consent_rows],
                [0 if row["hidden"] else row["percent"] for row in consent_rows],
                [
                    row["display"]
                    if row["hidden"]
                    else f"{row['percent']:.0f}%  ({row['display']})"
                    for row in consent_rows
                ],
                percent_axis=True,
            )
        if figures["counted"]:
            ctx.update(self._breakdown(figures["breakdowns"]))
        return ctx

    def _breakdown(self, stored: dict) -> dict:
        """Customers grouped by one text or yes/no profile attribute, chosen by the user."""
        fields = [field for field in breakdown_fields() if field.name in stored]
        if not fields:
            return {}
        by_name = {field.name: field for field in fields}
        # By default a field that splits the base, not one that is the same for everybody.
        default = next((f for f in fields if len(f.sample_values) > 1), fields[0])
        field = by_name.get(self.request.GET.get("by", ""), default)
        shown = shown_breakdown(stored[field.name])
        return {
            "breakdown_fields": fields,
            "breakdown_field": field,
            "breakdown_chart": charts.horizontal_bars(
                [label for label, _ in shown], [n for _, n in shown], [f"{n:,}" for _, n in shown]
            )
            if shown
            else None,
        }


class OverviewRefreshView(RoleRequiredMixin, View):
    """The overview's "Refresh" button: count the customer base again, as a job."""

    read_roles = write_roles = (MARKETER, DATA_STEWARD)

    def post(self, request):
        overview_refresh(by=request.user)
        messages.success(
            request, _("Counting the customer base: the figures update when it is done.")
        )
        return redirect("overview")


# The refusal of marketing.services.demo, shown translated.
DEMO_REFUSED = gettext_noop("The demo data only goes into an empty customer base.")


class DemoDataView(RoleRequiredMixin, View):
    """The empty state's "load the demo data" button (a few seconds for 41,188 customers)."""

    read_roles = write_roles = (MARKETER, DATA_STEWARD)

    def post(self, request):
        try:
            counts = demo_data_load(by=request.user)
        except DemoDataRefused as exc:
            messages.info(request, translated(str(exc)))
            return redirect("overview")
        figures_refresh_all(by=request.user)
        messages.success(
            request,
            _(
                "Demo data loaded: %(customers)s customers with their consent history and "
                "%(responses)s responses."
            )
            % {
                "customers": f"{counts['customers']:,}",
                "responses": f"{counts['interactions']:,}",
            },
        )
        return redirect("overview")
