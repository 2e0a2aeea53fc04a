from typing import Any
from urllib.parse import urlencode

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from marketing.dbstats import table_size
from marketing.keyset import BadCursor, KeysetOrdering, keyset_page
from marketing.models import Customer, Job, ProfileField, Purpose
from marketing.pii import identity_of, masked_identity
from marketing.pseudonyms import pseudonym_prefix_q
from marketing.roles import DATA_STEWARD, can_view_pii
from marketing.selectors.audiences import customer_exports
from marketing.selectors.consent import (
    current_consents,
    customers_with_consent,
    has_consent,
    is_record_valid,
)
from marketing.selectors.erasure import erasure_outcome, erasure_plan
from marketing.selectors.recommendations import customer_latest_recommendations
from marketing.selectors.segments import shown_count
from marketing.selectors.training import customer_latest_scores, training_runs
from marketing.services.audit import log_pii_view
from marketing.services.erasure import ErasureError, customer_erase_start
from marketing.services.portability import customer_portability_download
from marketing.views.explanations import MODEL_PARAM, customer_section
from marketing.views.mixins import RoleRequiredMixin

LIST_COLUMNS = 5
# The orders the list offers (``?sort=``), each with an index (field, id).
# A search lists at most this many customers (type more of the id to narrow it).
SEARCH_MATCHES = 1_000

LIST_ORDERINGS = {
    "": ("id", gettext_lazy("Import order")),
    "newest": ("-created_at", gettext_lazy("Newest first")),
    "external_id": ("external_id", gettext_lazy("External id")),
}
COLUMNS_SESSION_KEY = "customer_list_columns"
# Short names for consent badges in dense tables; the full label is the badge's title.
PURPOSE_SHORT = {
    Purpose.EMAIL_MARKETING: gettext_lazy("Email"),
    Purpose.AD_TARGETING: gettext_lazy("Ads"),
    Purpose.AD_USER_DATA: gettext_lazy("Ad data"),
    Purpose.AD_PERSONALIZATION: gettext_lazy("Ad pers."),
    Purpose.MODEL_TRAINING: gettext_lazy("Training"),
    Purpose.PROFILING: gettext_lazy("Profiling"),
}


class CustomerListView(RoleRequiredMixin, TemplateView):
    """One page of customers, by cursor: a deep page costs what the first does, and no
    request counts the base (an unfiltered list shows the table's size as the statistics
    know it)."""

    template_name = "marketing/customers/list.html"
    page_size = 25

    def get(self, request, *args, **kwargs):
        try:
            return super().get(request, *args, **kwargs)
        except BadCursor as exc:
            context = {"message": exc.errors["cursor"], "start_url": reverse("customer-list")}
            return render(request, "400.html", context, status=400)

    def get_queryset(self):
        customers = Customer.objects.select_related("identity")
        q = self.request.GET.get("q", "").strip()
        self.search_capped = False
        if q:
            # Prefixes, case-insensitive: indexed (migration 0015), where a substring is not.
            # The matches are read first, at most SEARCH_MATCHES of them through the prefix
            # indexes: ordered and paged with the list, a search with few matches would walk
            # the list's order over the whole base looking for more.
            matches = list(
                Customer.objects.filter(Q(external_id__istartswith=q) | pseudonym_prefix_q(q))
                .order_by()
                .values_list("pk", flat=True)[:SEARCH_MATCHES]
            )
            self.search_capped = len(matches) == SEARCH_MATCHES
            customers = customers.filter(pk__in=matches)
        purpose = self.request.GET.get("consent", "")
        if purpose in Purpose.values:
            customers = customers_with_consent(purpose, queryset=customers)
        return customers

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sort = self.request.GET.get("sort", "")
        if sort not in LIST_ORDERINGS:
            sort = ""
        ordering = KeysetOrdering.of(Customer, LIST_ORDERINGS[sort][0])
        result = keyset_page(
            self.get_queryset(),
            ordering,
            size=self.page_size,
            cursor=self.request.GET.get("cursor") or None,
        )
        page = result.rows
        fields = list(ProfileField.objects.order_by("id"))
        columns = self._columns(fields)
        consented = self._consented_purposes([c.pk for c in page])
        user = self.request.user
        if can_view_pii(user):
            log_pii_view(user=user, customers=page, where="customer list")
        ctx["customers"] = ctx["object_list"] = page
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
        ctx["search_capped"] = getattr(self, "search_capped", False)
        ctx["search_matches"] = SEARCH_MATCHES
        ctx["consent"] = self.request.GET.get("consent", "")
        ctx["sort"] = sort
        ctx["sorts"] = [(key, label) for key, (_, label) in LIST_ORDERINGS.items()]
        ctx["purposes"] = Purpose.choices
        params = {k: ctx[k] for k in ("q", "consent", "sort") if ctx[k]}
        ctx["filtered"] = bool(params.keys() - {"sort"})
        ctx["next_url"] = _page_url(params, result.next_cursor)
        ctx["previous_url"] = _page_url(params, result.previous_cursor)
        ctx["first_url"] = _page_url(params, "") if result.previous_cursor else None
        ctx["has_customers"] = bool(page) or Customer.objects.exists()
        ctx["total"] = None if ctx["filtered"] else _shown_total()
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
        current = current_consents(customer)
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
            **_scores(customer),
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


