"""Rotating the pseudonym key: every stored pseudonym re-keyed, every link kept.

Runs on SQLite and PostgreSQL alike (DATABASE_URL picks the database)."""

import shutil

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction

from marketing.exporters.formats import TIKTOK_CUSTOMER_FILE
from marketing.models import (
    AudienceMember,
    AuditEvent,
    Customer,
    ExportExclusion,
    Job,
    PseudonymKeyRotation,
)
from marketing.pseudonyms import erasure_token, key_fingerprint, pseudonym_for
from marketing.selectors.audiences import exports_holding
from marketing.services.audit import audit_log, log_pii_view
from marketing.services.erasure import customer_erase
from marketing.services.pseudonym_keys import (
    PseudonymKeyError,
    pseudonym_key_check,
    pseudonym_key_rotate,
)
from recengine.registry import ModelRegistry
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.services.ingest_helpers import customers_csv, import_text

OLD_KEY = "old-key-for-tests-0123456789abcdef"
NEW_KEY = "new-key-for-tests-fedcba9876543210"


@pytest.fixture(autouse=True)
def _old_key(settings):
    settings.PSEUDONYM_KEY = OLD_KEY


def _world(marketer, steward) -> dict:
    """Customers referred to from everywhere a pseudonym is kept: audit events (one ref, and
    a list), frozen audience members, export exclusions and a model's lineage; one of them
    erased, so that only the references to them remain."""
    kept = make_people(5)
    suppressed = make_people(2, suppressed=True)
    erased = make_people(1)[0]
    people = [*kept, *suppressed]
    audience = frozen_audience(marketer)
    export = exported(audience, TIKTOK_CUSTOMER_FILE, marketer)
    audit_log(
        actor=steward,
        action=AuditEvent.Action.CONSENT_CHANGE,
        target_type="customer",
        target_ref=kept[0].pseudonym,
        details={"change": "suppressed"},
    )
    log_pii_view(user=steward, customers=[kept[1], kept[2], erased], where="customer list")
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    model_id = registry.save(
        {"weights": [1, 2]},
        name="m",
        fingerprint="f",
        pseudonyms=[c.pseudonym for c in [*kept, erased]],
        consent_snapshot={},
    )
    erased_pseudonym = erased.pseudonym
    customer_erase(customer=erased, by=steward)
    return {
        "people": people,
        "suppressed": suppressed,
        "export": export,
        "model_id": model_id,
        "erased": erased_pseudonym,
    }


def _stored_references() -> dict:
    """Every pseudonym the database and the registry keep, by what holds it."""
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    return {
        "customers": dict(Customer.objects.values_list("pk", "pseudonym")),
        "members": dict(AudienceMember.objects.values_list("pk", "pseudonym")),
        "exclusions": dict(ExportExclusion.objects.values_list("pk", "pseudonym")),
        "audit": {
            e.pk: (e.target_ref, e.details.get("customers")) for e in AuditEvent.objects.all()
        },
        "models": {
            model_id: (registry.root / model_id / "customers.txt").read_text()
            for model_id in registry.model_ids()
        },
    }


def test_it_rekeys_every_reference_to_the_same_customer(marketer, steward):
    world = _world(marketer, steward)
    held_before = {c.pk: set(exports_holding(c.pseudonym)) for c in world["people"]}

    rotation = pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=3)

    assert rotation.status == PseudonymKeyRotation.Status.FINISHED
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    for person in world["people"]:
        customer = Customer.objects.get(pk=person.pk)
        assert customer.pseudonym == pseudonym_for(customer.external_id, key=NEW_KEY)
        member = AudienceMember.objects.get(pseudonym=customer.pseudonym)
        assert member.customer_id == customer.pk
        assert set(exports_holding(customer.pseudonym)) == held_before[customer.pk]
    for person in world["suppressed"]:
        new = pseudonym_for(person.external_id, key=NEW_KEY)
        assert ExportExclusion.objects.get(pseudonym=new).customer_id == person.pk
    kept = world["people"][:5]
    new_of = {c.pk: pseudonym_for(c.external_id, key=NEW_KEY) for c in kept}
    assert (
        AuditEvent.objects.get(action=AuditEvent.Action.CONSENT_CHANGE).target_ref
        == new_of[kept[0].pk]
    )
    for person in kept:
        assert registry.find_models_using(new_of[person.pk]) == [world["model_id"]]
        assert registry.find_models_using(person.pseudonym) == []


