import dataclasses

import numpy as np
import pandas as pd
import pytest

from recengine import diversity
from recengine.diversity import (
    OfferSimilarity,
    RerankConfig,
    ScoreMatrix,
    click_matrix,
    recommend,
    top_k,
)
from recengine.list_metrics import diversity_curve
from tests.recengine.conftest import random_scores


def test_it_computes_cosine_similarity_from_embeddings():
    similarity = OfferSimilarity.from_embeddings(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    assert similarity.between(0, 1) == pytest.approx(1.0)
    assert similarity.between(0, 2) == pytest.approx(0.0)


def test_it_gives_the_same_similarities_without_the_full_matrix(monkeypatch):
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(12, 4))
    with_matrix = OfferSimilarity.from_embeddings(embeddings)
    monkeypatch.setattr(diversity, "FULL_MATRIX_OFFERS", 0)
    monkeypatch.setattr(diversity, "CHUNK_ELEMENTS", 8)  # forces many small chunks
    on_demand = OfferSimilarity.from_embeddings(embeddings)
    offers = rng.integers(0, 12, 7)
    candidates = rng.integers(0, 12, (7, 5))
    np.testing.assert_allclose(
        on_demand.to_many(offers, candidates),
        with_matrix.to_many(offers, candidates),
        atol=1e-6,
    )


def test_it_lists_the_best_scored_offers_when_lambda_is_zero():
    scores = random_scores()
    filled = np.where(np.isnan(scores.values), -np.inf, scores.values)
    expected = np.argsort(-filled, axis=1, kind="stable")[:, :5]
    recs = recommend(scores, RerankConfig(k=5, mmr_lambda=0.0))
    np.testing.assert_array_equal(recs.positions, expected)
    np.testing.assert_array_equal(top_k(scores, 5), expected)


def test_it_gives_pure_top_k_from_the_greedy_path_at_lambda_zero():
    scores = random_scores()
    similarity = OfferSimilarity.from_embeddings(np.random.default_rng(2).normal(size=(30, 3)))
    # A cap no offer can reach sends the lists through the greedy slot-by-slot path.
    config = RerankConfig(k=5, mmr_lambda=0.0, offer_cap=scores.n_customers, pool_size=12)
    recs = recommend(scores, config, similarity)
    np.testing.assert_array_equal(recs.positions, top_k(scores, 5))


def test_it_marks_slots_empty_when_a_customer_has_too_few_candidates():
    values = np.array([[0.3, np.nan, 0.1], [np.nan, np.nan, np.nan]])
    recs = recommend(ScoreMatrix.from_array(values), RerankConfig(k=3))
    np.testing.assert_array_equal(recs.positions, [[0, 2, -1], [-1, -1, -1]])
    assert np.isnan(recs.scores[0, 2])


def test_it_keeps_each_offer_within_its_cap():
    scores = random_scores(n_customers=50, n_offers=8, seed=3)
    recs = recommend(scores, RerankConfig(k=3, offer_cap=20))
    assert recs.exposure().max() <= 20
    candidates = (~np.isnan(scores.values)).sum(axis=1)
    # 8 offers x 20 places cover 150 slots; only customers short of candidates have gaps.
    assert ((recs.positions >= 0).sum(axis=1) == np.minimum(candidates, 3)).all()


def test_it_gives_a_capped_offer_to_the_customers_who_value_it_most():
    values = np.zeros((6, 2))
    values[:, 0] = [0.5, 0.9, 0.6, 0.95, 0.7, 0.8]
    recs = recommend(ScoreMatrix.from_array(values), RerankConfig(k=1, offer_cap=2, rescale=False))
    assert set(np.flatnonzero(recs.positions[:, 0] == 0)) == {1, 3}
    assert recs.exposure().tolist() == [2, 2]
    assert (recs.positions[[0, 2, 4, 5], 0] >= 0).sum() == 2  # offer 1 full after two


