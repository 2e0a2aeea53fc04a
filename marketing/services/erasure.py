"""Erasure (GDPR Art. 17): the customer and everything stored about them is deleted.

That covers the database rows, the person's rows in the stored upload files (and the error
files made from them), the audience files exported with the person in them, and every copy
of their identifiers or of the profile values only they had in other rows: job messages,
errors and results, upload summaries, audit details, the profile catalogue's sample values.
What must outlive the person (the audit trail, the frozen audience membership, the list of
models trained on their data) keeps only their erasure token, an HMAC of the pseudonym under
a second key (``marketing.pseudonyms.erasure_token``).
"""

import csv
import json
import mmap
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.filestore import local_copy, media_remove
from marketing.ingest.csvfile import rewrite_stored_rows, text_stream
from marketing.models import (
    AudienceMember,
    AuditEvent,
    Customer,
    CustomerIdentity,
    CustomerRecommendation,
    CustomerScore,
    ExplanationRun,
    Export,
    ExportExclusion,
    Job,
    ProfileField,
    RecommendationRun,
    Suppression,
    TrainingRun,
    Upload,
)
from marketing.pseudonyms import erasure_token
from marketing.selectors.audiences import exports_holding
from marketing.services.audit import Actor, audit_log
from marketing.services.jobs import Progress, job_create, register_runner
from marketing.services.training import training_runs_flag_erasure

# The upload column that names the customer, per kind of upload.
CUSTOMER_KEY_FIELD: dict[str, str] = {
    Upload.Kind.CUSTOMERS: "external_id",
    Upload.Kind.INTERACTIONS: "customer_external_id",
}
# What a copy of the person's data is replaced with in text and JSON columns.
ERASED = "[erased]"
# Shorter strings (a country code, "yes", a small number) say nothing about who someone is,
# and replacing them everywhere would damage other rows.
MIN_TRACE_LENGTH = 4
# Where the product copies data as a side effect of its work (job messages, errors and
# results, upload summaries, audit details, example rows, explanation and recommendation
# results). A rare profile value is replaced here only: elsewhere (a segment's rules, an
# offer's title) the same word is what a marketer wrote, not a copy of the person's data.
RECORD_MODELS = (Job, Upload, AuditEvent, TrainingRun, ExplanationRun, RecommendationRun)


def customer_erase_start(*, customer: Customer, by: Actor, reason: str) -> Job:
    """Start erasing a customer as a job (files are searched and rewritten: long work)."""
    reason = reason.strip()
    if not reason:
        raise ErasureError(
            _(
                "Say why the customer is erased (the request, the ticket): it is kept in the "
                "audit trail."
            )
        )
    return job_create(
        kind=Job.Kind.ERASE,
        # Stored: translated where it is shown.
        title=gettext_noop("Erasure of a customer"),
        params={"customer": customer.pk, "reason": reason[:500]},
        by=by,
    )


class ErasureError(ApplicationError):
    """The erasure cannot start; the message says why."""


@register_runner(Job.Kind.ERASE)
def run_erasure(job: Job, progress: Progress) -> dict[str, Any]:
    customer = Customer.objects.filter(pk=job.params.get("customer")).first()
    if customer is None:
        # Stored as the job's message: translated where it is shown.
        raise ErasureError(gettext_noop("This customer was erased already."))
    progress(5, gettext_noop("Searching stored files and the model registry"))
    return customer_erase(customer=customer, by=job.created_by, reason=job.params.get("reason", ""))


