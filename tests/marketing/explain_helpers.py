"""A tiny finished training run with its model and baseline in the registry, for the
explanation tests of services, pages and the API."""

import pytest

from marketing.models import Job, TrainingRun
from marketing.services.training import training_run_create
from tests.marketing.training_helpers import FAST_PARAMS


def train_tiny_run(capture, by, offer) -> TrainingRun:
    """Trains through the training Job (tiny BERT, one epoch), as the product does."""
    with capture(execute=True):
        run = training_run_create(
            name="Term deposit model", segment=None, offer=offer, target="conversion",
            base_model="", mode="full", params={**FAST_PARAMS, "epochs": 1}, by=by,
        )
    run.refresh_from_db()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    return run


@pytest.fixture
def tiny_run(marketer, tiny_bert, term_deposit, click_customers,
             django_capture_on_commit_callbacks) -> TrainingRun:
    return train_tiny_run(django_capture_on_commit_callbacks, marketer, term_deposit)
