from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views import View
from django.views.generic import ListView, TemplateView

from marketing.models import Customer, ProfileField, Purpose
from marketing.pii import identity_of, masked_identity
from marketing.roles import DATA_STEWARD, can_view_pii
from marketing.selectors.audiences import customer_exports
from marketing.selectors.consent import (
    current_consents,
    customers_with_consent,
    has_consent,
    is_record_valid,
)
from marketing.selectors.recommendations import customer_latest_recommendations
from marketing.selectors.training import customer_latest_scores
from marketing.services.audit import log_pii_view
from marketing.services.portability import customer_portability_download
from marketing.views.explanations import MODEL_PARAM, customer_section
from marketing.views.mixins import RoleRequiredMixin

LIST_COLUMNS = 5
COLUMNS_SESSION_KEY = "customer_list_columns"
# Short names for consent badges in dense tables; the full label is the badge's title.
PURPOSE_SHORT = {
    Purpose.EMAIL_MARKETING: "Email",
    Purpose.AD_TARGETING: "Ads",
    Purpose.AD_USER_DATA: "Ad data",
    Purpose.AD_PERSONALIZATION: "Ad pers.",
    Purpose.MODEL_TRAINING: "Training",
    Purpose.PROFILING: "Profiling",
}


class CustomerListView(RoleRequiredMixin, ListView):
    template_name = "marketing/customers/list.html"
    context_object_name = "customers"
    paginate_by = 25

    def get_queryset(self):
        customers = Customer.objects.select_related("identity").order_by("id")
        q = self.request.GET.get("q", "").strip()
        if q:
            customers = customers.filter(Q(external_id__icontains=q) | Q(pseudonym__istartswith=q))
        purpose = self.request.GET.get("consent", "")
        if purpose in Purpose.values:
            customers = customers_with_consent(purpose, queryset=customers)
        return customers

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        page = list(ctx["customers"])
        fields = list(ProfileField.objects.order_by("id"))
        columns = self._columns(fields)
        consented = self._consented_purposes([c.pk for c in page])
        user = self.request.user
        if can_view_pii(user):
            log_pii_view(user=user, customers=page, where="customer list")
        ctx["rows"] = [
            {
                "customer": c,
                "values": [
                    (
                        _display(c.attributes.get(f.name)),
                        f.data_type == ProfileField.DataType.NUMBER,
                    )
                    for f in columns
                ],
                "identity": masked_identity(identity_of(c), user),
                "consents": [
                    (PURPOSE_SHORT[p], p.label) for p in Purpose if c.pk in consented[p.value]
                ],
            }
            for c in page
        ]
        ctx["columns"] = columns
        ctx["all_fields"] = fields
        ctx["shown_names"] = {f.name for f in columns}
        ctx["q"] = self.request.GET.get("q", "")
        ctx["consent"] = self.request.GET.get("consent", "")
        ctx["purposes"] = Purpose.choices
        params = [f"{k}={v}" for k, v in (("q", ctx["q"]), ("consent", ctx["consent"])) if v]
        ctx["query_prefix"] = "".join(f"{p}&" for p in params)
        ctx["filtered"] = bool(params)
        ctx["has_customers"] = bool(page) or Customer.objects.exists()
        return ctx

    def _columns(self, fields: list[ProfileField]) -> list[ProfileField]:
        """The attribute columns the user picked (kept in the session), else the file's first."""
        session = self.request.session
        if "cols" in self.request.GET:
            session[COLUMNS_SESSION_KEY] = self.request.GET.getlist("cols")
        picked = session.get(COLUMNS_SESSION_KEY)
        if picked is None:
            return fields[:LIST_COLUMNS]
        return [f for f in fields if f.name in picked]

    @staticmethod
    def _consented_purposes(ids: list[int]) -> dict[str, set[int]]:
        page = Customer.objects.filter(pk__in=ids)
        return {
            purpose: set(
                customers_with_consent(purpose, queryset=page).values_list("pk", flat=True)
            )
            for purpose in Purpose.values
        }


class CustomerDetailView(RoleRequiredMixin, TemplateView):
    template_name = "marketing/customers/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        customer = get_object_or_404(Customer.objects.select_related("identity"), pk=kwargs["pk"])
        # Catalogue order is the order of the columns in the uploaded file.
        labels = {f.name: f.label or f.name for f in ProfileField.objects.order_by("id")}
        order = {name: i for i, name in enumerate(labels)}
        if can_view_pii(self.request.user):
            log_pii_view(user=self.request.user, customers=customer, where="customer page")
        now = timezone.now()
        current = current_consents(customer, at=now)
        ctx.update(
            customer=customer,
            attributes=[
                (labels.get(name, name), _display(value))
                for name, value in sorted(
                    customer.attributes.items(),
                    key=lambda item: (order.get(item[0], len(order)), item[0]),
                )
            ],
            identity=masked_identity(identity_of(customer), self.request.user),
            consent_state=[
                _consent_state(purpose, current.get(purpose.value), now) for purpose in Purpose
            ],
            consent_history=customer.consents.order_by("-effective_at", "-id"),
            interactions=customer.interactions.select_related("offer")[:50],
            interaction_count=customer.interactions.count(),
            **_scores(customer, at=now),
            recommendations=customer_latest_recommendations(customer),
            explain_customer=customer_section(
                customer, self.request.user, self.request.GET.get(MODEL_PARAM)
            ),
            held_by=list(customer_exports(customer)[:20]),
        )
        return ctx


class CustomerPortabilityView(RoleRequiredMixin, View):
    """The customer's data as one JSON file, for a data steward answering an access or
    portability request."""

    read_roles = (DATA_STEWARD,)

    def get(self, request, pk: int) -> JsonResponse:
        customer = get_object_or_404(Customer, pk=pk)
        document = customer_portability_download(
            customer=customer, by=request.user, where="customer page"
        )
        response = JsonResponse(
            document, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1}
        )
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
        return response


def _scores(customer: Customer, *, at) -> dict:
    """Stored scores are shown only while the customer's profiling consent is valid: after a
    withdrawal (an objection to profiling) the scores may no longer be used, not even read."""
    if not has_consent(customer, Purpose.PROFILING, at=at):
        return {"scores": [], "scores_refused": customer.scores.exists()}
    return {"scores": customer_latest_scores(customer), "scores_refused": False}


def _consent_state(purpose: Purpose, record, now) -> dict:
    if record is None:
        state, label = "none", "No record"
    elif is_record_valid(record, at=now):
        state, label = "granted", "Granted"
    elif record.status == record.Status.GRANTED:
        state, label = "expired", "Expired"
    else:
        state, label = record.status, record.get_status_display()
    return {"purpose": purpose.label, "state": state, "label": label, "record": record}


def _display(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
