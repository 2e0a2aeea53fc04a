import pytest

from marketing.models import Customer, ExplanationRun, Job, Purpose
from marketing.selectors.explanations import (
    default_training_run,
    latest_customer_explanation,
    latest_global_explanation,
)
from marketing.services import jobs
from marketing.services.erasure import customer_erase
from marketing.services.explanations import (
    ExplanationSetupError,
    explanation_run_create,
)
from recengine.explain import PERMUTATION_TOLERANCE
from tests.marketing.training_helpers import (
    add_consent,
    finished_run,
    finished_scoring,
    make_click_customers,
)

pytestmark = pytest.mark.django_db
FIELDS = {"age", "job", "balance"}


def explain(capture, **kwargs) -> ExplanationRun:
    with capture(execute=True):
        run = explanation_run_create(**kwargs)
    run.refresh_from_db()
    run.job.refresh_from_db()
    return run


def test_it_computes_the_global_importance_of_both_models_with_progress(
    tiny_run, marketer, django_capture_on_commit_callbacks, monkeypatch
):
    seen = []
    make = jobs.make_progress

    def recording(job_id, attempt=None):
        progress = make(job_id, attempt)

        def wrapped(percent, message=""):
            seen.append((percent, message))
            progress(percent, message)

        return wrapped

    monkeypatch.setattr(jobs, "make_progress", recording)
    run = explain(
        django_capture_on_commit_callbacks,
        training_run=tiny_run,
        scope="global",
        sample_size=40,
        by=marketer,
    )

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    assert run.job.kind == Job.Kind.EXPLAIN
    for key in ("bert", "baseline"):
        result = run.result[key]
        assert result["rows"] == 40
        assert {f["field"] for f in result["fields"]} == FIELDS
        means = [f["mean_abs"] for f in result["fields"]]
        assert means == sorted(means, reverse=True) and means[0] > 0
        assert 0 <= result["local_accuracy_error"] <= PERMUTATION_TOLERANCE
    assert run.result["bert"]["method"] == "permutation"
    assert run.result["baseline"]["method"] == "tree"
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and len(percents) >= 4
    assert any("Explained 40 of 40 customers" in m for _, m in seen)
    assert latest_global_explanation(tiny_run) == run


def test_it_explains_one_customer_so_that_the_contributions_add_up_to_the_score(
    tiny_run, marketer, click_customers, settings, django_capture_on_commit_callbacks
):
    import pandas as pd

    from recengine.explain import model_logits
    from recengine.registry import ModelRegistry

    customer = click_customers[3]
    run = explain(
        django_capture_on_commit_callbacks,
        training_run=tiny_run,
        scope="customer",
        customer=customer,
        by=marketer,
    )

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    models = {
        "bert": registry.load(tiny_run.model_id),
        "baseline": registry.load_part(tiny_run.model_id, "baseline"),
    }
    frame = pd.DataFrame([customer.attributes])
    for key, model in models.items():
        exp = run.result[key]
        total = exp["base_value"] + sum(c["contribution"] for c in exp["contributions"])
        assert abs(total - exp["logit"]) == pytest.approx(exp["local_accuracy_error"], abs=1e-9)
        assert exp["local_accuracy_error"] <= exp["tolerance"]
        # The explained logit is the model's own score of the customer.
        assert exp["logit"] == pytest.approx(float(model_logits(model, frame)[0]), abs=1e-5)
        assert exp["row_id"] == customer.pk
        assert {c["field"]: c["value"] for c in exp["contributions"]} == customer.attributes
    assert latest_customer_explanation(customer) == run
    assert latest_customer_explanation(customer, tiny_run) == run


def test_it_refuses_a_customer_without_profiling_consent(tiny_run, marketer, term_deposit):
    (customer,) = make_click_customers(
        1, term_deposit, purposes=(Purpose.MODEL_TRAINING,), prefix="NOPROF"
    )
    with pytest.raises(ExplanationSetupError, match="no valid profiling consent"):
        explanation_run_create(
            training_run=tiny_run, scope="customer", customer=customer, by=marketer
        )
    assert not ExplanationRun.objects.exists()


def test_it_fails_the_job_when_consent_is_withdrawn_before_it_runs(
    tiny_run, marketer, click_customers, django_capture_on_commit_callbacks
):
    customer = click_customers[0]
    with django_capture_on_commit_callbacks() as callbacks:
        run = explanation_run_create(
            training_run=tiny_run, scope="customer", customer=customer, by=marketer
        )
    add_consent([customer], Purpose.PROFILING, status="withdrawn", days_ago=0.001)
    for callback in callbacks:
        callback()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert "no valid profiling consent" in run.job.message
    run.refresh_from_db()
    assert run.result == {}


