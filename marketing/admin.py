"""The Django admin as the console for data and consent.

Personal identifiers are masked for everyone without ``marketing.view_pii`` (in lists, change
pages and search); consent history is read-only and grows only by appending; deleting a
customer is an erasure; jobs, uploads and the audit log are read-only.
"""

import operator
from functools import reduce
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from marketing.dbstats import EstimatedCountPaginator
from marketing.exporters.hashing import HASHED
from marketing.ingest.values import PROFILE_PARSERS, BadValue, phone_for_country, to_country
from marketing.models import (
    Audience,
    AuditEvent,
    CampaignPlan,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    DriftCheck,
    ExplanationRun,
    Export,
    Interaction,
    Job,
    ModelPromotion,
    Offer,
    ProfileField,
    PseudonymKeyRotation,
    RecommendationRun,
    RetrainSchedule,
    ScoringChunk,
    ScoringRun,
    Segment,
    Suppression,
    TrainingRun,
    Upload,
)
from marketing.models.consent import CONSENT_HISTORY_FIELDS
from marketing.models.uploads import UPLOAD_FIELDS
from marketing.pii import identity_of, identity_value, masked_values
from marketing.pseudonyms import pseudonym_prefix_q
from marketing.roles import can_view_pii
from marketing.segments import SegmentRuleError, compile_rules
from marketing.selectors.explanations import explanation_runs
from marketing.selectors.segments import segment_count_preview
from marketing.services.audiences import suppression_add, suppression_remove
from marketing.services.audit import audit_log, log_pii_view
from marketing.services.consent import consent_record_append
from marketing.services.erasure import customer_erase
from marketing.services.segments import segment_create, segment_delete, segment_update

