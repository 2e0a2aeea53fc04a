"""A training Job and a scoring Job through a real Celery worker, Redis and PostgreSQL."""

import pytest

from marketing.models import CustomerScore, Job
from marketing.services.scoring import scoring_run_create
from marketing.services.training import training_run_create
from tests.factories import make_offer
from tests.integration.conftest import wait_for_job
from tests.marketing.training_helpers import FAST_PARAMS, make_click_customers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_it_trains_and_scores_through_a_real_celery_worker(
    celery_jobs, marketer, tiny_bert, settings
):
    from django.core.cache import cache

    from marketing.services.jobs import GPU_PROBE_KEY

    # GPU routing is on, but the only worker consumes the default queue: the workers are
    # asked, and the model jobs go to the CPU worker instead of waiting for a GPU one.
    settings.USE_GPU = True
    cache.delete(GPU_PROBE_KEY)
    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    customers = make_click_customers(200, offer)

    run = training_run_create(
        name="Through Celery",
        segment=None,
        offer=offer,
        target="conversion",
        base_model="",
        mode="lora",
        params={**FAST_PARAMS, "epochs": 1},
        by=marketer,
    )
    assert run.job.status == Job.Status.QUEUED  # handed to the broker, not run here
    run.job.refresh_from_db()
    assert run.job.params["queue"] == "default"

    job = wait_for_job(run.job, celery_jobs, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{celery_jobs.log_tail()}"
    run.refresh_from_db()
    assert run.model_id and run.metrics["bert"]["roc_auc"] > 0
    assert run.curves["loss"] and run.customers_used == 200

    scoring = scoring_run_create(training_run=run, segment=None, by=marketer)
    job = wait_for_job(scoring.job, celery_jobs, timeout=120)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{celery_jobs.log_tail()}"
    assert CustomerScore.objects.filter(scoring_run=scoring).count() == len(customers)
    assert "marketing.run_job" in celery_jobs.log_tail(20000)


def test_a_scheduled_re_training_runs_through_the_worker_and_respects_consent(
    workers, marketer, tiny_bert
):
    from datetime import timedelta

    from django.utils import timezone

    from marketing.models import Purpose, RetrainSchedule, TrainingRun
    from marketing.services.champions import model_promote
    from marketing.tasks import retrain_due_task
    from tests.factories import record_consent
    from tests.integration.conftest import wait_until

    # The worker re-trains with its own settings: the tiny BERT is its configured model.
    worker = workers.start("retrainer", CLICK_MODEL_BASE=tiny_bert)
    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    first = make_click_customers(200, offer)
    run = training_run_create(
        name="Spring",
        segment=None,
        offer=offer,
        target="conversion",
        base_model="",
        mode="lora",
        params={**FAST_PARAMS, "epochs": 1},
        by=marketer,
    )
    job = wait_for_job(run.job, worker, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{worker.log_tail()}"
    run.refresh_from_db()
    model_promote(run=run, by=marketer)
    # Newer responses: 150 customers, 10 of them without a training consent; one customer the
    # model learned from withdraws.
    make_click_customers(140, offer, prefix="N", seed=2)
    make_click_customers(10, offer, prefix="Q", seed=3, purposes=(Purpose.PROFILING,))
    record_consent(first[0], Purpose.MODEL_TRAINING, "withdrawn", days_ago=1)
    RetrainSchedule.objects.create(
        offer=offer,
        target="conversion",
        start="incremental",
        every_days=30,
        next_at=timezone.now() - timedelta(minutes=1),
    )

    retrain_due_task.delay()  # what celery beat sends
    wait_until(lambda: TrainingRun.objects.filter(parent=run).exists(), "no re-training", workers)
    child = TrainingRun.objects.get(parent=run)
    job = wait_for_job(child.job, worker, timeout=300)
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{worker.log_tail()}"
    child.refresh_from_db()
    assert child.start == "incremental" and child.created_by is None
    assert child.rows["examples"] == 140  # the newer, consented responses only
    assert child.customers_excluded["no_record"] == 10
    assert child.left_out_since_parent == {"erased": 0, "withdrawn": 1}
    schedule = RetrainSchedule.objects.get()
    assert schedule.last_run == child and schedule.next_at > timezone.now()
    assert "marketing.retrain_due" in worker.log_tail(20000)
