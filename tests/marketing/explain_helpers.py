"""A tiny finished training run with its model and baseline in the registry, for the
explanation tests of services, pages and the API."""

import pytest
from django.utils import timezone

from marketing.models import ExplanationRun, Job, TrainingRun
from marketing.services.training import training_run_create
from tests.marketing.training_helpers import FAST_PARAMS


def train_tiny_run(capture, by, offer) -> TrainingRun:
    """Trains through the training Job (tiny BERT, one epoch), as the product does."""
    with capture(execute=True):
        run = training_run_create(
            name="Term deposit model",
            segment=None,
            offer=offer,
            target="conversion",
            base_model="",
            mode="full",
            params={**FAST_PARAMS, "epochs": 1},
            by=by,
        )
    run.refresh_from_db()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    return run


@pytest.fixture
def tiny_run(
    marketer, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
) -> TrainingRun:
    return train_tiny_run(django_capture_on_commit_callbacks, marketer, term_deposit)


def stored_explanation(run: TrainingRun, *, customer=None, by=None) -> ExplanationRun:
    """A finished explanation (one customer, or global when ``customer`` is None) whose numbers
    add up the way recengine's do; nothing is computed."""
    from recengine.explain import (
        Explanation,
        FieldContribution,
        FieldImportance,
        GlobalImportance,
        _sigmoid,
    )

    job = Job.objects.create(
        kind=Job.Kind.EXPLAIN,
        title="Explain",
        status=Job.Status.SUCCEEDED,
        progress=100,
        message="Done",
        created_by=by,
        finished_at=timezone.now(),
    )
    result = {}
    for key, scale, method in (("bert", 1.0, "permutation"), ("baseline", 0.6, "tree")):
        if customer is None:
            fields = [
                FieldImportance("job", "job", 0.9 * scale),
                FieldImportance("balance", "balance", 0.5 * scale),
                FieldImportance("age", "age", 0.1 * scale),
            ]
            part = GlobalImportance(fields, 40, method, 1.0, 2e-7).to_dict()
            part["local_accuracy_error"] = part["max_local_accuracy_error"]
        else:
            attrs = customer.attributes
            contributions = [
                FieldContribution("job", "job", attrs["job"], 1.2 * scale),
                FieldContribution("balance", "balance", attrs["balance"], -0.4 * scale),
                FieldContribution("age", "age", attrs["age"], 0.05 * scale),
            ]
            base = -1.5
            logit = base + sum(c.contribution for c in contributions)
            part = Explanation(
                customer.pk, base, logit, _sigmoid(logit), contributions, method, 1e-3, 0.0
            ).to_dict()
        result[key] = part
    return ExplanationRun.objects.create(
        job=job,
        training_run=run,
        customer=customer,
        scope=ExplanationRun.Scope.GLOBAL if customer is None else ExplanationRun.Scope.CUSTOMER,
        sample_size=40 if customer is None else 1,
        background_size=20,
        result=result,
        created_by=by,
    )