def test_it_keeps_the_erased_customers_references_linked_to_each_other(marketer, steward):
    world = _world(marketer, steward)
    assert list(exports_holding(world["erased"])) == [world["export"]]

    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=3)

    orphan = AudienceMember.objects.get(customer__isnull=True).pseudonym
    # The erasure left a token under SUPPRESSION_KEY, which the rotation has no reason to touch.
    assert orphan == erasure_token(world["erased"])
    erasure = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert erasure.target_ref == orphan
    viewed = AuditEvent.objects.get(action=AuditEvent.Action.PII_VIEW).details["customers"]
    assert orphan in viewed
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    assert registry.find_models_using(orphan) == [world["model_id"]]
    assert list(exports_holding(orphan)) == [world["export"]]


def test_it_leaves_no_pseudonym_of_the_old_key_behind(marketer, steward):
    world = _world(marketer, steward)
    before = _stored_references()
    old_values = set(before["customers"].values()) | {world["erased"]}

    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=3)

    after = repr(_stored_references())
    assert not [value for value in old_values if value in after]


def test_it_resumes_an_interrupted_rotation_to_the_same_end_state(marketer, steward):
    _world(marketer, steward)
    registry_copy = settings.MODEL_REGISTRY_DIR.parent / "registry-before"
    shutil.copytree(settings.MODEL_REGISTRY_DIR, registry_copy)
    # The uninterrupted rotation, undone afterwards (database by savepoint, files by copy).
    undo = transaction.savepoint()
    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=2)
    uninterrupted = _stored_references()
    transaction.savepoint_rollback(undo)
    shutil.rmtree(settings.MODEL_REGISTRY_DIR)
    shutil.copytree(registry_copy, settings.MODEL_REGISTRY_DIR)

    batches = []

    def crash_after_the_first_batch(step: str, rows: int) -> None:
        batches.append(step)
        raise KeyboardInterrupt("the operator pressed Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        pseudonym_key_rotate(
            old_key=OLD_KEY, new_key=NEW_KEY, batch_size=2, on_batch=crash_after_the_first_batch
        )
    halfway = PseudonymKeyRotation.objects.get()
    assert halfway.status == PseudonymKeyRotation.Status.RUNNING and batches
    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=2)

    assert _stored_references() == uninterrupted


def test_it_resumes_after_each_batch_without_hashing_anything_twice(marketer, steward):
    _world(marketer, steward)
    registry_copy = settings.MODEL_REGISTRY_DIR.parent / "registry-before"
    shutil.copytree(settings.MODEL_REGISTRY_DIR, registry_copy)
    undo = transaction.savepoint()
    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=2)
    uninterrupted = _stored_references()
    transaction.savepoint_rollback(undo)
    shutil.rmtree(settings.MODEL_REGISTRY_DIR)
    shutil.copytree(registry_copy, settings.MODEL_REGISTRY_DIR)

    def crash(step: str, rows: int) -> None:
        raise RuntimeError("interrupted")

    interruptions = 0
    while not PseudonymKeyRotation.objects.filter(
        status=PseudonymKeyRotation.Status.FINISHED
    ).exists():
        try:
            pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY, batch_size=2, on_batch=crash)
        except RuntimeError:
            interruptions += 1
        assert interruptions < 100

    assert interruptions > 5
    assert _stored_references() == uninterrupted


