"""A campaign plan's forecast is out of sample for every customer: on a synthetic base with
known response probabilities, the expected conversions of a plan are within 3 % of the truth
for the customers the model learned from and for new customers alike."""

import numpy as np
import pytest

from marketing.models import Customer, Interaction, ProfileField, Purpose, Segment
from marketing.pseudonyms import pseudonym_for
from marketing.services.plans import campaign_plan_create
from marketing.services.scoring import scoring_run_create
from tests.marketing.services.test_training import train
from tests.marketing.training_helpers import add_consent

pytestmark = pytest.mark.django_db

LEARNED, NEW = 6000, 3000
DEPTH = 0.3
NOISE_FIELDS = 16
TOLERANCE = 0.03


def truth(x: float, region: str) -> float:
    return float(1 / (1 + np.exp(-(-0.6 + 1.4 * x + 0.9 * (region == "north")))))


@pytest.fixture
def known_base(term_deposit):
    from datetime import timedelta

    from django.utils import timezone

    rng = np.random.default_rng(7)
    rows = []
    for i in range(LEARNED + NEW):
        cohort = "learned" if i < LEARNED else "new"
        attributes = {
            "x": round(float(rng.normal()), 3),
            "region": str(rng.choice(["north", "south"])),
            "cohort": cohort,
            # Fields that say nothing about the response, which a model can still fit to
            # the labels it learned from: the in-sample optimism a forecast must not keep.
            **{f"noise{k}": round(float(rng.normal()), 3) for k in range(NOISE_FIELDS)},
        }
        rows.append(
            Customer(
                external_id=f"T{i:05d}", pseudonym=pseudonym_for(f"T{i:05d}"), attributes=attributes
            )
        )
    Customer.objects.bulk_create(rows)
    customers = list(Customer.objects.filter(external_id__startswith="T").order_by("pk"))
    add_consent(customers, Purpose.MODEL_TRAINING, Purpose.PROFILING)
    shown = timezone.now() - timedelta(days=5)
    responses = []
    probabilities = {}
    for customer in customers:
        a = customer.attributes
        probabilities[customer.pk] = truth(a["x"], a["region"])
        if a["cohort"] != "learned":
            continue  # new customers: never shown the offer, so never learned from
        responses.append(
            Interaction(customer=customer, offer=term_deposit, kind="impression", occurred_at=shown)
        )
        if rng.random() < probabilities[customer.pk]:
            responses.append(
                Interaction(
                    customer=customer, offer=term_deposit, kind="conversion", occurred_at=shown
                )
            )
    Interaction.objects.bulk_create(responses)
    for name, data_type in (("x", "number"), ("region", "category"), ("cohort", "category")):
        ProfileField.objects.create(name=name, data_type=data_type)
    for k in range(NOISE_FIELDS):
        ProfileField.objects.create(name=f"noise{k}", data_type="number")
    return probabilities


def cohort(name: str) -> Segment:
    rules = {"op": "and", "rules": [{"field": "attr:cohort", "operator": "eq", "value": name}]}
    return Segment.objects.create(name=f"Cohort {name}", rules=rules)


def test_plans_forecast_the_truth_for_learned_and_new_customers_alike(
    marketer, tiny_bert, term_deposit, known_base, django_capture_on_commit_callbacks
):
    run = train(
        django_capture_on_commit_callbacks,
        marketer,
        term_deposit,
        params={"epochs": 1, "max_rows": 100_000},
    )
    assert run.job.status == "succeeded", run.job.error
    gap = run.metrics["out_of_sample"]
    assert gap["method"] == "cross-fitted" and gap["folds"] == 5

    errors = {}
    for name in ("learned", "new"):
        with django_capture_on_commit_callbacks(execute=True):
            scoring = scoring_run_create(training_run=run, segment=cohort(name), by=marketer)
        scoring.refresh_from_db()
        assert scoring.job.status == "succeeded", scoring.job.error
        size = scoring.customers_scored
        assert size == (LEARNED if name == "learned" else NEW)
        plan = campaign_plan_create(
            scoring_run=scoring,
            name=f"Plan {name}",
            economics={"cost_per_contact": 1, "value_per_conversion": 10},
            contacts=int(DEPTH * size),
            by=marketer,
        )
        chosen = plan.result["chosen"]
        top = scoring.scores.order_by("-score", "customer_id")[: chosen["contacts"]]
        true_conversions = sum(known_base[s.customer_id] for s in top)
        errors[name] = chosen["expected_conversions"] / true_conversions - 1
        assert plan.result["forecast"]["out_of_sample"] is True

    assert all(abs(e) <= TOLERANCE for e in errors.values()), errors
