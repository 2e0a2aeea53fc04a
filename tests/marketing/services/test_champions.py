import pytest
from django.test import Client
from django.urls import reverse

from marketing.models import AuditEvent, ModelPromotion, ScoringRun, TrainingRun
from marketing.selectors.champions import champion_for, use_case_promotions
from marketing.services.champions import PromotionError, model_promote, model_rollback
from tests.factories import make_offer
from tests.marketing.training_helpers import finished_run

pytestmark = pytest.mark.django_db


def test_promotion_and_rollback_change_the_model_in_use_and_are_audited(marketer, term_deposit):
    spring = finished_run(term_deposit, name="spring", by=marketer)
    autumn = finished_run(term_deposit, name="autumn", by=marketer)
    assert champion_for(term_deposit, "conversion") is None

    model_promote(run=spring, by=marketer)
    assert champion_for(term_deposit, "conversion") == spring
    promoted = model_promote(run=autumn, by=marketer, note="newer responses")
    assert champion_for(term_deposit, "conversion") == autumn
    assert promoted.previous == spring and promoted.note == "newer responses"
    assert promoted.figures["previous"]["run"] == spring.pk
    assert promoted.figures["champion"]["roc_auc"] == autumn.metrics["bert"]["roc_auc"]

    back = model_rollback(offer=term_deposit, target="conversion", by=marketer)
    assert back.action == ModelPromotion.Action.ROLLBACK
    assert champion_for(term_deposit, "conversion") == spring
    # Another offer and the other target are use cases of their own.
    assert champion_for(make_offer("OTHER"), "conversion") is None
    assert champion_for(term_deposit, "click") is None

    events = AuditEvent.objects.filter(action=AuditEvent.Action.PROMOTION).order_by("at", "id")
    assert [(e.target_ref, e.details["action"], e.actor) for e in events] == [
        (str(spring.pk), "promote", marketer),
        (str(autumn.pk), "promote", marketer),
        (str(spring.pk), "rollback", marketer),
    ]
    assert [p.action for p in use_case_promotions(term_deposit, "conversion")] == [
        "rollback",
        "promote",
        "promote",
    ]


def test_only_a_usable_model_goes_in_use(marketer, term_deposit):
    unfinished = finished_run(term_deposit, model_id="", name="half")
    flagged = finished_run(term_deposit, flagged_erasure=True, name="flagged")
    run = finished_run(term_deposit, name="good")
    with pytest.raises(PromotionError, match="finished run"):
        model_promote(run=unfinished, by=marketer)
    with pytest.raises(PromotionError, match="erased"):
        model_promote(run=flagged, by=marketer)
    with pytest.raises(PromotionError, match="no earlier model"):
        model_rollback(offer=term_deposit, target="conversion", by=marketer)
    model_promote(run=run, by=marketer)
    with pytest.raises(PromotionError, match="already the model in use"):
        model_promote(run=run, by=marketer)
    with pytest.raises(PromotionError, match="no earlier model"):
        model_rollback(offer=term_deposit, target="conversion", by=marketer)
    assert ModelPromotion.objects.count() == 1


def test_scoring_by_use_case_uses_the_champion(marketer_client, marketer, term_deposit):
    spring = finished_run(term_deposit, name="spring")
    autumn = finished_run(term_deposit, name="autumn")
    body = {"use_case_offer": term_deposit.pk, "use_case_target": "conversion"}

    refused = marketer_client.post("/api/scoring-runs/", body, content_type="application/json")
    assert refused.status_code == 400
    assert "No model is in use" in refused.json()["detail"]

    model_promote(run=spring, by=marketer)
    model_promote(run=autumn, by=marketer)
    first = marketer_client.post("/api/scoring-runs/", body, content_type="application/json")
    model_rollback(offer=term_deposit, target="conversion", by=marketer)
    second = marketer_client.post("/api/scoring-runs/", body, content_type="application/json")

    assert first.status_code == second.status_code == 201
    assert ScoringRun.objects.get(pk=first.json()["id"]).training_run == autumn
    assert ScoringRun.objects.get(pk=second.json()["id"]).training_run == spring