def test_it_records_the_keys_by_fingerprint_only(marketer, steward):
    _world(marketer, steward)

    rotation = pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY)

    assert rotation.new_key_fingerprint == key_fingerprint(NEW_KEY)
    assert rotation.old_key_fingerprint == key_fingerprint(OLD_KEY)
    stored = repr(list(PseudonymKeyRotation.objects.values()))
    assert NEW_KEY not in stored and OLD_KEY not in stored


def test_it_refuses_an_old_key_that_did_not_make_the_stored_pseudonyms(marketer, steward):
    _world(marketer, steward)
    before = _stored_references()

    with pytest.raises(PseudonymKeyError, match="old key"):
        pseudonym_key_rotate(old_key="not-the-key-in-use", new_key=NEW_KEY)

    assert _stored_references() == before


def test_it_refuses_a_different_new_key_while_a_rotation_is_unfinished(marketer, steward):
    _world(marketer, steward)
    with pytest.raises(KeyboardInterrupt):
        pseudonym_key_rotate(
            old_key=OLD_KEY,
            new_key=NEW_KEY,
            batch_size=2,
            on_batch=lambda step, rows: (_ for _ in ()).throw(KeyboardInterrupt),
        )

    with pytest.raises(PseudonymKeyError, match="unfinished"):
        pseudonym_key_rotate(old_key=OLD_KEY, new_key="a-third-key-0000000000000")


def test_it_blocks_new_pseudonyms_until_the_key_in_force_is_switched(marketer, steward, settings):
    _world(marketer, steward)
    pseudonym_key_check()  # no rotation yet: the configured key is the one in use

    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY)

    with pytest.raises(PseudonymKeyError, match="PSEUDONYM_KEY"):
        pseudonym_key_check()
    settings.PSEUDONYM_KEY = NEW_KEY
    pseudonym_key_check()


def test_the_command_reads_the_new_key_from_the_environment_and_says_what_to_do_next(
    marketer, steward, monkeypatch, capsys
):
    world = _world(marketer, steward)
    monkeypatch.setenv("NEW_PSEUDONYM_KEY", NEW_KEY)

    call_command("rotate_pseudonym_key", "--batch-size", "4")

    out = capsys.readouterr().out
    assert "PSEUDONYM_KEY" in out and key_fingerprint(NEW_KEY) in out and NEW_KEY not in out
    person = Customer.objects.get(pk=world["people"][0].pk)
    assert person.pseudonym == pseudonym_for(person.external_id, key=NEW_KEY)


def test_the_command_refuses_to_run_without_a_new_key(monkeypatch, db):
    monkeypatch.delenv("NEW_PSEUDONYM_KEY", raising=False)

    with pytest.raises(CommandError, match="NEW_PSEUDONYM_KEY"):
        call_command("rotate_pseudonym_key")


def test_it_refuses_customer_imports_until_pseudonym_key_is_switched(
    marketer, steward, settings, django_capture_on_commit_callbacks
):
    _world(marketer, steward)
    pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY)

    refused = import_text(django_capture_on_commit_callbacks, customers_csv(3), by=marketer)
    settings.PSEUDONYM_KEY = NEW_KEY
    imported = import_text(django_capture_on_commit_callbacks, customers_csv(3), by=marketer)

    assert refused.status == Job.Status.FAILED and "PSEUDONYM_KEY" in refused.error
    assert imported.status == Job.Status.SUCCEEDED
    person = Customer.objects.get(external_id="C001")
    assert person.pseudonym == pseudonym_for("C001", key=NEW_KEY)


def test_it_waits_for_running_jobs_which_may_write_pseudonyms(marketer, steward):
    _world(marketer, steward)
    Job.objects.create(kind=Job.Kind.TRAIN, title="Training", status=Job.Status.RUNNING)
    before = _stored_references()

    with pytest.raises(PseudonymKeyError, match="job"):
        pseudonym_key_rotate(old_key=OLD_KEY, new_key=NEW_KEY)

    assert _stored_references() == before
