"""Rotating the pseudonym key (PSEUDONYM_KEY): every stored pseudonym re-keyed, links kept.

A customer's pseudonym is HMAC(key, external id); many rows keep it as a reference that must
outlive an erasure or that lists customers. A rotation rewrites each of them in batches:

- the references first (audit events, frozen audience members, export exclusions, the
  customer lists of the trained models), while the customers still carry the old pseudonyms,
  so that each old value is looked up to its customer: HMAC(new key, external id);
- a reference to nobody is what an erasure left in place of a pseudonym: an erasure token
  under SUPPRESSION_KEY, which no longer derives from PSEUDONYM_KEY and stays as it is (the
  erased person's audit trail, memberships and models stay linked to each other);
- the customers last, each checked to derive from the old key (or already from the new one).

Progress is a ``PseudonymKeyRotation`` row updated in the same transaction as each batch, so
an interrupted rotation continues where it stopped and never hashes a row twice; the model
files say in their first line which key they hold. Until PSEUDONYM_KEY is switched to the new
key, ``pseudonym_key_check`` refuses to make new pseudonyms (imports), which would otherwise
mix the two keys.

Suppression hashes made with their own key (SUPPRESSION_KEY) do not derive from
PSEUDONYM_KEY and are left alone.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from marketing.errors import ApplicationError
from marketing.models import (
    AudienceMember,
    AuditEvent,
    Customer,
    ExportExclusion,
    Job,
    PseudonymKeyRotation,
)
from marketing.pseudonyms import key_fingerprint, pseudonymiser

DEFAULT_BATCH_SIZE = 2000
# Called after each committed batch with the step's name and the rows it re-keyed.
OnBatch = Callable[[str, int], None]


class PseudonymKeyError(ApplicationError):
    """The keys given do not fit the stored pseudonyms or the rotation in progress."""


class _Rekeyer:
    """Old pseudonym -> new pseudonym, for a batch of values at a time."""

    def __init__(self, old_key: str, new_key: str) -> None:
        self.old = pseudonymiser(key=old_key)
        self.new = pseudonymiser(key=new_key)
        self.new_fingerprint = key_fingerprint(new_key)

    def __call__(self, values: Iterable[str]) -> dict[str, str]:
        """New values for old pseudonyms; "" and erasure tokens (no customer) stay as they are."""
        wanted = {v for v in values if v}
        live = dict(
            Customer.objects.filter(pseudonym__in=wanted).values_list("pseudonym", "external_id")
        )
        mapped = {value: self.new(live[value]) if value in live else value for value in wanted}
        return {"": "", **mapped}


# ---- the steps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RowStep:
    """Rows of one table that hold pseudonyms, re-keyed in primary-key order."""

    name: str
    model: type[models.Model]
    fields: tuple[str, ...]
    # Only these rows hold pseudonyms (None: every row).
    where: Q | None
    # The values in a row that are pseudonyms.
    values: Callable[[Any], list[str]]
    # Write the new values into the row (the mapping covers every value of ``values``).
    rewrite: Callable[[Any, dict[str, str]], None]

    def batch(self, after: str, size: int) -> list[Any]:
        rows = self.model._default_manager.order_by("pk").only("pk", *self.fields)
        if self.where is not None:
            rows = rows.filter(self.where)
        if after:
            rows = rows.filter(pk__gt=int(after))
        return list(rows[:size])

    def rekey(self, rows: list[Any], rekeyer: _Rekeyer) -> None:
        mapping = rekeyer(value for row in rows for value in self.values(row))
        for row in rows:
            self.rewrite(row, mapping)
        self.model._default_manager.bulk_update(rows, self.fields)


def _column_step(name: str, model: type[models.Model]) -> _RowStep:
    """A table with a ``pseudonym`` column."""

    def rewrite(row: Any, mapping: dict[str, str]) -> None:
        row.pseudonym = mapping[row.pseudonym]

    return _RowStep(name, model, ("pseudonym",), None, lambda row: [row.pseudonym], rewrite)


def _audit_values(event: AuditEvent) -> list[str]:
    listed = event.details.get("customers") or []
    return [*([event.target_ref] if event.target_type == "customer" else []), *listed]


def _audit_rewrite(event: AuditEvent, mapping: dict[str, str]) -> None:
    if event.target_type == "customer":
        event.target_ref = mapping[event.target_ref]
    if event.details.get("customers"):
        event.details = {
            **event.details,
            "customers": [mapping[p] for p in event.details["customers"]],
        }


# Customer events refer to the person by pseudonym; PII views list the customers shown.
AUDIT_STEP = _RowStep(
    "audit_events",
    AuditEvent,
    ("target_ref", "details"),
    Q(target_type="customer") | Q(details__has_key="customers"),
    _audit_values,
    _audit_rewrite,
)
REFERENCE_STEPS: tuple[_RowStep, ...] = (
    _column_step("audience_members", AudienceMember),
    _column_step("export_exclusions", ExportExclusion),
    AUDIT_STEP,
)
MODELS_STEP = "models"
CUSTOMERS_STEP = "customers"
# In this order: the references need the customers' old pseudonyms to find them.
STEPS = (*(step.name for step in REFERENCE_STEPS), MODELS_STEP, CUSTOMERS_STEP)
_ROW_STEPS = {step.name: step for step in REFERENCE_STEPS}


# ---- the rotation -----------------------------------------------------------------------------
def pseudonym_key_rotate(
    *,
    old_key: str,
    new_key: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> PseudonymKeyRotation:
    """Re-key every stored pseudonym from ``old_key`` to ``new_key``, or continue the
    unfinished rotation between the same keys. Returns the finished rotation."""
    if not old_key or not new_key or old_key == new_key:
        raise PseudonymKeyError("The old and the new key must both be given, and differ.")
    rotation = _start_or_resume(old_key, new_key)
    rekeyer = _Rekeyer(old_key, new_key)
    report = on_batch or (lambda step, rows: None)
    for step in STEPS[STEPS.index(rotation.step) :]:
        if step == MODELS_STEP:
            _rekey_models(rotation, rekeyer, report)
        elif step == CUSTOMERS_STEP:
            _rekey_customers(rotation, old_key, new_key, batch_size, report)
        else:
            _rekey_rows(rotation, _ROW_STEPS[step], rekeyer, batch_size, report)
        if step != STEPS[-1]:
            _advance(rotation, STEPS[STEPS.index(step) + 1])
    rotation.status, rotation.finished_at = PseudonymKeyRotation.Status.FINISHED, timezone.now()
    rotation.save(update_fields=["status", "finished_at", "updated_at"])
    return rotation


def _start_or_resume(old_key: str, new_key: str) -> PseudonymKeyRotation:
    old_fp, new_fp = key_fingerprint(old_key), key_fingerprint(new_key)
    _check_no_jobs()
    unfinished = PseudonymKeyRotation.objects.filter(
        status=PseudonymKeyRotation.Status.RUNNING
    ).first()
    if unfinished is not None:
        if (unfinished.old_key_fingerprint, unfinished.new_key_fingerprint) != (old_fp, new_fp):
            raise PseudonymKeyError(
                f"An unfinished rotation from key {unfinished.old_key_fingerprint} to key "
                f"{unfinished.new_key_fingerprint} must be completed first: run it again with "
                "those two keys."
            )
        return unfinished
    in_force = _key_in_force()
    if in_force is not None and in_force != old_fp:
        raise PseudonymKeyError(
            f"The old key (fingerprint {old_fp}) is not the key in force: the last rotation "
            f"switched to key {in_force}."
        )
    _check_old_key(old_key)
    return PseudonymKeyRotation.objects.create(
        old_key_fingerprint=old_fp,
        new_key_fingerprint=new_fp,
        step=STEPS[0],
    )


def _check_no_jobs() -> None:
    """Jobs write pseudonyms (exports, trained models, audits) from what they read: one that
    runs beside the rotation could write a pseudonym of either key."""
    active = Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
    if active.exists():
        ids = ", ".join(str(pk) for pk in active.values_list("pk", flat=True)[:10])
        raise PseudonymKeyError(
            f"{active.count():,} job(s) are queued or running (ids {ids}): let them finish or "
            "cancel them, and stop the workers and the web app, before rotating the key."
        )


def _check_old_key(old_key: str) -> None:
    """Before touching anything: the first and last customers' pseudonyms must come from the
    old key (a wrong key would otherwise re-key every reference as one to nobody)."""
    make = pseudonymiser(key=old_key)
    ends = [Customer.objects.order_by("pk").first(), Customer.objects.order_by("pk").last()]
    for customer in filter(None, ends):
        if customer.pseudonym != make(customer.external_id):
            raise PseudonymKeyError(
                f"The old key (fingerprint {key_fingerprint(old_key)}) did not make the stored "
                f"pseudonyms (customer {customer.pk}): give the key in use as the old key."
            )


def _advance(rotation: PseudonymKeyRotation, step: str) -> None:
    rotation.step, rotation.cursor = step, ""
    rotation.save(update_fields=["step", "cursor", "updated_at"])


def _commit_progress(rotation: PseudonymKeyRotation, cursor: str, rows: int) -> None:
    rotation.cursor = cursor
    done = rotation.counts.get(rotation.step, 0)
    rotation.counts = {**rotation.counts, rotation.step: done + rows}
    rotation.save(update_fields=["cursor", "counts", "updated_at"])


def _rekey_rows(
    rotation: PseudonymKeyRotation,
    step: _RowStep,
    rekeyer: _Rekeyer,
    batch_size: int,
    report: OnBatch,
) -> None:
    while True:
        with transaction.atomic():
            rows = step.batch(rotation.cursor, batch_size)
            if not rows:
                return
            step.rekey(rows, rekeyer)
            _commit_progress(rotation, str(rows[-1].pk), len(rows))
        report(step.name, len(rows))


def _rekey_models(rotation: PseudonymKeyRotation, rekeyer: _Rekeyer, report: OnBatch) -> None:
    """Each model's customer list, in model id order. A list that already names the new key
    was re-keyed before an interruption and is passed over."""
    from marketing.filestore import model_put, model_registry
    from recengine.registry import CUSTOMERS_FILE

    registry = model_registry(every=True)
    for model_id in registry.model_ids():
        if model_id <= rotation.cursor:
            continue
        held = registry.customers_key(model_id)
        if held not in (None, rotation.old_key_fingerprint, rotation.new_key_fingerprint):
            raise PseudonymKeyError(
                f"Model {model_id} lists customers under key {held}, neither the old key nor "
                "the new one."
            )
        rows = 0
        if held != rotation.new_key_fingerprint:
            rows = registry.rekey_customers(model_id, rekeyer, key_id=rekeyer.new_fingerprint)
            model_put(model_id, CUSTOMERS_FILE)
        _commit_progress(rotation, model_id, rows)
        report(MODELS_STEP, rows)


def _rekey_customers(
    rotation: PseudonymKeyRotation, old_key: str, new_key: str, batch_size: int, report: OnBatch
) -> None:
    old, new = pseudonymiser(key=old_key), pseudonymiser(key=new_key)
    while True:
        with transaction.atomic():
            rows = list(
                Customer.objects.filter(pk__gt=int(rotation.cursor or 0))
                .order_by("pk")
                .only("pk", "external_id", "pseudonym")[:batch_size]
            )
            if not rows:
                return
            changed = []
            for customer in rows:
                rekeyed = new(customer.external_id)
                if customer.pseudonym == rekeyed:
                    continue
                if customer.pseudonym != old(customer.external_id):
                    raise PseudonymKeyError(
                        f"Customer {customer.pk}'s pseudonym comes from neither the old key "
                        "nor the new one."
                    )
                customer.pseudonym = rekeyed
                changed.append(customer)
            Customer.objects.bulk_update(changed, ["pseudonym"])
            _commit_progress(rotation, str(rows[-1].pk), len(changed))
        report(CUSTOMERS_STEP, len(changed))


# ---- the key in force -------------------------------------------------------------------------
def _key_in_force() -> str | None:
    """Fingerprint of the key the last finished rotation switched to (None: never rotated)."""
    return (
        PseudonymKeyRotation.objects.filter(status=PseudonymKeyRotation.Status.FINISHED)
        .order_by("-finished_at", "-id")
        .values_list("new_key_fingerprint", flat=True)
        .first()
    )


def pseudonym_key_check() -> None:
    """Raise unless PSEUDONYM_KEY is the key the stored pseudonyms are made with: no rotation
    is unfinished, and the last one switched to this key. Call before making pseudonyms."""
    if PseudonymKeyRotation.objects.filter(status=PseudonymKeyRotation.Status.RUNNING).exists():
        raise PseudonymKeyError(
            "A pseudonym key rotation is unfinished: complete it (manage.py "
            "rotate_pseudonym_key) and switch PSEUDONYM_KEY before importing customers."
        )
    in_force = _key_in_force()
    if in_force is not None and in_force != (configured := key_fingerprint(settings.PSEUDONYM_KEY)):
        raise PseudonymKeyError(
            f"The stored pseudonyms were re-keyed to key {in_force}, but PSEUDONYM_KEY is key "
            f"{configured}: set PSEUDONYM_KEY to the new key and restart."
        )