def test_the_pages_promote_roll_back_and_show_the_history(marketer, viewer, term_deposit):
    marketer_client, viewer_client = Client(), Client()
    marketer_client.force_login(marketer)
    viewer_client.force_login(viewer)
    spring = finished_run(term_deposit, name="spring", by=marketer)
    autumn = finished_run(term_deposit, name="autumn", by=marketer)

    page = viewer_client.get(reverse("model-detail", args=[spring.pk])).content.decode()
    assert "No model is in use for this offer and target yet" in page
    assert 'data-testid="promote-button"' not in page  # viewers read only
    assert viewer_client.post(reverse("model-promote", args=[spring.pk])).status_code == 403

    marketer_client.post(reverse("model-promote", args=[spring.pk]), {"note": "first"})
    marketer_client.post(reverse("model-promote", args=[autumn.pk]))
    page = marketer_client.get(reverse("model-detail", args=[autumn.pk])).content.decode()
    assert 'data-testid="rollback-button"' in page
    assert "Roll back to “spring”" in page
    listing = marketer_client.get(reverse("model-list")).content.decode()
    assert listing.count('data-testid="in-use"') == 1

    response = marketer_client.post(reverse("model-rollback", args=[autumn.pk]), {"note": "oops"})
    assert response.status_code == 302 and response.url == reverse("model-detail", args=[spring.pk])
    assert champion_for(term_deposit, "conversion") == spring

    history = viewer_client.get(reverse("model-history", args=[autumn.pk]))
    text = history.content.decode()
    assert history.status_code == 200
    assert 'data-plotly="versions-chart-data"' in text
    assert text.count("<tr>") >= 2 + 3  # two versions, three promotions (plus headers)
    assert "oops" in text and "first" in text


def test_the_run_page_starts_a_re_training_either_way_and_shows_the_lineage(
    marketer_client, marketer, term_deposit, django_capture_on_commit_callbacks
):
    run = finished_run(term_deposit, name="spring", by=marketer)
    page = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert 'data-testid="retrain-incremental"' in page and 'data-testid="retrain-scratch"' in page

    with django_capture_on_commit_callbacks(execute=False):
        marketer_client.post(reverse("model-retrain", args=[run.pk]), {"start": "incremental"})
    child = TrainingRun.objects.get(parent=run)
    assert (child.start, child.name) == ("incremental", "spring · continued")
    child.left_out_since_parent = {"erased": 2, "withdrawn": 3}
    child.save()
    page = marketer_client.get(reverse("model-detail", args=[child.pk])).content.decode()
    assert (
        'data-testid="lineage"' in page and "2 erased, 3 without a valid training consent" in page
    )

    TrainingRun.objects.filter(pk=run.pk).update(flagged_erasure=True)
    page = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert 'data-testid="retrain-incremental"' not in page
    response = marketer_client.post(
        reverse("model-retrain", args=[run.pk]), {"start": "incremental"}
    )
    assert TrainingRun.objects.filter(parent=run).count() == 1
    assert response.status_code == 302


def test_campaign_forms_offer_the_scores_of_the_model_in_use_first(marketer, term_deposit):
    from marketing.views.audiences import AudienceForm
    from marketing.views.plans import PlanForm
    from tests.factories import make_customer
    from tests.marketing.training_helpers import finished_scoring

    customers = [make_customer(f"F{i}") for i in range(3)]
    spring = finished_run(term_deposit, name="spring")
    autumn = finished_run(term_deposit, name="autumn")
    spring_scores = finished_scoring(spring, customers)
    autumn_scores = finished_scoring(autumn, customers)  # the newest

    def first_choices():
        plan = list(PlanForm().fields["scoring_run"].queryset)
        audience = list(AudienceForm().fields["scoring_run"].queryset)
        return plan[0], audience[0], PlanForm().fields["scoring_run"].label_from_instance(plan[0])

    assert first_choices()[:2] == (autumn_scores, autumn_scores)
    model_promote(run=spring, by=marketer)
    plan_first, audience_first, label = first_choices()
    assert plan_first == audience_first == spring_scores and label.endswith("model in use")
    model_promote(run=autumn, by=marketer)
    assert first_choices()[:2] == (autumn_scores, autumn_scores)
    model_rollback(offer=term_deposit, target="conversion", by=marketer)
    assert first_choices()[:2] == (spring_scores, spring_scores)