@transaction.atomic
def customer_erase(*, customer: Customer, by: Actor, reason: str = "") -> dict[str, Any]:
    """Delete the customer, identity, interactions and consent history, blank their rows in
    stored uploads, remove the export files that held them, and replace every other copy of
    their identifiers and rare profile values; audit by erasure token.

    Files are changed before the rows are deleted: if a file cannot be rewritten the erasure
    fails as a whole and can simply be run again.
    """
    counts: dict[str, Any] = {
        "identity": CustomerIdentity.objects.filter(customer=customer).count(),
        "interactions": customer.interactions.count(),
        "consent_records": customer.consents.count(),
        "scores": CustomerScore.objects.filter(customer=customer).count(),
        "explanations": ExplanationRun.objects.filter(customer=customer).count(),
        "recommendations": CustomerRecommendation.objects.filter(customer=customer).count(),
        "suppressions": Suppression.objects.filter(customer=customer).count(),
        "audience_memberships": AudienceMember.objects.filter(pseudonym=customer.pseudonym).count(),
    }
    pseudonym = customer.pseudonym
    token = erasure_token(pseudonym)
    rare = _rare_values(customer)
    identifiers = _identifiers_of(customer)
    blanked = _blank_upload_rows(customer.external_id)
    counts["upload_rows"] = sum(len(rows) for rows, _ in blanked.values())
    held = list(exports_holding(pseudonym).exclude(file_path=""))
    # A trained model cannot forget the person: its run is flagged for retraining without them.
    flagged_runs = training_runs_flag_erasure(pseudonym=pseudonym)
    counts["models_flagged"] = len(flagged_runs)
    counts["sample_values"] = _forget_sample_values(rare)
    # A queryset delete cascades in SQL; ConsentRecord.delete() (which refuses single
    # deletions to protect the history) is deliberately not involved.
    Customer.objects.filter(pk=customer.pk).delete()
    _remove_export_files(held)
    counts["export_files"] = len(held)
    for model in (AudienceMember, ExportExclusion):
        model.objects.filter(pseudonym=pseudonym).update(pseudonym=token)
    for upload_id, (rows, quoted) in blanked.items():
        _scrub_import_records(upload_id, rows, quoted)
    counts["records_scrubbed"] = _scrub(
        _all_models(), {pseudonym: token, **dict.fromkeys(identifiers, ERASED)}
    ) + _scrub(RECORD_MODELS, dict.fromkeys(_traces(rare.values()), ERASED))
    audit_log(
        actor=by,
        action=AuditEvent.Action.ERASURE,
        target_type="customer",
        target_ref=token,
        details={
            **counts,
            "reason": reason,
            "flagged_runs": flagged_runs,
            "uploads_changed": sorted(blanked),
            "export_files_removed": [export.pk for export in held],
        },
    )
    return {**counts, "flagged_runs": flagged_runs}


def _identifiers_of(customer: Customer) -> set[str]:
    """The strings that name this person: external id (numbers too), e-mail, phone."""
    found = [customer.external_id]
    identity = CustomerIdentity.objects.filter(customer=customer).first()
    if identity is not None:
        found += [identity.email, identity.phone]
    return {value.strip() for value in found if len(value.strip()) >= MIN_TRACE_LENGTH}


def _traces(values: Iterable[str]) -> set[str]:
    """The values worth looking for: long enough, and not a bare number."""
    found = set()
    for value in values:
        value = value.strip()
        if len(value) < MIN_TRACE_LENGTH:
            continue
        try:
            float(value)
        except ValueError:
            found.add(value)
    return found


def _rare_values(customer: Customer) -> dict[str, str]:
    """The customer's text attribute values held by fewer than MIN_GROUP_SIZE customers."""
    rare = {}
    for name, value in (customer.attributes or {}).items():
        if not isinstance(value, str) or not value:
            continue
        holders = (
            Customer.objects.annotate(
                _value=Cast(KeyTextTransform(name, "attributes"), models.TextField())
            )
            .filter(_value=value)[: settings.MIN_GROUP_SIZE]
            .count()
        )
        if holders < settings.MIN_GROUP_SIZE:
            rare[name] = value
    return rare


def _forget_sample_values(rare: dict[str, str]) -> int:
    """Sample values are offered to every role in the segment builder: after the erasure
    none is left that fewer than MIN_GROUP_SIZE customers had with the erased person."""
    removed = 0
    for field in ProfileField.objects.filter(name__in=rare).select_for_update():
        kept = [v for v in field.sample_values if v != rare[field.name]]
        if kept != field.sample_values:
            removed += len(field.sample_values) - len(kept)
            ProfileField.objects.filter(pk=field.pk).update(sample_values=kept)
    return removed