def test_it_needs_a_similarity_for_lambda_above_zero():
    with pytest.raises(ValueError, match="OfferSimilarity"):
        recommend(random_scores(), RerankConfig(mmr_lambda=0.5))


def test_it_builds_scores_from_a_long_frame_and_lists_offer_ids():
    frame = pd.DataFrame(
        {
            "customer": ["ann", "ann", "bob", "bob"],
            "offer": ["tv", "radio", "tv", "phone"],
            "score": [0.2, 0.7, 0.9, 0.1],
        }
    )
    scores = ScoreMatrix.from_frame(frame)
    assert np.isnan(scores.values[0, list(scores.offers).index("phone")])
    listed = recommend(scores, RerankConfig(k=2, pool_size=2)).to_frame()
    assert listed.query("customer == 'ann'")["offer"].tolist() == ["radio", "tv"]
    assert listed.query("customer == 'bob'")["offer"].tolist() == ["tv", "phone"]


def test_it_names_row_and_column_of_a_bad_score():
    frame = pd.DataFrame({"customer": [1, 2], "offer": ["a", "a"], "score": [0.5, "high"]})
    with pytest.raises(ValueError, match=r"Row 1, column 'score'"):
        ScoreMatrix.from_frame(frame)


def test_it_names_the_row_of_a_repeated_pair():
    frame = pd.DataFrame({"customer": [1, 1], "offer": ["a", "a"], "score": [0.5, 0.4]})
    with pytest.raises(ValueError, match=r"Row 1: customer 1 and offer 'a'"):
        ScoreMatrix.from_frame(frame)


def test_it_names_the_row_of_a_held_out_click_on_an_unknown_offer():
    frame = pd.DataFrame({"customer": [1, 2], "offer": ["a", "z"]})
    with pytest.raises(ValueError, match=r"Row 1, column 'offer': offer 'z'"):
        click_matrix(frame, [1, 2], ["a", "b"])


def test_it_penalises_the_closest_or_the_mean_similarity_as_configured():
    # A drama, a comedy, another drama, and a drama-comedy, in falling score.
    similarity = OfferSimilarity.from_categories(["drama", "comedy", "drama", "drama comedy"])
    scores = ScoreMatrix.from_array(np.array([[1.0, 0.95, 0.9, 0.85]]))
    config = RerankConfig(k=3, mmr_lambda=0.5, rescale=False)
    # After drama + comedy, the second drama is identical to one listed offer (max 1, mean
    # 0.5); the drama-comedy half-matches both (max 0.5, mean 0.5).
    closest = recommend(scores, config, similarity)
    mean = recommend(scores, dataclasses.replace(config, penalty="mean"), similarity)
    assert closest.positions.tolist() == [[0, 1, 3]]
    assert mean.positions.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("method", ["mmr", "dpp"])
def test_it_weighs_relevance_by_the_slot_discount_when_asked(method):
    # A drama, a second drama scored almost as high, and a comedy scored lower.
    similarity = OfferSimilarity.from_categories(["drama", "drama", "comedy"])
    scores = ScoreMatrix.from_array(np.array([[1.0, 0.9, 0.5]]))
    lam = 0.22 if method == "mmr" else 0.04
    flat = RerankConfig(k=2, mmr_lambda=lam, rescale=False, method=method)
    discounted = dataclasses.replace(flat, discount=True)
    # Slot 2: the second drama's lead in relevance, 0.4 x (1 - lambda), outweighs its
    # diversity term (MMR: lambda x similarity 1; DPP: lambda x log of the jitter) at full
    # weight but not at slot 2's discount, 1 / log2(3) = 0.63.
    assert recommend(scores, flat, similarity).positions.tolist() == [[0, 1]]
    assert recommend(scores, discounted, similarity).positions.tolist() == [[0, 2]]
    # The first slot is relevance alone either way, and lambda 0 stays pure top-k.
    top = recommend(scores, dataclasses.replace(discounted, mmr_lambda=0.0), similarity)
    assert top.positions.tolist() == [[0, 1]]


