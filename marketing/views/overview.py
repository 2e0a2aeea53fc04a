from django.contrib import messages
from django.db.models import Count
from django.db.models.fields.json import KT
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView

from marketing.ingest.demo import load_demo_data
from marketing.models import AuditEvent, Customer, Job, ProfileField, Purpose, Upload
from marketing.roles import DATA_STEWARD, MARKETER
from marketing.selectors.consent import customers_with_consent
from marketing.selectors.segments import shown_count, suppressed_count
from marketing.services.audit import audit_log
from marketing.views import charts
from marketing.views.mixins import RoleRequiredMixin

BREAKDOWN_GROUPS = 10


def small_group(count: int) -> bool:
    return suppressed_count(count)["suppressed"]


class OverviewView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        total = Customer.objects.count()
        consent_rows = self._consent_rows(total)
        ctx.update(
            customer_count=total,
            customer_count_shown=suppressed_count(total),
            upload_count=Upload.objects.count(),
            upload_imported_count=Upload.objects.filter(status=Upload.Status.IMPORTED).count(),
            consent_rows=consent_rows,
            running_job_count=Job.objects.filter(
                status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
            ).count(),
            recent_jobs=Job.objects.select_related("created_by")[:6],
            recent_uploads=Upload.objects.select_related("job")[:5],
        )
        if total:
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
            ctx.update(self._breakdown())
        return ctx

    def _consent_rows(self, total: int) -> list[dict]:
        rows = []
        for purpose in Purpose:
            count = customers_with_consent(purpose.value).count() if total else 0
            shown = suppressed_count(count)
            # The share of the shown (rounded) counts, so it tells no more than they do.
            base = shown_count(total)
            rows.append(
                {
                    "purpose": purpose.value,
                    "label": purpose.label,
                    "hidden": shown["suppressed"],
                    "display": shown["display"],
                    "percent": 100 * (shown["count"] or 0) / base if base else 0,
                }
            )
        return rows

    def _breakdown(self) -> dict:
        """Customers grouped by one text or yes/no profile attribute, chosen by the user."""
        fields = list(
            ProfileField.objects.filter(
                data_type__in=[ProfileField.DataType.TEXT, ProfileField.DataType.BOOLEAN]
            )
        )
        if not fields:
            return {}
        by_name = {field.name: field for field in fields}
        # By default a field that splits the base, not one that is the same for everybody.
        default = next((f for f in fields if len(f.sample_values) > 1), fields[0])
        field = by_name.get(self.request.GET.get("by", ""), default)
        groups = (
            Customer.objects.annotate(value=KT(f"attributes__{field.name}"))
            .values("value")
            .annotate(n=Count("id"))
            .order_by("-n")
        )
        shown, other = [], 0
        for group in groups:
            if len(shown) < BREAKDOWN_GROUPS and not small_group(group["n"]):
                shown.append((_value_label(group["value"]), shown_count(group["n"])))
            else:
                other += group["n"]
        if other and not small_group(other):
            shown.append(("Other groups", shown_count(other)))
        return {
            "breakdown_fields": fields,
            "breakdown_field": field,
            "breakdown_chart": charts.horizontal_bars(
                [label for label, _ in shown], [n for _, n in shown], [f"{n:,}" for _, n in shown]
            )
            if shown
            else None,
        }


def _value_label(value) -> str:
    if value in (None, ""):
        return "(not set)"
    return {"true": "Yes", "false": "No"}.get(str(value).lower(), str(value))


class DemoDataView(RoleRequiredMixin, View):
    """The empty state's "load the demo data" button (a few seconds for 41,188 customers)."""

    read_roles = write_roles = (MARKETER, DATA_STEWARD)

    def post(self, request):
        if Customer.objects.exists():
            messages.info(request, "The demo data only goes into an empty customer base.")
            return redirect("overview")
        counts = load_demo_data()
        audit_log(
            actor=request.user, action=AuditEvent.Action.IMPORT, target_type="demo", details=counts
        )
        messages.success(
            request,
            f"Demo data loaded: {counts['customers']:,} customers with their consent history "
            f"and {counts['interactions']:,} responses.",
        )
        return redirect("overview")