def _scrub_import_records(upload_id: int, rows: set[int], quoted: set[str]) -> None:
    """The problems found in the blanked rows are dropped from the upload's summary and from
    the results of its import jobs; the values those problems quote are replaced wherever
    the upload's jobs and audit events repeat them (messages, tracebacks, reasons)."""
    upload = Upload.objects.get(pk=upload_id)
    jobs = list(
        Job.objects.filter(
            Q(pk=upload.job_id) | Q(kind=Job.Kind.IMPORT, params__upload_id=upload_id)
        )
    )
    for problems in [upload.summary.get("errors")] + [job.result.get("errors") for job in jobs]:
        quoted |= {str(e.get("value", "")) for e in _of_rows(problems or [], rows)}
    replacements = dict.fromkeys(_traces(quoted), ERASED)
    summary = dict(upload.summary)
    if "errors" in summary:
        summary["errors"] = _without_rows(summary["errors"], rows)
    Upload.objects.filter(pk=upload_id).update(summary=_replaced(summary, replacements))
    for job in jobs:
        result = dict(job.result)
        if "errors" in result:
            result["errors"] = _without_rows(result["errors"], rows)
        Job.objects.filter(pk=job.pk).update(
            **_fitted(
                Job,
                {
                    "result": _replaced(result, replacements),
                    "message": _replaced(job.message, replacements),
                    "error": _replaced(job.error, replacements),
                },
            )
        )
    events = AuditEvent.objects.filter(target_type="upload", target_ref=str(upload_id))
    for event in events:
        AuditEvent.objects.filter(pk=event.pk).update(
            details=_replaced(event.details, replacements)
        )


def _of_rows(errors: list[Any], rows: set[int]) -> list[dict[str, Any]]:
    return [e for e in errors if isinstance(e, dict) and e.get("row") in rows]


def _without_rows(errors: list[Any], rows: set[int]) -> list[Any]:
    return [e for e in errors if not (isinstance(e, dict) and e.get("row") in rows)]


def _all_models() -> list[type[models.Model]]:
    """Every model of the product, and the admin's change log, whose rows are not about one
    customer (those rows went with the customer, or belong to someone else). Django's own
    tables (content types, permissions, sessions) hold no customer data."""
    product = list(apps.get_app_config("marketing").get_models())
    return [
        model
        for model in [*product, apps.get_model("admin", "LogEntry")]
        if not _about_one_customer(model)
    ]


def _scrub(scope: Iterable[type[models.Model]], replacements: dict[str, str]) -> int:
    """Replace the person's traces in every text and JSON column of these models. Returns
    how many rows changed."""
    if not replacements:
        return 0
    changed = 0
    for model in scope:
        columns = _text_columns(model)
        if not columns:
            continue
        matches = Q()
        for column in columns:
            for needle in _searchable(replacements):
                matches |= Q(**{f"_text_{column.name}__icontains": needle})
        rows = model._default_manager.annotate(
            **{f"_text_{c.name}": Cast(c.name, models.TextField()) for c in columns}
        ).filter(matches)
        replace = _replacer(replacements)
        for row in rows.values("pk", *[c.name for c in columns]):
            new = {c.name: replace(row[c.name]) for c in columns}
            update = {name: value for name, value in new.items() if value != row[name]}
            if update:
                model._default_manager.filter(pk=row["pk"]).update(**_fitted(model, update))
                changed += 1
    return changed