def _scores(customer: Customer) -> dict:
    """Stored scores are shown only while the customer's profiling consent is valid: after a
    withdrawal (an objection to profiling) the scores may no longer be used, not even read."""
    if not has_consent(customer, Purpose.PROFILING):
        return {"scores": [], "scores_refused": customer.scores.exists()}
    return {"scores": customer_latest_scores(customer), "scores_refused": False}


def _consent_state(purpose: Purpose, record, now) -> dict:
    if record is None:
        state, label = "none", _("No record")
    elif is_record_valid(record, at=now):
        state, label = "granted", _("Granted")
    elif record.status == record.Status.GRANTED:
        state, label = "expired", _("Expired")
    else:
        state, label = record.status, record.get_status_display()
    return {"purpose": purpose.label, "state": state, "label": label, "record": record}


def _shown_total() -> dict[str, Any] | None:
    """The number of customers, as every count of customers is shown (``shown_count``)."""
    size = table_size(Customer)
    shown = shown_count(size.rows) if size is not None else None
    if size is None or shown is None:
        return None
    return {"display": f"{shown:,}", "approximate": size.approximate}


def _page_url(params: dict[str, str], cursor: str | None) -> str | None:
    """The list's URL with its filters and ``cursor`` ("" for the first page)."""
    if cursor is None:
        return None
    query = urlencode({**params, "cursor": cursor} if cursor else params)
    return f"?{query}" if query else "?"


def _display(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class CustomerEraseView(RoleRequiredMixin, TemplateView):
    """A data steward's erasure: what will happen, step by step, then a reason and a confirm.
    The erasure runs as a job; its page says what was done."""

    template_name = "marketing/customers/erase.html"
    read_roles = write_roles = (DATA_STEWARD,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        customer = get_object_or_404(Customer, pk=kwargs["pk"])
        ctx.update(customer=customer, plan=erasure_plan(customer))
        ctx.setdefault("reason", "")
        return ctx

    def post(self, request, pk: int):
        customer = get_object_or_404(Customer, pk=pk)
        reason = request.POST.get("reason", "")
        try:
            job = customer_erase_start(customer=customer, by=request.user, reason=reason)
        except ErasureError as exc:
            ctx = self.get_context_data(pk=pk, error=str(exc), reason=reason)
            return self.render_to_response(ctx, status=400)
        return redirect("customer-erasure", pk=job.pk)


class CustomerErasureView(RoleRequiredMixin, TemplateView):
    """An erasure job: its progress, then what it did and the models to retrain."""

    template_name = "marketing/customers/erasure.html"
    read_roles = (DATA_STEWARD,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = get_object_or_404(Job, pk=kwargs["pk"], kind=Job.Kind.ERASE)
        done = job.status == Job.Status.SUCCEEDED
        flagged = job.result.get("flagged_runs", []) if done else []
        ctx.update(
            job=job,
            outcome=erasure_outcome(job.result) if done else [],
            flagged=list(training_runs().filter(pk__in=flagged).order_by("-created_at")),
        )
        return ctx
