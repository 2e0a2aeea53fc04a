"""Reads of explanation runs: the latest global importance of a model, the latest
explanation of a customer, and the model a customer's page explains by default."""

from django.db.models import QuerySet

from marketing.models import Customer, ExplanationRun, Job, TrainingRun
from marketing.selectors.consent import profiling_use_q
from marketing.selectors.training import finished_training_runs


def explanation_runs() -> QuerySet[ExplanationRun]:
    """Explanation runs with ``profiling_consent``: whether the explained customer has a
    valid profiling consent now (a customer's explanation is shown only then)."""
    return ExplanationRun.objects.select_related(
        "job", "training_run", "customer", "created_by"
    ).annotate(profiling_consent=profiling_use_q())


def latest_global_explanation(training_run: TrainingRun) -> ExplanationRun | None:
    """The newest global importance of the run, whatever its state (the page shows a running
    one's progress and a failed one's reason)."""
    return (
        explanation_runs()
        .filter(training_run=training_run, scope=ExplanationRun.Scope.GLOBAL)
        .first()
    )


def latest_customer_explanation(
    customer: Customer, training_run: TrainingRun | None = None
) -> ExplanationRun | None:
    """The newest explanation of the customer's score (by ``training_run`` when given)."""
    runs = explanation_runs().filter(customer=customer, scope=ExplanationRun.Scope.CUSTOMER)
    if training_run is not None:
        runs = runs.filter(training_run=training_run)
    return runs.first()


def default_training_run(customer: Customer) -> TrainingRun | None:
    """The model a customer's page explains unless the marketer picks another: the latest
    finished run that scored the customer, else the latest finished run."""
    scored = (
        finished_training_runs()
        .filter(
            scoring_runs__scores__customer=customer,
            scoring_runs__job__status=Job.Status.SUCCEEDED,
        )
        .order_by("-scoring_runs__created_at", "-id")
        .first()
    )
    return scored or finished_training_runs().order_by("-created_at", "-id").first()
