from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from marketing.dbstats import TableSize, table_size
from marketing.models import CustomerScore, Job, Purpose, ScoringRun, Segment
from marketing.services import jobs
from marketing.services import scoring as scoring_service
from marketing.services.scoring import ScoringSetupError, score_distribution, scoring_run_create
from tests.factories import make_customer, make_offer, record_consent
from tests.marketing.explain_helpers import train_tiny_run
from tests.marketing.training_helpers import add_consent, finished_run, make_click_customers

pytestmark = pytest.mark.django_db


def score(capture, run, by, segment=None) -> ScoringRun:
    with capture(execute=True):
        scoring = scoring_run_create(training_run=run, segment=segment, by=by)
    scoring.refresh_from_db()
    scoring.job.refresh_from_db()
    return scoring


def test_it_scores_each_customer_with_profiling_consent_once(
    trained, marketer, term_deposit, django_capture_on_commit_callbacks
):
    consented = make_click_customers(50, term_deposit, purposes=(Purpose.PROFILING,))
    others = make_click_customers(9, term_deposit, purposes=(Purpose.MODEL_TRAINING,), prefix="N")
    add_consent(others[:3], Purpose.PROFILING, status="denied")
    add_consent(others[3:5], Purpose.PROFILING, expires_at=timezone.now() - timedelta(days=1))
    for customer in others[5:6]:
        record_consent(customer, Purpose.PROFILING, days_ago=40)
        record_consent(customer, Purpose.PROFILING, "withdrawn", days_ago=1)

    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    scores = CustomerScore.objects.filter(scoring_run=scoring)
    assert sorted(scores.values_list("customer_id", flat=True)) == sorted(c.pk for c in consented)
    assert set(scores.values_list("offer_id", flat=True)) == {term_deposit.pk}
    assert all(0 <= s <= 1 for s in scores.values_list("score", flat=True))
    assert (scoring.rows_scored, scoring.customers_scored) == (50, 50)
    assert scoring.customers_excluded == {"no_record": 3, "denied": 3, "withdrawn": 1, "expired": 2}
    assert sum(scoring.distribution["counts"]) == scoring.distribution["count"] == 50
    assert scoring.job.result["customers_excluded"] == 9


def test_it_scores_a_value_the_model_never_learned_as_a_missing_one(
    marketer, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    run = train_tiny_run(django_capture_on_commit_callbacks, marketer, term_deposit)
    rare = make_customer("RARE", age=40, job="Zeppelin-Pilot", balance=0.5)
    blank = make_customer("BLANK", age=40, balance=0.5)
    for customer in (rare, blank):
        record_consent(customer, Purpose.PROFILING)

    scoring = score(django_capture_on_commit_callbacks, run, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    scores = dict(
        CustomerScore.objects.filter(scoring_run=scoring, customer__in=[rare, blank]).values_list(
            "customer__external_id", "score"
        )
    )
    assert scores["RARE"] == pytest.approx(scores["BLANK"])


def test_it_scores_only_the_segment(
    trained, marketer, term_deposit, django_capture_on_commit_callbacks
):
    customers = make_click_customers(30, term_deposit)
    students = Segment.objects.create(
        name="Students",
        rules={"op": "and", "rules": [{"field": "attr:job", "operator": "eq", "value": "student"}]},
    )

    scoring = score(django_capture_on_commit_callbacks, trained, marketer, students)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    expected = {c.pk for c in customers if c.attributes["job"] == "student"}
    assert set(scoring.scores.values_list("customer_id", flat=True)) == expected


def test_it_scores_every_active_offer_for_a_multi_offer_model(
    settings, registry_with_model, marketer, term_deposit, django_capture_on_commit_callbacks
):
    settings.MODEL_REGISTRY_DIR, model_id = registry_with_model
    make_offer("LOAN", title="Car loan")
    make_offer("OLD", title="Retired offer", active=False)
    make_click_customers(12, term_deposit)
    run = finished_run(None, model_id=model_id)

    scoring = score(django_capture_on_commit_callbacks, run, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    assert (scoring.rows_scored, scoring.customers_scored) == (24, 12)
    assert scoring.scores.values("offer_id").distinct().count() == 2


def test_it_leaves_no_scores_behind_when_cancelled(
    trained, marketer, term_deposit, monkeypatch, django_capture_on_commit_callbacks, settings
):
    make_click_customers(30, term_deposit)
    settings.SCORING_CHUNK_ROWS = 10
    real = jobs.make_progress

    def cancel_after_first_chunk(job_id, attempt=None):
        progress = real(job_id, attempt)

        def wrapped(percent, message=""):
            if message.startswith("Scored 10 "):
                jobs.Job.objects.filter(pk=job_id).update(cancel_requested=True)
            progress(percent, message)

        return wrapped

    monkeypatch.setattr(jobs, "make_progress", cancel_after_first_chunk)
    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.CANCELLED
    assert not scoring.scores.exists() and scoring.rows_scored == 0


def test_it_refuses_a_run_without_a_finished_model(marketer, term_deposit):
    run = finished_run(term_deposit, model_id="")
    with pytest.raises(ScoringSetupError):
        scoring_run_create(training_run=run, segment=None, by=marketer)
    assert not ScoringRun.objects.exists()


def test_it_summarises_scores_in_equal_bars_up_to_the_highest():
    import numpy as np

    scores = np.array([0.01, 0.02, 0.03, 0.12, 0.14])
    fine = np.histogram(scores, bins=1000, range=(0, 1))[0]
    summary = score_distribution(fine, float(scores.sum()), len(scores))
    assert summary["edges"][0] == 0 and summary["edges"][-1] == 0.15
    assert len(summary["counts"]) == 25 and sum(summary["counts"]) == 5
    assert summary["mean"] == pytest.approx(0.064)
    assert summary["quantiles"]["p50"] == pytest.approx(0.03, abs=0.002)


def test_it_refreshes_the_score_statistics_when_done(
    trained, marketer, term_deposit, django_capture_on_commit_callbacks, monkeypatch
):
    # Left with the statistics of an empty table, freezing over the scores took minutes.
    analyzed = []
    real = scoring_service.analyze
    monkeypatch.setattr(scoring_service, "analyze", lambda *m: (analyzed.append(m), real(*m)))
    make_click_customers(20, term_deposit, purposes=(Purpose.PROFILING,))

    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    assert analyzed == [(CustomerScore,)]
    if connection.vendor == "postgresql":
        assert table_size(CustomerScore) == TableSize(rows=20, approximate=True)
