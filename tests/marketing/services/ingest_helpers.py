"""Helpers for the ingest tests: CSV files, running an import, and a snapshot of stored data."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from marketing.models import (
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    Job,
    Offer,
    ProfileField,
    Upload,
)
from marketing.services.ingest import upload_create, upload_import, upload_set_mapping


def csv_file(text: str | bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="text/csv")


def customers_csv(
    rows: int = 30, *, bad: dict[int, dict[str, str]] | None = None, delimiter: str = ","
) -> str:
    """A customers file; ``bad`` replaces cells of a data row (1-based) by column name."""
    header = [
        "customer_id",
        "email",
        "country",
        "age",
        "plan",
        "consent_email_marketing",
        "consent_date",
    ]
    lines = [delimiter.join(header)]
    for i in range(1, rows + 1):
        row = {
            "customer_id": f"C{i:03d}",
            "email": f"person{i}@example.com",
            "country": "DE",
            "age": str(20 + i),
            "plan": "gold" if i % 3 == 0 else "basic",
            "consent_email_marketing": "granted" if i % 2 else "denied",
            "consent_date": "2024-03-01",
        }
        row.update((bad or {}).get(i, {}))
        lines.append(delimiter.join(row[h] for h in header))
    return "\n".join(lines) + "\n"


def run_import(capture, upload: Upload, *, by, mode: str | None = None) -> Job:
    """Map (guessed mapping), import, and run the job inline as it would after commit."""
    if mode is not None:
        upload_set_mapping(upload=upload, mapping=upload.mapping, mode=mode, by=by)
    with capture(execute=True):
        job = upload_import(upload=upload, by=by)
    job.refresh_from_db()
    upload.refresh_from_db()
    return job


def import_text(
    capture, text: str, *, by, kind: str = "customers", mode: str = Upload.Mode.ALL_OR_NOTHING
) -> Job:
    upload = upload_create(kind=kind, file=csv_file(text, f"{kind}.csv"), by=by)
    return run_import(capture, upload, by=by, mode=mode)


def stored() -> dict[str, list]:
    """Everything an import may touch, in a comparable form."""
    return {
        "customers": sorted(
            (c.external_id, c.pseudonym, json.dumps(c.attributes, sort_keys=True))
            for c in Customer.objects.all()
        ),
        "identities": sorted(
            CustomerIdentity.objects.values_list(
                "customer__external_id", *CustomerIdentity.PII_FIELDS
            )
        ),
        "consents": sorted(
            ConsentRecord.objects.values_list(
                "customer__external_id",
                "purpose",
                "status",
                "effective_at",
                "expires_at",
                "source",
                "notice_version",
            ),
            key=repr,
        ),
        "offers": sorted(
            Offer.objects.values_list("external_id", "title", "category", "price", "unit_cost")
        ),
        "interactions": sorted(
            Interaction.objects.values_list(
                "customer__external_id",
                "offer__external_id",
                "kind",
                "occurred_at",
                "value",
                "campaign",
            ),
            key=repr,
        ),
        "profile_fields": sorted(ProfileField.objects.values_list("name", "data_type")),
    }
