"""Right of access and portability: one JSON file with every record held about a customer."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone

from marketing.models import (
    Audience,
    AudienceMember,
    AuditEvent,
    ConsentRecord,
    CurrentConsent,
    Customer,
    CustomerIdentity,
    CustomerRecommendation,
    CustomerScore,
    ExplanationRun,
    Export,
    ExportExclusion,
    Interaction,
    Job,
    RecommendationRun,
    Suppression,
)
from marketing.services.audit import audit_log
from tests.factories import make_customer, make_offer, record_consent
from tests.marketing.api.helpers import logged_in
from tests.marketing.training_helpers import finished_run, finished_scoring

PLAN = "Platinum-Quokka-Zeta"


def job(kind: str) -> Job:
    return Job.objects.create(kind=kind, status=Job.Status.SUCCEEDED, progress=100)


def audience_with(customer: Customer) -> Audience:
    audience = Audience.objects.create(name="Savers", status=Audience.Status.FROZEN)
    AudienceMember.objects.create(
        audience=audience, customer=customer, pseudonym=customer.pseudonym, score=0.8, rank=1
    )
    return audience


def export_of(audience: Audience) -> Export:
    return Export.objects.create(
        job=job(Job.Kind.EXPORT), audience=audience, platform="generic_csv", row_count=1
    )


def scores(customer: Customer) -> CustomerScore:
    scoring = finished_scoring(finished_run(make_offer()), [customer])
    return CustomerScore.objects.get(scoring_run=scoring, customer=customer)


def recommendation(customer: Customer) -> CustomerRecommendation:
    scoring = finished_scoring(finished_run(None), [])
    run = RecommendationRun.objects.create(job=job(Job.Kind.RECOMMEND), scoring_run=scoring)
    return CustomerRecommendation.objects.create(
        recommendation_run=run, customer=customer, offer=make_offer(), rank=1, score=0.7
    )


def explanation(customer: Customer) -> ExplanationRun:
    return ExplanationRun.objects.create(
        job=job(Job.Kind.EXPLAIN),
        training_run=finished_run(None),
        customer=customer,
        scope=ExplanationRun.Scope.CUSTOMER,
        sample_size=1,
        result={"bert": {"logit": 0.2}},
    )


def exclusion(customer: Customer) -> ExportExclusion:
    export = export_of(Audience.objects.create(name="Left out", status="frozen"))
    return ExportExclusion.objects.create(
        export=export, customer=customer, pseudonym=customer.pseudonym
    )


# One row for each model that refers to a customer. A model added later fails the first test
# until it has a row here; the file picks it up by itself.
ROWS: dict[type[models.Model], Callable[[Customer], models.Model]] = {
    CustomerIdentity: lambda c: CustomerIdentity.objects.create(
        customer=c, email="quokka@example.org", phone="+1 202 555 7731"
    ),
    ConsentRecord: lambda c: record_consent(c, "profiling"),
    # The consent in effect, written with the record above.
    CurrentConsent: lambda c: c.current_consents.get(),
    Interaction: lambda c: Interaction.objects.create(
        customer=c, offer=make_offer(), kind="click", occurred_at=timezone.now() - timedelta(days=3)
    ),
    CustomerScore: scores,
    CustomerRecommendation: recommendation,
    ExplanationRun: explanation,
    AudienceMember: lambda c: audience_with(c).members.get(customer=c),
    ExportExclusion: exclusion,
    Suppression: lambda c: Suppression.objects.create(customer=c, reason="objected"),
}


def models_referring_to_customers() -> set[type[models.Model]]:
    return {
        model
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is Customer
    }


@pytest.fixture
def person(db) -> Customer:
    return make_customer("QZX-7731", plan=PLAN, age=44)


def download(user, customer: Customer):
    return logged_in(user).get(f"/api/customers/{customer.pk}/portability/")


def test_it_puts_every_record_that_refers_to_the_customer_in_the_file(person, steward):
    assert models_referring_to_customers() == set(ROWS)
    rows = {model: make(person) for model, make in ROWS.items()}
    other = make_customer("SOMEONE-ELSE")
    record_consent(other, "profiling")

    response = download(steward, person)

    assert response.status_code == 200, response.content
    records = response.json()["records"]
    for model, row in rows.items():
        section = records[str(model._meta.verbose_name_plural)]
        assert [r["id"] for r in section] == [row.pk], model.__name__
    assert records["customer identities"][0]["email"] == "quokka@example.org"


def test_it_adds_the_profile_the_exports_models_and_audit_events_about_them(
    person, steward, marketer
):
    from recengine.registry import ModelRegistry

    held = export_of(audience_with(person))
    model_id = ModelRegistry(settings.MODEL_REGISTRY_DIR).save(
        {"a": "picklable stand-in"},
        name="tiny",
        fingerprint="0" * 64,
        pseudonyms=[person.pseudonym, "someone-else"],
        consent_snapshot={},
    )
    trained = finished_run(None, model_id=model_id)
    finished_run(None, model_id="another-model")
    viewed = audit_log(
        actor=marketer,
        action=AuditEvent.Action.PII_VIEW,
        target_type="customer",
        details={"customers": [person.pseudonym]},
    )

    document = download(steward, person).json()

    assert document["customer"]["external_id"] == "QZX-7731"
    assert document["customer"]["profile"] == {"plan": PLAN, "age": 44}
    assert [e["id"] for e in document["exports_that_held_them"]] == [held.pk]
    assert [m["training_run"] for m in document["models_trained_with_their_data"]] == [trained.pk]
    assert viewed.pk in [e["id"] for e in document["audit_events"]]


def test_it_records_the_download_in_the_audit_log(person, steward):
    download(steward, person)

    event = AuditEvent.objects.get(action=AuditEvent.Action.DATA_ACCESS)
    assert (event.actor, event.target_ref) == (steward, person.pseudonym)
    assert event.details["where"] == "api"


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_it_is_for_data_stewards_only(person, role, request):
    user = request.getfixturevalue(role)

    assert download(user, person).status_code == 403
    assert logged_in(user).get(f"/customers/{person.pk}/portability.json").status_code == 403
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DATA_ACCESS).exists()


def test_the_customer_page_offers_stewards_the_download(person, steward, viewer):
    url = f"/customers/{person.pk}/portability.json"
    assert url in logged_in(steward).get(f"/customers/{person.pk}/").content.decode()
    assert url not in logged_in(viewer).get(f"/customers/{person.pk}/").content.decode()

    response = logged_in(steward).get(url)

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="customer-{person.pk}.json"'
    assert response.json()["customer"]["profile"]["plan"] == PLAN
    assert AuditEvent.objects.get(action=AuditEvent.Action.DATA_ACCESS).details["where"] == (
        "customer page"
    )
