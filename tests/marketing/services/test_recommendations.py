import pytest

from marketing.models import (
    CustomerRecommendation,
    Job,
    Purpose,
    RecommendationRun,
)
from marketing.services import recommendations as service
from marketing.services.jobs import JobCancelled, run_job
from marketing.services.recommendations import (
    LAMBDA_GRID,
    RecommendationSetupError,
    recommendation_run_create,
)
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    recommend,
    record_clicks,
)
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = pytest.mark.django_db


def lists_of(run: RecommendationRun) -> dict[int, list[str]]:
    lists: dict[int, list[str]] = {}
    for item in run.items.select_related("offer").order_by("customer_id", "rank"):
        lists.setdefault(item.customer_id, []).append(item.offer.external_id)
    return lists


def test_it_lists_the_k_best_scored_offers_without_diversity(marketer):
    offers = make_catalogue()
    customers = make_customers(6)
    run = recommend(multi_offer_scoring(customers, offers), k=3, by=marketer)
    lists = lists_of(run)
    assert set(lists) == {c.pk for c in customers}
    assert all(codes == ["SAVE-1", "SAVE-2", "SAVE-3"] for codes in lists.values())
    ranks = sorted(run.items.filter(customer=customers[0]).values_list("rank", flat=True))
    assert ranks == [1, 2, 3]
    assert run.result["metrics"]["intra_list_diversity"] == pytest.approx(0.0)
    assert run.result["metrics"]["coverage"] == pytest.approx(3 / 5)


def test_it_raises_intra_list_diversity_when_diversity_is_weighted():
    offers = make_catalogue()
    customers = make_customers(4)
    scoring = multi_offer_scoring(customers, offers)
    plain = recommend(scoring, k=2, diversity=0.0)
    varied = recommend(scoring, k=2, diversity=0.6)
    assert all(codes == ["SAVE-1", "SAVE-2"] for codes in lists_of(plain).values())
    # The second slot goes to a loan: it shares no category with the first offer.
    assert all(codes == ["SAVE-1", "LOAN-1"] for codes in lists_of(varied).values())
    assert (
        varied.result["metrics"]["intra_list_diversity"]
        > plain.result["metrics"]["intra_list_diversity"]
    )


def test_it_gives_no_offer_to_more_customers_than_its_cap():
    offers = make_catalogue()
    customers = make_customers(6)
    run = recommend(multi_offer_scoring(customers, offers), k=2, offer_cap=3)
    per_offer = {}
    for item in run.items.all():
        per_offer[item.offer_id] = per_offer.get(item.offer_id, 0) + 1
    assert max(per_offer.values()) <= 3
    assert sum(per_offer.values()) == 12  # five offers x 3 places leave room for everyone
    assert {row["customers"] for row in run.result["exposure"] if row["customers"]} <= {1, 2, 3}


def test_it_leaves_out_customers_whose_profiling_consent_was_withdrawn():
    offers = make_catalogue()
    customers = make_customers(5)
    scoring = multi_offer_scoring(customers, offers)
    record_consent(customers[0], Purpose.PROFILING, "withdrawn", days_ago=1)
    run = recommend(scoring)
    assert customers[0].pk not in lists_of(run)
    assert len(lists_of(run)) == 4
    assert run.result["customers"] == 4
    assert run.result["customers_excluded"]["withdrawn"] == 1


def test_it_refuses_a_single_offer_scoring_run_and_points_to_audience_diversity():
    offer = make_catalogue()[0]
    scoring = finished_scoring(finished_run(offer), make_customers(3))
    with pytest.raises(RecommendationSetupError, match="Audience diversity"):
        recommendation_run_create(scoring_run=scoring, k=2, diversity=0.2, by=None)
    assert not RecommendationRun.objects.exists()


@pytest.mark.parametrize(("k", "diversity", "cap"), [(1, 0.2, None), (3, 1.5, None), (3, 0.2, 0)])
def test_it_refuses_settings_out_of_range(k, diversity, cap):
    scoring = multi_offer_scoring(make_customers(2), make_catalogue())
    with pytest.raises(RecommendationSetupError):
        recommendation_run_create(
            scoring_run=scoring, k=k, diversity=diversity, offer_cap=cap, by=None
        )


def test_it_measures_accuracy_on_clicks_after_the_training_cutoff():
    offers = make_catalogue()
    customers = make_customers(4)
    scoring = multi_offer_scoring(customers, offers, trained_days_ago=5)
    # Before the cut-off everyone clicked a loan (the model saw that); afterwards half of the
    # customers clicked the top savings offer.
    record_clicks([(c, offers[3]) for c in customers], days_ago=10)
    record_clicks([(c, offers[0]) for c in customers[:2]], days_ago=1)
    run = recommend(scoring, k=2, diversity=0.0)
    result = run.result
    assert result["accuracy_basis"] == "held_out"
    assert result["evaluation_clicks"] == 2
    metrics = result["metrics"]
    assert metrics["customers_evaluated"] == 2
    assert metrics["precision"] == pytest.approx(0.5)  # one of two listed offers clicked
    assert metrics["recall"] == pytest.approx(1.0)
    assert metrics["ndcg"] == pytest.approx(1.0)  # and it is listed first


