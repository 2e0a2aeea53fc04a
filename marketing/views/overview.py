from django.views.generic import TemplateView

from marketing.models import ConsentRecord, Customer, Job, Upload
from marketing.selectors.consent import customers_with_consent
from marketing.views.mixins import RoleRequiredMixin


class OverviewView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["customer_count"] = Customer.objects.count()
        ctx["consent_counts"] = [
            (label, customers_with_consent(value).count())
            for value, label in ConsentRecord._meta.get_field("purpose").choices
        ]
        ctx["upload_count"] = Upload.objects.count()
        ctx["recent_jobs"] = Job.objects.select_related("created_by")[:8]
        return ctx
