"""Multi-offer scores made directly (no model): offers with categories, consented customers,
a finished multi-offer scoring run with one score per customer and offer, and clicks."""

from datetime import timedelta

from django.utils import timezone

from marketing.models import (
    Customer,
    CustomerScore,
    Interaction,
    Job,
    Offer,
    ProfileField,
    Purpose,
    RecommendationRun,
    ScoringRun,
)
from marketing.pseudonyms import pseudonym_for
from marketing.services.jobs import run_job
from marketing.services.recommendations import recommendation_run_create
from tests.factories import make_offer
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

# Three savings offers every customer scores high, two loans scored lower.
CATALOGUE = [
    ("SAVE-1", "Saver plus", "savings", 0.90),
    ("SAVE-2", "Fixed saver", "savings", 0.88),
    ("SAVE-3", "Kids saver", "savings", 0.86),
    ("LOAN-1", "Car loan", "loans", 0.50),
    ("LOAN-2", "Home loan", "loans, long-term", 0.48),
]


def make_catalogue() -> list[Offer]:
    return [
        make_offer(code, title=title, category=category) for code, title, category, _ in CATALOGUE
    ]


def make_customers(
    n: int, *, prefix: str = "R", purposes=(Purpose.PROFILING,), **attributes
) -> list[Customer]:
    Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{prefix}{i:05d}",
                pseudonym=pseudonym_for(f"{prefix}{i:05d}"),
                attributes={"job": "admin.", **attributes},
            )
            for i in range(n)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))
    if purposes:
        add_consent(customers, *purposes)
    return customers


def multi_offer_scoring(
    customers: list[Customer],
    offers: list[Offer],
    scores: dict | None = None,
    *,
    by=None,
    trained_days_ago: float = 5,
) -> ScoringRun:
    """A finished scoring run of a multi-offer model (trained ``trained_days_ago``).
    ``scores[(customer index, offer index)]`` overrides the catalogue's score; each customer's
    scores are nudged down by a little per position so no two rows tie."""
    trained_at = timezone.now() - timedelta(days=trained_days_ago)
    run = finished_run(
        None,
        by=by,
        name="Every offer · click",
        consent_snapshot={"purpose": "model_training", "at": trained_at.isoformat()},
    )
    job = Job.objects.create(
        kind=Job.Kind.SCORE,
        title="Score",
        status=Job.Status.SUCCEEDED,
        progress=100,
        message="Done",
        created_by=by,
    )
    scoring = ScoringRun.objects.create(
        job=job,
        training_run=run,
        rows_scored=len(customers) * len(offers),
        customers_scored=len(customers),
        created_by=by,
        customers_excluded={"no_record": 0, "denied": 0, "withdrawn": 0, "expired": 0},
    )
    by_code = {code: value for code, _, _, value in CATALOGUE}
    rows = []
    for i, customer in enumerate(customers):
        for j, offer in enumerate(offers):
            default = by_code.get(offer.external_id, 0.5) - 0.001 * i / max(len(customers), 1)
            rows.append(
                CustomerScore(
                    scoring_run=scoring,
                    customer=customer,
                    offer=offer,
                    score=(scores or {}).get((i, j), default),
                )
            )
    CustomerScore.objects.bulk_create(rows)
    return ScoringRun.objects.select_related("job", "training_run__job").get(pk=scoring.pk)


def record_clicks(pairs, *, days_ago: float, kind: str = Interaction.Kind.CLICK) -> None:
    """Clicks (customer, offer) that happened ``days_ago`` days ago."""
    at = timezone.now() - timedelta(days=days_ago)
    Interaction.objects.bulk_create(
        [
            Interaction(customer=customer, offer=offer, kind=kind, occurred_at=at)
            for customer, offer in pairs
        ]
    )


def recommend(
    scoring, *, k=2, diversity=0.0, offer_cap=None, similarity="categories", by=None
) -> RecommendationRun:
    """A finished recommendation run (its job run here, as the inline queue would)."""
    run = recommendation_run_create(
        scoring_run=scoring,
        k=k,
        diversity=diversity,
        offer_cap=offer_cap,
        similarity=similarity,
        by=by,
    )
    run_job(run.job.pk)
    run = RecommendationRun.objects.select_related("job").get(pk=run.pk)
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    return run


# In score order, lowest first: finished_scoring gives later customers higher scores.
GROUPS = [("admin.", 50, 40), ("retired", 20, 70), ("student", 30, 25)]


def scored_base(groups=GROUPS):
    """A single-offer scoring run over customers of the given (job, count, age) groups."""
    ProfileField.objects.create(name="job", label="Job", data_type="text")
    ProfileField.objects.create(name="age", label="Age", data_type="number")
    rows = [(job, age) for job, count, age in groups for _ in range(count)]
    Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"A{i:04d}",
                pseudonym=pseudonym_for(f"A{i:04d}"),
                attributes={"job": job, "age": age + i % 3},
            )
            for i, (job, age) in enumerate(rows)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith="A").order_by("pk"))
    add_consent(customers, Purpose.PROFILING)
    offer = Offer.objects.filter(external_id="SAVE-1").first() or make_catalogue()[0]
    return finished_scoring(finished_run(offer), customers), customers
