"""The scorer a scoring run uses: training measures the served model, its int8 copy and the
distilled fast path on the validation rows and keeps the student with the model; a scoring
run scores every consented customer once with the scorer chosen."""

import pytest
from django.urls import reverse

from marketing.models import CustomerScore, Job, Purpose, ScoringRun
from marketing.selectors.consent import customers_with_consent
from marketing.services.scorers import STUDENT_PART, available_scorers
from marketing.services.scoring import ScoringSetupError, scoring_run_create
from recengine.registry import ModelRegistry
from tests.factories import make_customer
from tests.marketing.explain_helpers import train_tiny_run
from tests.marketing.training_helpers import add_consent, finished_run

pytestmark = pytest.mark.django_db


def test_training_measures_each_scorer_and_scoring_uses_the_one_chosen(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    settings,
    django_capture_on_commit_callbacks,
):
    run = train_tiny_run(django_capture_on_commit_callbacks, marketer, term_deposit)
    # Customers the model never learned from (no response yet): the scorer chosen scores
    # them; those it learned from are scored by the cross-fitted baselines whatever it is.
    new = [make_customer(age=30 + i, job="student", balance=0.1 * i) for i in range(12)]
    add_consent(new, Purpose.PROFILING)
    consented = list(customers_with_consent(Purpose.PROFILING))
    assert 0 < len(consented)

    scorers = run.metrics["scorers"]
    assert set(scorers) == {"served", "int8", "fast"}
    for figures in scorers.values():
        assert figures["rows_per_s"] > 0
        assert 0 <= figures["val_auc"] <= 1
    student = ModelRegistry(settings.MODEL_REGISTRY_DIR).load_part(run.model_id, STUDENT_PART)
    assert student.columns_  # the profile columns it reads

    scores = {}
    for scorer in ("served", "int8", "fast"):
        with django_capture_on_commit_callbacks(execute=True):
            scoring = scoring_run_create(training_run=run, segment=None, by=marketer, scorer=scorer)
        scoring.refresh_from_db()
        assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
        assert scoring.scorer == scorer
        rows = dict(
            CustomerScore.objects.filter(scoring_run=scoring).values_list("customer_id", "score")
        )
        assert sorted(rows) == sorted(c.pk for c in consented)
        assert all(0 <= s <= 1 for s in rows.values())
        scores[scorer] = rows
    fresh = [c.pk for c in new]
    # The student's own scores, not a copy.
    assert [scores["fast"][pk] for pk in fresh] != [scores["served"][pk] for pk in fresh]
    learned = [pk for pk in scores["served"] if pk not in fresh]
    assert learned and all(scores["fast"][pk] == scores["served"][pk] for pk in learned)


def test_a_model_trained_before_the_choice_offers_the_served_model_only(marketer, term_deposit):
    run = finished_run(term_deposit, model_id="older-model", by=marketer)

    assert list(available_scorers(run.metrics)) == ["served"]
    with pytest.raises(ScoringSetupError, match="cannot score with 'fast'"):
        scoring_run_create(training_run=run, segment=None, by=marketer, scorer="fast")
    assert not ScoringRun.objects.exists()


def test_the_run_page_shows_each_scorers_auc_and_expected_time(
    marketer_client, marketer, term_deposit
):
    from marketing.models import OverviewFigures

    run = finished_run(term_deposit, model_id="m", by=marketer)
    run.metrics["scorers"] = {
        "served": {"val_auc": 0.791, "rows_per_s": 100.0},
        "int8": {"val_auc": 0.788, "rows_per_s": 200.0},
        "fast": {"val_auc": 0.774, "rows_per_s": 50000.0},
    }
    run.save(update_fields=["metrics"])
    OverviewFigures.objects.create(figures={"customers": 2, "consent": {"profiling": 600_000}})

    body = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()

    assert '<option value="fast">Fast path (distilled)</option>' in body
    assert "0.774" in body and "about 1.7 h" in body and "under a minute" in body
    assert "600,000 rows" in body


def test_the_api_takes_the_scorer_and_refuses_one_the_model_lacks(marketer_client, marketer):
    run = finished_run(None, model_id="older-model", by=marketer)

    unknown = marketer_client.post(
        "/api/scoring-runs/",
        {"training_run": run.pk, "scorer": "turbo"},
        content_type="application/json",
    )
    lacking = marketer_client.post(
        "/api/scoring-runs/",
        {"training_run": run.pk, "scorer": "int8"},
        content_type="application/json",
    )

    assert unknown.status_code == 400 and "scorer" in unknown.json()
    assert lacking.status_code == 400
    assert lacking.json()["scorer"] == ["Choose one of served."]