def dpp_greedy_by_determinants(
    relevance: np.ndarray, kernel: np.ndarray, k: int, lam: float
) -> list[int]:
    """The DPP's greedy list from whole determinants: each step adds the offer maximising
    (1 - lambda) * relevance + lambda * log(det S[list + offer] / det S[list])."""
    chosen: list[int] = []
    for _ in range(k):
        _, before = np.linalg.slogdet(kernel[np.ix_(chosen, chosen)]) if chosen else (1, 0.0)
        gains = np.full(len(relevance), -np.inf)
        for i in set(range(len(relevance))) - set(chosen):
            _, after = np.linalg.slogdet(kernel[np.ix_(chosen + [i], chosen + [i])])
            gains[i] = (1 - lam) * relevance[i] + lam * (after - before)
        chosen.append(int(gains.argmax()))
    return chosen


def test_it_fills_the_dpp_list_by_the_largest_determinant_gain():
    rng = np.random.default_rng(5)
    # 3-D embeddings for 12 offers: from the fourth pick on, every offer is a combination of
    # the listed ones, so the jitter on S's diagonal decides between near-zero residuals.
    embeddings = rng.normal(size=(12, 3))
    similarity = OfferSimilarity.from_embeddings(embeddings)
    values = rng.random((6, 12))
    config = RerankConfig(k=6, mmr_lambda=0.4, pool_size=None, rescale=False, method="dpp")
    recs = recommend(ScoreMatrix.from_array(values), config, similarity)
    kernel = similarity.matrix().astype(np.float64) + diversity.DPP_JITTER * np.eye(12)
    for row in range(6):
        expected = dpp_greedy_by_determinants(values[row], kernel, 6, 0.4)
        assert recs.positions[row].tolist() == expected


def test_it_avoids_an_offer_the_dpp_list_already_spans_where_mmr_takes_it():
    # a and b are orthogonal; c lies between them (in their span), d half outside it.
    embeddings = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0.8, 0, 0.6]], dtype=float)
    similarity = OfferSimilarity.from_embeddings(embeddings)
    scores = ScoreMatrix.from_array(np.array([[1.0, 0.99, 0.9, 0.9]]))
    config = RerankConfig(k=3, mmr_lambda=0.5, rescale=False)
    # MMR (closest listed offer): c is 0.71 like a and b, d 0.8 like a, so c comes third.
    mmr = recommend(scores, config, similarity)
    # The DPP: a, b and c span a plane of volume ~0, while d keeps 0.36 of its own.
    dpp = recommend(scores, dataclasses.replace(config, method="dpp"), similarity)
    assert mmr.positions.tolist() == [[0, 1, 2]]
    assert dpp.positions.tolist() == [[0, 1, 3]]


def test_it_gives_pure_top_k_from_the_dpp_path_at_lambda_zero():
    scores = random_scores()
    similarity = OfferSimilarity.from_embeddings(np.random.default_rng(2).normal(size=(30, 3)))
    config = RerankConfig(
        k=5, mmr_lambda=0.0, offer_cap=scores.n_customers, pool_size=12, method="dpp"
    )
    recs = recommend(scores, config, similarity)
    np.testing.assert_array_equal(recs.positions, top_k(scores, 5))


def test_it_raises_dpp_diversity_as_lambda_grows():
    # Five themes of six offers each: an offer's embedding is its theme plus some noise.
    rng = np.random.default_rng(4)
    embeddings = np.repeat(np.eye(5), 6, axis=0) + 0.3 * rng.random((30, 5))
    similarity = OfferSimilarity.from_embeddings(embeddings)
    scores = random_scores(n_customers=60, n_offers=30, seed=4)
    curve = diversity_curve(
        scores, similarity, lambdas=(0.2, 0.5, 0.8), config=RerankConfig(k=5, method="dpp")
    )
    ild = curve.to_frame()["intra_list_diversity"].to_numpy()
    assert (np.diff(ild) > 0).all()
    mean_score = curve.to_frame()["mean_score"].to_numpy()
    assert (np.diff(mean_score) < 0).all()  # bought with relevance


