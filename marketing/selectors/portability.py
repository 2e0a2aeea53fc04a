"""Everything held about one customer, as one machine-readable document (GDPR Art. 15/20).

The records come from every model that points at a customer, found by introspection, so a
model added later is in the file without anyone remembering to add it; what refers to the
customer by pseudonym (audit events, models in the registry) and what follows from their
audience memberships (the exports that held them) is added by name.
"""

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone, translation

from marketing.models import AuditEvent, Customer, TrainingRun
from marketing.selectors.audiences import customer_exports

FORMAT_VERSION = 1


def customer_relations() -> list[models.ForeignKey]:
    """Every foreign key (or one-to-one) of any installed model that points at Customer."""
    return [
        field
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model is Customer
    ]


def section_name(model: type[models.Model]) -> str:
    return str(model._meta.verbose_name_plural)


def customer_portability(customer: Customer) -> dict[str, Any]:
    """The customer's data: profile, personal identifiers, and one section per kind of
    record (consent history, interactions, scores, explanations, recommendations, audience
    memberships, ...), then the exports that held them, the models trained on their data and
    the audit events about them. The document is in English whatever the language of the
    steward who downloads it (names of sections and of related rows are the models' own)."""
    with translation.override("en"):
        return _customer_portability(customer)


def _customer_portability(customer: Customer) -> dict[str, Any]:
    records: dict[str, list[dict[str, Any]]] = {}
    for field in customer_relations():
        related = [
            f.name
            for f in field.model._meta.concrete_fields
            if f.is_relation and f.name != field.name
        ]
        rows = (
            field.model._default_manager.filter(**{field.name: customer})
            .select_related(*related)
            .order_by("pk")
        )
        records.setdefault(section_name(field.model), []).extend(
            _record(row, skip=field.name) for row in rows
        )
    return {
        "format_version": FORMAT_VERSION,
        "generated_at": timezone.now(),
        "customer": {
            "id": customer.pk,
            "external_id": customer.external_id,
            "pseudonym": customer.pseudonym,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
            "profile": customer.attributes,
        },
        "records": records,
        "exports_that_held_them": [
            {
                "id": export.pk,
                "platform": export.platform,
                "audience": export.audience.name,
                "audience_id": export.audience_id,
                "rows": export.row_count,
                "created_at": export.created_at,
                "checksum": export.checksum,
            }
            for export in customer_exports(customer).select_related("audience").order_by("pk")
        ],
        "models_trained_with_their_data": _models_trained_on(customer),
        "audit_events": [_record(event) for event in _audit_events_about(customer).order_by("pk")],
    }


def _record(row: models.Model, *, skip: str = "") -> dict[str, Any]:
    """A row's own fields; a related row as its id and its name in words."""
    record: dict[str, Any] = {}
    for field in row._meta.concrete_fields:
        if field.name == skip:
            continue
        if field.is_relation:
            related = getattr(row, field.name)
            record[field.name] = (
                None if related is None else {"id": related.pk, "name": str(related)}
            )
        else:
            record[field.name] = field.value_from_object(row)
    return record


def _models_trained_on(customer: Customer) -> list[dict[str, Any]]:
    """Trained models whose registry lists the customer among those they learned from."""
    from marketing.filestore import model_registry, remote

    if not remote() and not settings.MODEL_REGISTRY_DIR.exists():
        return []
    model_ids = model_registry(every=True).find_models_using(customer.pseudonym)
    return [
        {
            "training_run": run.pk,
            "name": run.name,
            "model_id": run.model_id,
            "created_at": run.created_at,
            "flagged_for_retraining": run.flagged_erasure,
        }
        for run in TrainingRun.objects.filter(model_id__in=model_ids).order_by("pk")
    ]


def _audit_events_about(customer: Customer) -> models.QuerySet[AuditEvent]:
    """Events naming the customer: as their target, or in their details (e.g. the list of
    customers whose identifiers a page showed)."""
    return (
        AuditEvent.objects.select_related("actor")
        .annotate(details_text=Cast("details", models.TextField()))
        .filter(Q(target_ref=customer.pseudonym) | Q(details_text__contains=customer.pseudonym))
    )
