"""Campaign plan test data: a scored campaign whose scores, consents and responses are known."""

from datetime import timedelta

import numpy as np
from django.utils import timezone

from marketing.models import Customer, Interaction, Offer, Purpose, ScoringRun
from marketing.pseudonyms import pseudonym_for
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

ECONOMICS = {
    "cost_per_contact": 2.0,
    "fixed_cost": 100.0,
    "value_per_conversion": 50.0,
    "budget": None,
}


def scored_customers(
    n: int, offer: Offer, *, prefix: str = "P", by=None, **attributes
) -> tuple[ScoringRun, list[Customer]]:
    """``n`` customers with a profiling consent, scored 0.9·(i+1)/n by a finished single-offer
    run (the last customer scores highest)."""
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{prefix}{i:05d}",
                pseudonym=pseudonym_for(f"{prefix}{i:05d}"),
                attributes={"age": 20 + i % 50, **attributes},
            )
            for i in range(n)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))
    add_consent(customers, Purpose.PROFILING)
    run = finished_run(offer, by=by)
    return finished_scoring(run, customers, by=by), customers


def respond(
    customer: Customer,
    offer: Offer,
    kind: str,
    *,
    campaign: str = "",
    value: float | None = None,
    hours: int = 0,
) -> Interaction:
    return Interaction.objects.create(
        customer=customer,
        offer=offer,
        kind=kind,
        campaign=campaign,
        value=value,
        occurred_at=timezone.now() - timedelta(days=1, hours=hours),
    )


def treatment_control_customers(n: int, offer: Offer, *, seed: int = 0) -> list[Customer]:
    """A randomised campaign: half the customers were called (``called`` = "yes"). Young
    customers convert far more often when called; the rest convert rarely either way."""
    rng = np.random.default_rng(seed)
    called = rng.random(n) < 0.5
    age = rng.integers(18, 80, n)
    young = age < 40
    p = np.where(young & called, 0.55, np.where(young, 0.08, 0.12))
    converted = rng.random(n) < p
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"U{i:05d}",
                pseudonym=pseudonym_for(f"U{i:05d}"),
                attributes={
                    "age": int(age[i]),
                    "called": "yes" if called[i] else "no",
                    "region": ["north", "south"][i % 2],
                },
            )
            for i in range(n)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith="U").order_by("pk"))
    add_consent(customers, Purpose.PROFILING)
    when = timezone.now() - timedelta(days=3)
    Interaction.objects.bulk_create(
        [
            Interaction(customer=c, offer=offer, kind=Interaction.Kind.CONVERSION, occurred_at=when)
            for c, yes in zip(customers, converted, strict=True)
            if yes
        ]
    )
    return customers