def test_it_treats_offers_without_categories_as_distinct_in_the_dpp():
    # Jaccard gives an offer without categories similarity 0 even to itself; the DPP still
    # counts it as a full-volume offer rather than one the list already spans.
    similarity = OfferSimilarity.from_categories(["drama", "drama", None])
    scores = ScoreMatrix.from_array(np.array([[1.0, 0.9, 0.8]]))
    recs = recommend(
        scores, RerankConfig(k=2, mmr_lambda=0.5, rescale=False, method="dpp"), similarity
    )
    assert recs.positions.tolist() == [[0, 2]]


def test_it_keeps_each_offer_within_its_cap_with_the_dpp():
    scores = random_scores(n_customers=50, n_offers=8, seed=3)
    similarity = OfferSimilarity.from_embeddings(np.random.default_rng(1).normal(size=(8, 4)))
    config = RerankConfig(k=3, mmr_lambda=0.5, offer_cap=20, method="dpp")
    recs = recommend(scores, config, similarity)
    assert recs.exposure().max() <= 20
    candidates = (~np.isnan(scores.values)).sum(axis=1)
    assert ((recs.positions >= 0).sum(axis=1) == np.minimum(candidates, 3)).all()
    uncapped = recommend(scores, dataclasses.replace(config, offer_cap=None), similarity)
    assert uncapped.exposure().max() > 20  # the cap changed the lists


def test_it_names_an_unknown_rerank_method():
    with pytest.raises(ValueError, match="method must be 'mmr' or 'dpp'"):
        recommend(random_scores(), RerankConfig(method="greedy"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        RerankConfig(k=5, mmr_lambda=0.0),
        RerankConfig(k=5, mmr_lambda=0.3, pool_size=12),
        RerankConfig(k=4, mmr_lambda=0.6, penalty="mean", discount=True),
        RerankConfig(k=5, mmr_lambda=0.5, method="dpp", pool_size=10),
    ],
)
def test_it_lists_one_customer_as_recommend_lists_them(config):
    scores = random_scores()
    rng = np.random.default_rng(3)
    similarity = OfferSimilarity.from_embeddings(rng.normal(size=(scores.n_offers, 3)))
    every = recommend(scores, config, similarity).positions
    for row in range(scores.n_customers):
        one = diversity.recommend_one(scores.values[row], config, similarity)
        expected = every[row]
        np.testing.assert_array_equal(one, expected[expected >= 0])


def test_it_lists_one_customer_with_few_candidates_and_refuses_an_infinite_score():
    values = np.full(6, np.nan)
    values[[1, 4]] = [0.2, 0.9]
    np.testing.assert_array_equal(diversity.recommend_one(values, RerankConfig(k=5)), [4, 1])
    values[2] = np.inf
    with pytest.raises(ValueError, match="column 2"):
        diversity.recommend_one(values, RerankConfig(k=5))


def test_a_cap_does_not_change_one_customer_list():
    scores = random_scores(n_customers=6)
    similarity = OfferSimilarity.from_embeddings(
        np.random.default_rng(4).normal(size=(scores.n_offers, 3))
    )
    for lam in (0.0, 0.4):
        config = RerankConfig(k=5, mmr_lambda=lam, offer_cap=1, pool_size=15)
        for row in range(scores.n_customers):
            one_row = ScoreMatrix.from_array(scores.values[row : row + 1])
            expected = recommend(one_row, config, similarity).positions[0]
            np.testing.assert_array_equal(
                diversity.recommend_one(scores.values[row], config, similarity),
                expected[expected >= 0],
            )
