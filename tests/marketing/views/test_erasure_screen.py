"""The data steward's erasure screen: what will happen, a reason, the erasure as a job, and
what it did, with the models to retrain."""

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing.models import AuditEvent, Customer, Interaction, Job, Suppression, TrainingRun
from marketing.selectors.erasure import erasure_plan
from tests.factories import make_offer
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(marketer):
    """A customer with an identity, consent history, responses, a score, a suppression, a
    place in a frozen audience and an export file that holds them."""
    people = make_people(12)
    customer = people[0]
    offer = make_offer()
    for kind in (Interaction.Kind.IMPRESSION, Interaction.Kind.CLICK):
        Interaction.objects.create(
            customer=customer, offer=offer, kind=kind, occurred_at=timezone.now()
        )
    finished_scoring(finished_run(offer, by=marketer), people, by=marketer)
    audience = frozen_audience(marketer)
    exported(audience, "meta_custom_audience", marketer)
    Suppression.objects.create(customer=customer, reason="Asked not to be contacted")
    return customer


def test_the_screen_lists_exactly_what_the_erasure_then_does(
    steward, person, django_capture_on_commit_callbacks
):
    client = logged_in(steward)
    page = client.get(reverse("customer-erase", args=[person.pk]))
    assert page.status_code == 200
    plan = {step.key: step.count for step in page.context["plan"]}
    assert plan["identity"] == 1 and plan["interactions"] == 2 and plan["scores"] == 1
    assert plan["audience_memberships"] == 1 and plan["export_files"] == 1
    assert plan["suppressions"] == 1 and plan["consent_records"] >= 1

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("customer-erase", args=[person.pk]), {"reason": "Request by email, #4711"}
        )
    job = Job.objects.get(kind=Job.Kind.ERASE)
    assert response["Location"] == reverse("customer-erasure", args=[job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert not Customer.objects.filter(pk=person.pk).exists()
    # Every step the screen counted beforehand is what the erasure did.
    assert {key: job.result[key] for key, count in plan.items() if count is not None} == {
        key: count for key, count in plan.items() if count is not None
    }
    event = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert event.details["reason"] == "Request by email, #4711"

    done = client.get(response["Location"])
    outcome = {step.key: step.count for step in done.context["outcome"]}
    assert outcome["scores"] == 1 and outcome["upload_rows"] == 0
    assert "The customer was erased" in done.content.decode()


def test_the_erasure_page_links_to_each_flagged_model_and_a_marketer_retrains_it(
    steward, marketer, person, django_capture_on_commit_callbacks
):
    run = TrainingRun.objects.get()
    job = Job.objects.create(
        kind=Job.Kind.ERASE,
        title="Erasure of a customer",
        status=Job.Status.SUCCEEDED,
        result={"identity": 1, "models_flagged": 1, "flagged_runs": [run.pk]},
        params={"reason": "test"},
        created_by=steward,
    )
    TrainingRun.objects.filter(pk=run.pk).update(flagged_erasure=True, erased_customers=1)
    page = logged_in(steward).get(reverse("customer-erasure", args=[job.pk])).content.decode()
    assert f'href="/models/{run.pk}/#retrain"' in page

    model_page = logged_in(marketer).get(reverse("model-detail", args=[run.pk])).content.decode()
    assert 'data-testid="retrain-button"' in model_page
    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in(marketer).post(reverse("model-retrain", args=[run.pk]))
    again = TrainingRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == reverse("model-detail", args=[again.pk])
    assert (again.offer, again.target, again.mode) == (run.offer, run.target, run.mode)
    assert {key: again.params[key] for key in run.params} == run.params  # the same request
    assert again.name == f"{run.name} · retrained" and not again.flagged_erasure


def test_an_erasure_needs_a_reason_and_a_steward(steward, marketer, person):
    url = reverse("customer-erase", args=[person.pk])
    assert logged_in(marketer).get(url).status_code == 403
    assert logged_in(marketer).post(url, {"reason": "x"}).status_code == 403
    refused = logged_in(steward).post(url, {"reason": "  "})
    assert refused.status_code == 400
    assert "Say why the customer is erased" in refused.content.decode()
    assert Customer.objects.filter(pk=person.pk).exists()
    assert not Job.objects.filter(kind=Job.Kind.ERASE).exists()


def test_the_customer_page_and_the_admin_lead_a_steward_to_the_screen(steward, person):
    steward.is_staff = True
    steward.save()
    client = logged_in(steward)
    page = client.get(reverse("customer-detail", args=[person.pk])).content.decode()
    assert reverse("customer-erase", args=[person.pk]) in page
    admin_delete = client.get(reverse("admin:marketing_customer_delete", args=[person.pk]))
    assert admin_delete["Location"] == reverse("customer-erase", args=[person.pk])
    assert Customer.objects.filter(pk=person.pk).exists()


def test_the_plan_reads_only_the_customers_own_records(person, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        steps = erasure_plan(person)
    assert [s.key for s in steps if s.count is None] == ["upload_rows", "models_flagged"]
