import json
import math

import numpy as np
import pandas as pd
import pytest

from recengine.diversity import OfferSimilarity, RerankConfig, click_matrix, recommend
from recengine.list_metrics import (
    catalogue_coverage,
    diversity_curve,
    evaluate,
    gini,
    intra_list_diversity,
    novelty,
    offer_popularity,
    ranking_metrics,
)
from tests.recengine.conftest import two_genre_catalogue


def test_it_computes_precision_recall_and_ndcg_by_hand():
    positions = np.array([[0, 1, 2], [3, 2, -1]])
    clicks = np.zeros((2, 5), dtype=bool)
    clicks[0, [1, 3]] = True  # one of two clicks listed, at rank 2
    clicks[1, 3] = True  # the only click listed first
    result = ranking_metrics(positions, clicks)
    ndcg_first = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert result["ndcg"] == pytest.approx((ndcg_first + 1.0) / 2)
    assert result["precision"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert result["recall"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["customers_evaluated"] == 2


def test_it_leaves_customers_without_held_out_clicks_out_of_accuracy():
    positions = np.array([[0, 1], [0, 1]])
    clicks = np.array([[True, False, False], [False, False, False]])
    result = ranking_metrics(positions, clicks)
    assert result["customers_evaluated"] == 1
    assert result["precision"] == pytest.approx(0.5)


def test_it_computes_jaccard_similarity_and_intra_list_diversity_by_hand():
    similarity = OfferSimilarity.from_categories(["a", "a b", ["c"]])
    assert similarity.between(0, 1) == pytest.approx(0.5)
    assert similarity.between(1, 2) == 0.0
    positions = np.array([[0, 1, 2], [0, 1, -1], [2, -1, -1]])  # a one-offer list is skipped
    expected = ((0.5 + 1 + 1) / 3 + 0.5) / 2
    assert intra_list_diversity(positions, similarity) == pytest.approx(expected)


def test_it_computes_gini_of_exposure_by_hand():
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # one offer takes all
    assert gini(np.array([3, 3, 3])) == 0.0
    # Mean absolute difference over all ordered pairs / (2 * mean): 8 / 9 / 4.
    assert gini(np.array([1, 2, 3])) == pytest.approx(2 / 9)


def test_it_computes_coverage_and_novelty_by_hand():
    positions = np.array([[0, 1], [1, -1]])
    assert catalogue_coverage(positions, 4) == 0.5
    assert novelty(positions, np.array([0.5, 0.25, 1.0, 1.0])) == pytest.approx((1 + 2 + 2) / 3)


def test_it_smooths_popularity_so_untaken_offers_have_finite_novelty():
    taken = np.array([[True, False], [True, False], [False, False]])
    np.testing.assert_allclose(offer_popularity(taken), [3 / 4, 1 / 4])


def test_it_raises_diversity_as_lambda_grows():
    scores, similarity = two_genre_catalogue()
    clicks = np.zeros((scores.n_customers, scores.n_offers), dtype=bool)
    clicks[:, 0] = True
    curve = diversity_curve(
        scores, similarity, clicks, lambdas=(0.3, 0.6, 0.9), config=RerankConfig(k=4)
    )
    ild = curve.to_frame()["intra_list_diversity"].tolist()
    # Rescaled, the second drama is worth 0.975 and the first comedy 0.1: at lambda 0.3 the
    # penalty (0.3) does not bridge the gap, from 0.6 on a comedy takes the second slot, and
    # once both genres are listed every offer is penalised alike: drama, comedy, drama, drama.
    assert ild == pytest.approx([0.0, 0.0, 0.5, 0.5])
    trade = curve.tradeoff()
    assert trade.diversity_monotone and not trade.diversity_rises  # lambda 0.3 changed nothing
    assert trade.meets_target  # offer 0, the only click, stays first at every lambda
    assert trade.best_lambda == 0.6  # the smallest lambda reaching the most diversity
    higher = diversity_curve(
        scores, similarity, clicks, lambdas=(0.6, 0.9), config=RerankConfig(k=4)
    )
    assert higher.tradeoff().diversity_rises


def test_it_reports_no_target_met_when_diversity_costs_too_much_accuracy():
    scores, similarity = two_genre_catalogue()
    clicks = np.zeros((scores.n_customers, scores.n_offers), dtype=bool)
    clicks[:, 1:4] = True  # the clicked dramas are the ones MMR pushes out
    curve = diversity_curve(scores, similarity, clicks, lambdas=(0.6,), config=RerankConfig(k=4))
    trade = curve.tradeoff(min_diversity_gain=0.2, max_accuracy_loss=0.05)
    assert trade.accuracy == "ndcg"
    assert trade.changes[0]["accuracy_loss"] > 0.05
    assert not trade.meets_target and trade.best_lambda is None


def test_it_weighs_diversity_against_the_mean_score_without_held_out_clicks():
    scores, similarity = two_genre_catalogue()
    curve = diversity_curve(scores, similarity, lambdas=(0.6,), config=RerankConfig(k=4))
    base, diverse = curve.points
    assert base.metrics.ndcg is None and base.metrics.customers_evaluated == 0
    assert base.metrics.mean_score == pytest.approx(np.mean([0.9, 0.89, 0.88, 0.87]))
    trade = curve.tradeoff()
    assert trade.accuracy == "mean_score"
    expected_loss = (base.metrics.mean_score - diverse.metrics.mean_score) / base.metrics.mean_score
    assert expected_loss > 0
    assert trade.changes[0]["accuracy_loss"] == pytest.approx(expected_loss)
    assert trade.changes[0]["diversity_gain"] is None  # four dramas: baseline ILD is 0
    assert trade.diversity_rises


def test_it_returns_json_ready_results():
    scores, similarity = two_genre_catalogue()
    clicks = click_matrix(
        pd.DataFrame({"customer": [0], "offer": [5]}), scores.customers, scores.offers
    )
    recs = recommend(scores, RerankConfig(k=3, mmr_lambda=0.5), similarity)
    metrics = evaluate(recs, clicks, similarity, offer_popularity(clicks))
    curve = diversity_curve(scores, similarity, clicks, lambdas=(0.5,), config=RerankConfig(k=3))
    for result in (recs.to_dict(), metrics.to_dict(), curve.to_dict(), curve.tradeoff().to_dict()):
        assert json.loads(json.dumps(result)) == result


def test_it_needs_intra_list_diversity_at_every_lambda_to_weigh_the_tradeoff():
    scores, similarity = two_genre_catalogue()
    curve = diversity_curve(scores, similarity, lambdas=(0.6,), config=RerankConfig(k=4))
    curve.points[1].metrics.intra_list_diversity = None
    with pytest.raises(ValueError, match="intra-list diversity at every lambda"):
        curve.tradeoff()