def _text_columns(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


def _about_one_customer(model: type[models.Model]) -> bool:
    return model is Customer or any(
        f.is_relation and f.related_model is Customer for f in model._meta.concrete_fields
    )


def _searchable(replacements: dict[str, str]) -> set[str]:
    """The needles as they may be stored: plain, and as JSON escapes non-ASCII text."""
    return {form for needle in replacements for form in (needle, json.dumps(needle)[1:-1])}


def _fitted(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """The values cut to their columns' lengths: "[erased]" can be longer than what it
    replaces, and a message that filled its column must not make the erasure fail."""
    fitted = {}
    for name, value in values.items():
        limit = getattr(model._meta.get_field(name), "max_length", None)
        fitted[name] = value[:limit] if limit and isinstance(value, str) else value
    return fitted


def _replaced(value: Any, replacements: dict[str, str]) -> Any:
    return _replacer(replacements)(value)


def _replacer(replacements: dict[str, str]) -> Callable[[Any], Any]:
    """A function that returns a string or JSON structure with every needle replaced,
    ignoring case, where it stands on its own ("C015" is not replaced inside "C0150")."""
    if not replacements:
        return lambda value: value
    needles = "|".join(re.escape(n) for n in sorted(replacements, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{needles})(?!\w)", re.I)
    lowered = {needle.lower(): new for needle, new in replacements.items()}

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(lambda m: lowered[m.group(0).lower()], item)
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        return item

    return walk


def _remove_export_files(exports: list[Export]) -> None:
    """The export records stay (who got what, when, with which checksum); their files go once
    the erasure is committed. ``export_file`` then tells why the file is missing."""
    names = [export.file_path for export in exports if export.file_path]
    Export.objects.filter(pk__in=[export.pk for export in exports]).update(
        file_path="", file_size=0
    )
    transaction.on_commit(lambda: media_remove(names))


def _blank_upload_rows(external_id: str) -> dict[int, tuple[set[int], set[str]]]:
    """Replace the customer's rows in every stored upload with empty lines, so the other rows
    keep their row numbers (the error files and messages refer to them), and drop the error
    file rows about the blanked rows. Returns, per upload changed, the row numbers blanked
    and the values the dropped error rows quoted."""
    changed: dict[int, tuple[set[int], set[str]]] = {}
    uploads = Upload.objects.filter(kind__in=list(CUSTOMER_KEY_FIELD)).exclude(
        Q(file="") | Q(file__isnull=True)
    )
    for upload in uploads.order_by("pk"):
        header = (upload.mapping or {}).get(CUSTOMER_KEY_FIELD[upload.kind])
        if not header or header not in upload.headers:
            continue
        if not upload.file.storage.exists(str(upload.file.name)):
            continue
        # The stored file itself, or a copy from the object store that goes back changed.
        with local_copy(upload.file) as path:
            if not _may_contain(path, external_id, upload.encoding):
                continue
            rows = _blank_rows(path, upload, upload.headers.index(header), external_id)
        if not rows:
            continue
        quoted = set()
        error_file = upload.error_file
        if error_file and error_file.storage.exists(str(error_file.name)):
            with local_copy(error_file) as error_path:
                quoted = _drop_error_rows(error_path, rows)
        changed[upload.pk] = (rows, quoted)
    return changed


def _may_contain(path: Path, external_id: str, encoding: str) -> bool:
    """A fast byte search that rules out most files without parsing them."""
    codec = _codec(encoding)
    if codec.lower().startswith(("utf-16", "utf-32")):
        return True  # their byte order marks and widths rule out a plain byte search
    try:
        needle = external_id.encode(codec)
    except (LookupError, UnicodeEncodeError):
        return True
    if path.stat().st_size == 0:
        return False
    with path.open("rb") as binary, mmap.mmap(binary.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(needle) != -1


def _codec(encoding: str) -> str:
    return "utf-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else encoding


def _blank_rows(path: Path, upload: Upload, column: int, external_id: str) -> set[int]:
    """Rewrite the file with the customer's data rows as empty lines; their row numbers."""
    rows: set[int] = set()

    def blank(row_no: int, record: list[str]) -> list[str] | None:
        if len(record) > column and record[column].strip() == external_id:
            rows.add(row_no)
            return None
        return record

    rewrite_stored_rows(path, encoding=upload.encoding, delimiter=upload.delimiter, rewrite=blank)
    return rows


def _drop_error_rows(path: Path, rows: set[int]) -> set[str]:
    """Drop the error file rows about these data rows; the values they quoted."""
    quoted: set[str] = set()
    if not path.is_file():
        return quoted
    with path.open("rb") as binary, _replacing(path, "utf-8-sig") as out:
        with text_stream(binary, "utf-8-sig") as text:
            reader = csv.reader(text)
            writer = SafeCSVWriter(out)
            header = next(reader, None)
            if header is None:
                raise _Unchanged
            writer.writerow(header)
            value = header.index("value") if "value" in header else None
            for record in reader:
                if record and record[0].isdigit() and int(record[0]) in rows:
                    if value is not None and len(record) > value:
                        quoted.add(record[value].removeprefix("'"))
                    continue
                writer.writerow(record)
    return quoted


class _Unchanged(Exception):
    """Raised inside ``_replacing`` to keep the original file."""


@contextmanager
def _replacing(path: Path, encoding: str) -> Iterator[IO[str]]:
    """Write a new version of ``path`` beside it and swap it in atomically at the end (or
    leave the original alone when the block raises)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as out:
            yield out
        os.replace(tmp, path)
    except _Unchanged:
        os.unlink(tmp)
    except BaseException:
        os.unlink(tmp)
        raise