def test_it_falls_back_to_every_click_and_says_so_when_none_is_held_out():
    offers = make_catalogue()
    customers = make_customers(4)
    scoring = multi_offer_scoring(customers, offers, trained_days_ago=5)
    record_clicks([(c, offers[3]) for c in customers], days_ago=10)
    run = recommend(scoring, k=2)
    assert run.result["accuracy_basis"] == "all_clicks"
    assert "every recorded click" in run.result["accuracy_basis_text"]
    assert run.result["metrics"]["precision"] == pytest.approx(0.0)  # listed savings, not loans


def test_it_reports_the_mean_score_when_no_click_is_recorded():
    run = recommend(multi_offer_scoring(make_customers(3), make_catalogue()), k=2)
    assert run.result["accuracy_basis"] == "none"
    assert run.result["metrics"]["ndcg"] is None
    assert run.result["metrics"]["mean_score"] == pytest.approx(0.889, abs=0.002)


def test_it_measures_the_curve_over_the_grid_and_the_chosen_weight():
    run = recommend(multi_offer_scoring(make_customers(3), make_catalogue()), k=2, diversity=0.45)
    lambdas = [point["mmr_lambda"] for point in run.result["curve"]]
    assert lambdas == sorted({*LAMBDA_GRID, 0.45})
    ilds = [point["intra_list_diversity"] for point in run.result["curve"]]
    assert ilds[0] == pytest.approx(0.0) and ilds[-1] > 0
    assert run.result["tradeoff"]["accuracy"] == "mean_score"


def test_it_writes_nothing_when_cancelled_while_saving(monkeypatch):
    monkeypatch.setattr(service, "WRITE_CHUNK", 3)
    scoring = multi_offer_scoring(make_customers(5), make_catalogue())
    run = recommendation_run_create(scoring_run=scoring, k=2, diversity=0.0, by=None)
    run.refresh_from_db()
    calls = []

    def progress(percent: float, message: str = "") -> None:
        if message.startswith("Saved"):
            calls.append(message)
            if len(calls) == 2:  # after two of four chunks were written
                raise JobCancelled()

    with pytest.raises(JobCancelled):
        service.run_recommendations(run.job, progress)
    assert len(calls) == 2
    assert not CustomerRecommendation.objects.filter(recommendation_run=run).exists()


def test_it_fails_the_job_with_a_clear_message_when_nobody_has_consent():
    offers = make_catalogue()
    customers = make_customers(2, purposes=())
    scoring = multi_offer_scoring(customers, offers)
    run = recommendation_run_create(scoring_run=scoring, k=2, diversity=0.0, by=None)
    job = run_job(run.job.pk)
    assert job.status == Job.Status.FAILED
    assert "profiling consent" in job.message


def test_it_warns_when_no_offer_has_a_category():
    offers = make_catalogue()
    for offer in offers:
        offer.category = ""
        offer.save()
    run = recommend(multi_offer_scoring(make_customers(2), offers), k=2, diversity=0.5)
    assert any("No offer has a category" in w for w in run.result["warnings"])


def test_it_compares_offers_by_their_text_with_the_models_encoder(tiny_bert_path):
    from recengine.diversity import OfferSimilarity
    from recengine.embeddings import offer_text_embeddings

    offers = make_catalogue()
    for offer in offers:
        offer.category = ""  # the text alone tells them apart
        offer.description = f"{offer.title} for customers who like {offer.external_id[:4]}"
        offer.save()
    customers = make_customers(3)
    scoring = multi_offer_scoring(customers, offers)
    scoring.training_run.base_model = tiny_bert_path
    scoring.training_run.save()
    run = recommend(scoring, k=2, diversity=0.0, similarity="text")
    assert run.result["similarity"]["kind"] == "text"
    assert not any("category" in warning for warning in run.result["warnings"])
    # Lists at lambda 0 are each customer's two best offers: SAVE-1 and SAVE-2.
    vectors = offer_text_embeddings([service.offer_text(o) for o in offers[:2]], tiny_bert_path)
    expected = 1 - OfferSimilarity.from_embeddings(vectors).between(0, 1)
    assert run.result["metrics"]["intra_list_diversity"] == pytest.approx(expected, abs=1e-5)


def test_it_refuses_an_unknown_similarity():
    scoring = multi_offer_scoring(make_customers(2), make_catalogue())
    with pytest.raises(RecommendationSetupError, match="categories or text"):
        recommendation_run_create(
            scoring_run=scoring, k=2, diversity=0.1, similarity="colour", by=None
        )