def test_it_refuses_a_run_that_has_not_finished(marketer, term_deposit):
    run = finished_run(term_deposit)
    Job.objects.filter(pk=run.job_id).update(status=Job.Status.RUNNING)
    run.job.refresh_from_db()
    with pytest.raises(ExplanationSetupError, match="Only a finished training run"):
        explanation_run_create(training_run=run, scope="global", by=marketer)


def test_it_refuses_a_sample_out_of_range_and_an_unknown_scope(tiny_run, marketer):
    with pytest.raises(ExplanationSetupError, match="between 10 and 5000"):
        explanation_run_create(training_run=tiny_run, scope="global", sample_size=3, by=marketer)
    with pytest.raises(ExplanationSetupError, match="Unknown scope"):
        explanation_run_create(training_run=tiny_run, scope="segment", by=marketer)
    with pytest.raises(ExplanationSetupError, match="Name the customer"):
        explanation_run_create(training_run=tiny_run, scope="customer", by=marketer)


def test_it_fails_with_a_clear_message_for_a_model_without_baseline(
    tiny_run, marketer, settings, django_capture_on_commit_callbacks
):
    from pathlib import Path

    (Path(settings.MODEL_REGISTRY_DIR) / tiny_run.model_id / "parts" / "baseline.pkl").unlink()
    run = explain(
        django_capture_on_commit_callbacks,
        training_run=tiny_run,
        scope="global",
        sample_size=10,
        by=marketer,
    )
    assert run.job.status == Job.Status.FAILED
    assert "saved without its LightGBM baseline" in run.job.message


def test_it_deletes_the_explanations_of_an_erased_customer(
    tiny_run, marketer, steward, click_customers, django_capture_on_commit_callbacks
):
    customer = click_customers[1]
    run = explain(
        django_capture_on_commit_callbacks,
        training_run=tiny_run,
        scope="customer",
        customer=customer,
        by=marketer,
    )
    other = explain(
        django_capture_on_commit_callbacks,
        training_run=tiny_run,
        scope="customer",
        customer=click_customers[2],
        by=marketer,
    )

    customer_erase(customer=customer, by=steward)

    assert not ExplanationRun.objects.filter(pk=run.pk).exists()
    assert ExplanationRun.objects.filter(pk=other.pk).exists()
    assert str(customer.external_id) not in Job.objects.get(pk=run.job_id).title


def test_it_sends_explanations_to_the_gpu_queue_when_a_gpu_worker_exists(
    tiny_run, marketer, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from marketing import tasks
    from marketing.services import jobs

    sent = []
    monkeypatch.setattr(
        tasks.run_job_task, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    monkeypatch.setattr(jobs, "gpu_worker_listening", lambda: True)
    settings.JOB_QUEUE = "celery"
    for use_gpu in (True, False):
        settings.USE_GPU = use_gpu
        explain(
            django_capture_on_commit_callbacks, training_run=tiny_run, scope="global", by=marketer
        )
    assert [queue for _, queue in sent] == ["gpu", settings.CELERY_TASK_DEFAULT_QUEUE]


def test_it_picks_the_model_that_scored_the_customer_by_default(term_deposit, click_customers):
    scored = finished_run(term_deposit, name="Scored")
    newer = finished_run(term_deposit, name="Newer")
    customer = click_customers[0]
    assert default_training_run(customer) == newer
    finished_scoring(scored, [customer])
    assert default_training_run(customer) == scored
    assert default_training_run(Customer.objects.create(external_id="X", pseudonym="px")) == newer


def test_it_explains_a_multi_offer_model_for_the_customers_best_scored_offer(
    term_deposit, click_customers
):
    from marketing.models import CustomerScore
    from marketing.services.explanations import customer_frame, explanation_offer
    from tests.factories import make_offer

    loan = make_offer("LOAN", title="Loan", category="credit", price=10)
    every_offer = finished_run(None, name="Every offer")
    customer, other = click_customers[0], click_customers[1]
    scoring = finished_scoring(every_offer, [])
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(scoring_run=scoring, customer=customer, offer=term_deposit, score=0.2),
            CustomerScore(scoring_run=scoring, customer=customer, offer=loan, score=0.7),
        ]
    )

    def offer_for(who):
        return explanation_offer(ExplanationRun(training_run=every_offer, customer=who))

    assert offer_for(customer) == loan
    assert offer_for(other) == term_deposit  # not scored: the first active offer
    assert offer_for(None) == term_deposit
    assert explanation_offer(ExplanationRun(training_run=finished_run(term_deposit))) is None
    frame = customer_frame([customer], every_offer, loan)
    assert frame.loc[customer.pk].to_dict() == {
        **customer.attributes,
        "offer_title": "Loan",
        "offer_category": "credit",
        "offer_price": 10.0,
    }