# Searches are by prefix, each through its own index (migration 0015): a substring search, or
# one OR across the customer and identity tables, reads both tables whole.
SEARCH_FIELDS = ("external_id",)
# Identifiers a steward may search by, from the start: the email (how people write in to ask
# for their data or its erasure). Each is an index written by every import.
PII_SEARCH_FIELDS = ("email",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the product itself: they may be looked at, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _starts_with(fields: tuple[str, ...], term: str) -> Q:
    return reduce(operator.or_, (Q(**{f"{name}__istartswith": term}) for name in fields))


def _masked(name: str, label: str):
    @admin.display(description=label)
    def show(self, identity: CustomerIdentity) -> str:
        return masked_values(identity)[name]

    return show


class CustomerIdentityForm(forms.ModelForm):
    """A steward's edit of the identifiers, read as an import reads them: the country as an
    ISO code (or its name), the phone in E.164 (a national number in that country)."""

    country = forms.CharField(
        required=False, max_length=100, help_text="ISO code (DE) or English name (Germany)."
    )

    class Meta:
        model = CustomerIdentity
        fields = CustomerIdentity.PII_FIELDS

    def clean_country(self) -> str:
        text = (self.cleaned_data.get("country") or "").strip()
        try:
            return to_country(text) if text else ""
        except BadValue as bad:
            raise forms.ValidationError(f"'{text}' {bad}") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        phone = (data.get("phone") or "").strip()
        if phone and "country" not in self.errors:
            try:
                data["phone"] = phone_for_country(phone, data.get("country") or "")
            except BadValue as bad:
                # Only those who may see identifiers edit them: the value is shown as typed.
                self.add_error("phone", f"'{phone}' {bad}")
        return data


class CustomerIdentityInline(admin.StackedInline):
    """Identifiers: editable with the PII permission, masked and read-only without it."""

    model = CustomerIdentity
    form = CustomerIdentityForm
    can_delete = False
    extra = 0
    max_num = 1
    masked_fields = (
        "masked_email",
        "masked_phone",
        "masked_first_name",
        "masked_last_name",
        "country",
        "masked_postal_code",
    )
    masked_email = _masked("email", "Email")
    masked_phone = _masked("phone", "Phone")
    masked_first_name = _masked("first_name", "First name")
    masked_last_name = _masked("last_name", "Last name")
    masked_postal_code = _masked("postal_code", "Postal code")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if can_view_pii(request.user):
            return tuple(CustomerIdentity.PII_FIELDS)
        return tuple(self.masked_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if can_view_pii(request.user):
            return []
        return list(self.masked_fields)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("marketing.view_customer")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_pii(request.user) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_pii(request.user) and super().has_change_permission(request, obj)


class ConsentHistoryInline(admin.TabularInline):
    """The customer's consent history, read-only (new records go through Consent records)."""

    model = ConsentRecord
    fk_name = "customer"
    fields = CONSENT_HISTORY_FIELDS
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("purpose", "-effective_at", "-id")
    verbose_name_plural = "consent history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Profile fields shown as form fields on the customer's admin page at most (the catalogue's
# first ones by name, then any other attribute the customer has).
MAX_ATTRIBUTE_FIELDS = 200
ATTRIBUTE_FIELD = "attr__"


def _attribute_names(customer: Customer | None) -> list[tuple[str, str, str]]:
    """(name, label, data type) of the profile fields the form edits."""
    catalogue = {
        f.name: (f.label or f.name, f.data_type)
        for f in ProfileField.objects.order_by("name")[:MAX_ATTRIBUTE_FIELDS]
    }
    for name in (customer.attributes if customer is not None else {}) or {}:
        catalogue.setdefault(name, (name, ProfileField.DataType.TEXT))
    return [(name, label, data_type) for name, (label, data_type) in catalogue.items()]


class CustomerAttributesForm(forms.ModelForm):
    """The profile as one field per attribute, each read as an import reads that type
    (number, yes/no, date, text); an empty field removes the attribute."""

    attribute_fields: list[tuple[str, str, str]] = []

    class Meta:
        model = Customer
        fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = (self.instance.attributes or {}) if self.instance.pk else {}
        for name, _label, _type in self.attribute_fields:
            value = stored.get(name)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            self.initial[ATTRIBUTE_FIELD + name] = "" if value is None else str(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        attributes = dict(self.instance.attributes or {})
        for name, _label, data_type in self.attribute_fields:
            key = ATTRIBUTE_FIELD + name
            text = (data.get(key) or "").strip()
            if not text:
                attributes.pop(name, None)
                continue
            try:
                attributes[name] = PROFILE_PARSERS[data_type](text)
            except BadValue as bad:
                self.add_error(key, f"'{text}' {bad}")
        self.instance.attributes = attributes
        return data


def attributes_form(fields: list[tuple[str, str, str]]) -> type[CustomerAttributesForm]:
    declared: dict[str, Any] = {
        ATTRIBUTE_FIELD + name: forms.CharField(
            label=label,
            required=False,
            max_length=1000,
            help_text=ProfileField.DataType(data_type).label
            if data_type in ProfileField.DataType.values
            else "",
        )
        for name, label, data_type in fields
    }
    declared["attribute_fields"] = fields
    return type("CustomerAttributesForm", (CustomerAttributesForm,), declared)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display_masked = (
        "short_pseudonym",
        "external_id",
        "masked_email",
        "country",
        "created_at",
    )
    list_display_pii = (
        "short_pseudonym",
        "external_id",
        "email",
        "full_name",
        "country",
        "created_at",
    )
    list_select_related = ("identity",)
    search_fields = tuple(f"^{name}" for name in SEARCH_FIELDS)
    search_help_text = "External id or pseudonym (stewards: or email), from the start"
    # The total of an unfiltered list is the statistics' estimate, not a count.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = ("external_id", "pseudonym", "created_at", "updated_at")
    inlines = [CustomerIdentityInline, ConsentHistoryInline]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        names = [ATTRIBUTE_FIELD + name for name, _, _ in _attribute_names(obj)]
        return ("external_id", "pseudonym", *names, "created_at", "updated_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        kwargs["form"] = attributes_form(_attribute_names(obj))
        kwargs["fields"] = [ATTRIBUTE_FIELD + name for name, _, _ in _attribute_names(obj)]
        return super().get_form(request, obj, change, **kwargs)

    def get_list_display(self, request: HttpRequest):
        return self.list_display_pii if can_view_pii(request.user) else self.list_display_masked

    def get_search_fields(self, request: HttpRequest):
        # Searching by an identifier would reveal it to someone who may not see it.
        if can_view_pii(request.user):
            return self.search_fields + tuple(f"^identity__{name}" for name in PII_SEARCH_FIELDS)
        return self.search_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        """The customers whose external id, pseudonym or (with the PII permission) email
        starts with the term, case-insensitively: the customer and identity
        tables are searched apart, each by its indexes, and the matches joined."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # Unordered: SQLite refuses an ORDER BY inside a UNION.
        matches = Customer.objects.filter(
            _starts_with(SEARCH_FIELDS, term) | pseudonym_prefix_q(term)
        ).order_by()
        ids = matches.values("pk")
        if can_view_pii(request.user):
            people = CustomerIdentity.objects.filter(_starts_with(PII_SEARCH_FIELDS, term))
            ids = ids.union(people.order_by().values("customer_id"))
        return queryset.filter(pk__in=ids), False

    @admin.display(description="Pseudonym", ordering="pseudonym")
    def short_pseudonym(self, customer: Customer) -> str:
        return customer.pseudonym[:12]

    @admin.display(description="Email")
    def masked_email(self, customer: Customer) -> str:
        return masked_values(identity_of(customer))["email"]

    @admin.display(description="Email")
    def email(self, customer: Customer) -> str:
        return identity_value(identity_of(customer), "email")

    @admin.display(description="Name")
    def full_name(self, customer: Customer) -> str:
        identity = identity_of(customer)
        names = [identity_value(identity, name) for name in ("first_name", "last_name")]
        return HASHED if HASHED in names else " ".join(names).strip()

    @admin.display(description="Country")
    def country(self, customer: Customer) -> str:
        identity = identity_of(customer)
        return identity.country if identity else ""

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and can_view_pii(request.user):
            shown = [c for c in changelist.result_list if identity_of(c) is not None]
            log_pii_view(user=request.user, customers=shown, where="admin customer list")
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        if request.method == "GET" and can_view_pii(request.user):
            customer = self.get_object(request, unquote(object_id))
            if customer is not None and identity_of(customer) is not None:
                log_pii_view(user=request.user, customers=customer, where="admin customer detail")
        return super().change_view(request, object_id, form_url, extra_context)

    # Deleting a customer here is an erasure: everything about them goes, with an audit event.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("marketing.erase_customer")

    def get_deleted_objects(self, objs, request: HttpRequest):
        deleted, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        # The erase permission covers the customer's identity, interactions and consents.
        return deleted, model_count, set(), protected

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """Erasing one customer goes through the erasure screen: what will happen, a reason,
        then the erasure as a job (the stock page would delete without either)."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("This customer does not exist (erased already?).")
        return redirect("customer-erase", pk=customer.pk)

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        customer_erase(customer=obj, by=request.user, reason="Deleted in the admin console")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        for customer in queryset:
            customer_erase(
                customer=customer, by=request.user, reason="Deleted in the admin console (bulk)"
            )


class CustomerByIdField(forms.CharField):
    """A customer named by the ID the team's own files use (external id), not the database's
    internal number."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Customer ID")
        kwargs.setdefault("help_text", "The customer's ID as in your uploaded files.")
        super().__init__(max_length=128, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Customer):
            return value.external_id
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            found = Customer.objects.filter(pk=int(value)).values_list("external_id", flat=True)
            return found.first() or value
        return value

    def clean(self, value: Any) -> Customer:
        text = super().clean(value).strip()
        customer = Customer.objects.filter(external_id=text).first()
        if customer is None:
            raise forms.ValidationError(f"No customer has the ID '{text}'.")
        return customer


class ConsentRecordForm(forms.ModelForm):
    customer = CustomerByIdField()

    class Meta:
        model = ConsentRecord
        fields = (
            "customer",
            "purpose",
            "status",
            "lawful_basis",
            "effective_at",
            "expires_at",
            "notice_version",
            "note",
        )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        effective_at = self.cleaned_data.get("effective_at")
        expires_at = self.cleaned_data.get("expires_at")
        if effective_at and expires_at and expires_at <= effective_at:
            self.add_error("expires_at", "The expiry must be later than the time it takes effect.")
        return data


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    """Append-only: records can be added (a grant, a denial, a withdrawal), never changed."""

    form = ConsentRecordForm
    list_display = (
        "customer",
        "purpose",
        "status",
        "lawful_basis",
        "effective_at",
        "expires_at",
        "source",
        "recorded_by",
    )
    list_filter = ("purpose", "status", "source", "lawful_basis")
    list_select_related = ("customer", "recorded_by")
    search_fields = ("=customer__external_id", "^customer__pseudonym")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    view_fields = ("customer", *CONSENT_HISTORY_FIELDS)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return self.view_fields if obj is not None else ConsentRecordForm.Meta.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return self.view_fields if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        return {"effective_at": timezone.now(), **initial}

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ConsentRecord, form, change: bool) -> None:
        record = consent_record_append(
            customer=obj.customer,
            purpose=obj.purpose,
            status=obj.status,
            lawful_basis=obj.lawful_basis,
            source=ConsentRecord.Source.ADMIN,
            notice_version=obj.notice_version,
            effective_at=obj.effective_at,
            expires_at=obj.expires_at,
            note=obj.note,
            by=request.user,
        )
        # The admin logs and redirects with the object it built; point it at the real row.
        obj.pk, obj.source, obj.recorded_at = record.pk, record.source, record.recorded_at


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("name", "description", "rules")

    def clean_rules(self) -> dict[str, Any]:
        rules = self.cleaned_data["rules"]
        try:
            compile_rules(rules)
        except SegmentRuleError as error:
            raise forms.ValidationError(str(error)) from None
        return rules


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ("name", "created_by", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("size", "created_by", "created_at", "updated_at")
    fields = ("name", "description", "rules", "size", "created_by", "created_at", "updated_at")

    @admin.display(description="Customers now")
    def size(self, segment: Segment) -> str:
        if segment.pk is None:
            return "-"
        try:
            return segment_count_preview(segment.rules)["display"]
        except SegmentRuleError as error:
            return f"Rules no longer valid: {error}"

    def save_model(self, request: HttpRequest, obj: Segment, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            segment_update(
                segment=obj,
                name=data["name"],
                rules=data["rules"],
                description=data["description"],
                by=request.user,
            )
        else:
            created = segment_create(
                name=data["name"],
                rules=data["rules"],
                description=data["description"],
                by=request.user,
            )
            obj.pk, obj.created_at = created.pk, created.created_at

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        segment_delete(segment=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset:
            segment_delete(segment=segment, by=request.user)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ("title", "external_id", "category", "price", "unit_cost", "active")
    list_filter = ("active", "category")
    search_fields = ("external_id", "title", "category")


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "offer", "customer", "value", "campaign")
    list_filter = ("kind",)
    list_select_related = ("offer", "customer")
    search_fields = ("=customer__external_id", "=offer__external_id", "campaign")
    raw_id_fields = ("customer", "offer")
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(ProfileField)
class ProfileFieldAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "data_type")
    list_filter = ("data_type",)
    search_fields = ("name", "label")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "title",
        "status",
        "progress",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status")
    list_select_related = ("created_by",)
    search_fields = ("title",)


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "kind", "status", "row_count", "created_by", "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("created_by",)
    search_fields = ("original_name",)
    # The stored files hold raw rows (possibly identifiers); they are not offered here.
    fields = (*UPLOAD_FIELDS, "created_by", "created_at")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "what", "target_type", "target_ref")

    @admin.display(description="Event", ordering="action")
    def what(self, event: AuditEvent) -> str:
        """The action with the step it records: an export is requested, then its file written,
        then downloaded, each a row of its own (not the same "Export" three times)."""
        details = event.details or {}
        step = details.get("event") or details.get("outcome") or ""
        label = event.get_action_display()
        return f"{label}: {step}" if step else label

    list_filter = ("action", "target_type")
    list_select_related = ("actor",)
    search_fields = ("target_ref",)


@admin.register(PseudonymKeyRotation)
class PseudonymKeyRotationAdmin(ReadOnlyAdmin):
    """Progress of ``manage.py rotate_pseudonym_key``; keys appear by fingerprint only."""

    list_display = (
        "started_at",
        "old_key_fingerprint",
        "new_key_fingerprint",
        "status",
        "step",
        "finished_at",
    )


# ---- audiences and exports --------------------------------------------------------------------


@admin.register(Audience)
class AudienceAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "status",
        "segment_name",
        "cut",
        "cut_value",
        "size",
        "frozen_at",
        "created_by",
    )
    list_filter = ("status", "cut")
    list_select_related = ("created_by",)
    search_fields = ("name", "segment_name")


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "audience",
        "platform",
        "row_count",
        "checksum",
        "created_by",
        "created_at",
    )
    list_filter = ("platform",)
    list_select_related = ("audience", "created_by")
    # The file is downloaded from the product (role-checked, audit-logged), not from here.
    exclude = ("file_path",)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Adding and removing go through the services, so each is in the audit log."""

    list_display = ("customer", "reason", "created_by", "created_at")
    list_select_related = ("customer", "created_by")
    search_fields = ("=customer__external_id", "=customer__pseudonym", "reason")
    raw_id_fields = ("customer",)
    fields = ("customer", "reason")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            obj.pk = suppression_add(customer=obj.customer, reason=obj.reason, by=request.user).pk

    def delete_model(self, request, obj) -> None:
        suppression_remove(suppression=obj, by=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for suppression in queryset.select_related("customer"):
            suppression_remove(suppression=suppression, by=request.user)


# ---- models and campaigns (made by jobs in the product; looked at here) ----------------------


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "name",
        "offer",
        "mode",
        "base_model",
        "customers_used",
        "model_id",
        "flagged_erasure",
        "created_by",
        "created_at",
    )
    list_filter = ("mode", "target", "flagged_erasure")
    list_select_related = ("offer", "created_by")
    search_fields = ("name", "model_id")


@admin.register(RetrainSchedule)
class RetrainScheduleAdmin(admin.ModelAdmin):
    """The console for scheduled re-training: each row re-trains the model in use of an
    offer and target every so often (celery beat starts the due ones)."""

    list_display = (
        "id",
        "offer",
        "target",
        "start",
        "every_days",
        "enabled",
        "next_at",
        "last_run",
        "last_message",
    )
    list_filter = ("enabled", "start", "target")
    list_select_related = ("offer", "last_run")
    fields = ("offer", "target", "start", "every_days", "enabled", "next_at")
    readonly_fields = ("last_run", "last_message", "created_by", "created_at")
    raw_id_fields = ("offer",)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return (*self.fields, *self.readonly_fields) if obj else self.fields

    def save_model(self, request: HttpRequest, obj: RetrainSchedule, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        audit_log(
            actor=request.user,
            action=AuditEvent.Action.JOB,
            target_type="retrain_schedule",
            target_ref=obj.pk,
            details={
                "change": "edited" if change else "created",
                "offer": obj.offer_id,
                "target": obj.target,
                "start": obj.start,
                "every_days": obj.every_days,
                "enabled": obj.enabled,
            },
        )


@admin.register(ModelPromotion)
class ModelPromotionAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "offer", "target", "training_run", "previous", "by", "note")
    list_filter = ("action", "target")
    list_select_related = ("offer", "training_run", "previous", "by")


@admin.register(DriftCheck)
class DriftCheckAdmin(ReadOnlyAdmin):
    list_display = ("id", "training_run", "alert", "recent_rows", "created_at")
    list_filter = ("alert",)
    list_select_related = ("training_run",)


class ScoringChunkInline(admin.TabularInline):
    """The parts of a scoring run: who scored each, in how many attempts, and why the last
    attempt of a failed part failed (its error text is for staff only)."""

    model = ScoringChunk
    fields = (
        "number",
        "first_customer",
        "last_customer",
        "status",
        "attempts",
        "rows_scored",
        "worker",
        "started_at",
        "finished_at",
        "error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number",)
    verbose_name_plural = "parts"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    inlines = (ScoringChunkInline,)
    list_display = (
        "id",
        "training_run",
        "segment",
        "customers_scored",
        "rows_scored",
        "created_by",
        "created_at",
    )
    list_select_related = ("training_run", "segment", "created_by")


@admin.register(ExplanationRun)
class ExplanationRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "training_run",
        "scope",
        "customer",
        "sample_size",
        "created_by",
        "created_at",
    )
    list_filter = ("scope",)
    list_select_related = ("training_run", "customer", "created_by")
    raw_id_fields = ("customer",)

    def get_queryset(self, request: HttpRequest):
        return explanation_runs()

    def get_exclude(self, request: HttpRequest, obj: Any = None):
        # One customer's explanation is derived from their score: hidden like the score
        # once their profiling consent is no longer valid.
        if obj is not None and obj.customer_id is not None and not obj.profiling_consent:
            return ("result",)
        return super().get_exclude(request, obj)


@admin.register(CampaignPlan)
class CampaignPlanAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "scoring_run",
        "offer",
        "contacts",
        "campaign",
        "created_by",
        "created_at",
    )
    list_select_related = ("scoring_run", "offer", "created_by")
    search_fields = ("name", "campaign")


@admin.register(RecommendationRun)
class RecommendationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "scoring_run", "k", "diversity", "offer_cap", "created_by", "created_at")
    list_select_related = ("scoring_run", "created_by")
