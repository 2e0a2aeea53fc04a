import numpy as np
import pytest
import torch

from recengine.diversity import OfferSimilarity
from recengine.embeddings import collaborative_embeddings, offer_text_embeddings
from recengine.models_base import build_tiny_bert, load_encoder, load_tokenizer

OFFER_TEXTS = [
    "movie Toy Story (1995) | genres animation children's comedy",
    "movie GoldenEye (1995) | genres action adventure thriller",
    "movie Four Rooms (1995) | genres thriller",
    "movie Get Shorty (1995) | genres action comedy drama",
    "movie Copycat (1995) | genres crime drama thriller",
    "movie Babe (1995) | genres children's comedy drama",
    "movie Heat (1995) | genres action crime thriller",
]


@pytest.fixture(scope="module")
def offer_bert(tmp_path_factory) -> str:
    return str(build_tiny_bert(tmp_path_factory.mktemp("offer-bert"), OFFER_TEXTS))


def test_it_returns_one_unit_length_row_per_offer_text(offer_bert):
    vectors = offer_text_embeddings(OFFER_TEXTS, offer_bert)
    assert vectors.shape == (len(OFFER_TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_it_mean_pools_the_encoder_states_of_the_real_tokens(offer_bert):
    tokenizer, encoder = load_tokenizer(offer_bert), load_encoder(offer_bert).eval()
    expected = []
    for text in OFFER_TEXTS[:3]:
        batch = tokenizer([text], return_tensors="pt")
        with torch.inference_mode():
            hidden = encoder(**batch).last_hidden_state[0].numpy()
        mean = hidden.mean(axis=0)
        expected.append(mean / np.linalg.norm(mean))
    vectors = offer_text_embeddings(OFFER_TEXTS[:3], offer_bert)
    np.testing.assert_allclose(vectors, np.array(expected), atol=1e-5)


def test_it_gives_the_same_vectors_whatever_the_batching_and_order(offer_bert):
    one_by_one = offer_text_embeddings(OFFER_TEXTS, offer_bert, batch_size=1)
    together = offer_text_embeddings(OFFER_TEXTS, offer_bert, batch_size=64)
    np.testing.assert_allclose(one_by_one, together, atol=1e-5)
    order = np.random.default_rng(0).permutation(len(OFFER_TEXTS))
    shuffled = offer_text_embeddings([OFFER_TEXTS[i] for i in order], offer_bert, batch_size=3)
    np.testing.assert_allclose(shuffled, together[order], atol=1e-5)


def test_it_embeds_equal_texts_equally_and_different_texts_differently(offer_bert):
    vectors = offer_text_embeddings([OFFER_TEXTS[0], OFFER_TEXTS[1], OFFER_TEXTS[0]], offer_bert)
    similarity = OfferSimilarity.from_embeddings(vectors)
    assert similarity.between(0, 2) == pytest.approx(1.0, abs=1e-5)
    assert similarity.between(0, 1) < 0.999


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_it_rejects_an_empty_offer_text_naming_its_row(offer_bert, bad):
    with pytest.raises(ValueError, match="row 1"):
        offer_text_embeddings([OFFER_TEXTS[0], bad], offer_bert)


def block_interactions() -> np.ndarray:
    """Customers 0-19 take offers 0-3, customers 20-39 take offers 4-7, each with gaps."""
    rng = np.random.default_rng(1)
    clicks = np.zeros((40, 8))
    clicks[:20, :4] = rng.random((20, 4)) < 0.7
    clicks[20:, 4:] = rng.random((20, 4)) < 0.7
    return clicks


def test_it_gives_offers_taken_by_the_same_customers_close_vectors():
    similarity = OfferSimilarity.from_embeddings(collaborative_embeddings(block_interactions(), 2))
    matrix = similarity.matrix()
    within = np.r_[matrix[:4, :4][np.triu_indices(4, 1)], matrix[4:, 4:][np.triu_indices(4, 1)]]
    across = matrix[:4, 4:]
    assert within.min() > 0.9
    assert np.abs(across).max() < 0.1


def test_it_reproduces_the_shared_customer_counts_at_full_rank():
    clicks = block_interactions()
    vectors = collaborative_embeddings(clicks, dimensions=8).astype(np.float64)
    np.testing.assert_allclose(vectors @ vectors.T, clicks.T @ clicks, atol=1e-4)


def test_it_makes_an_untaken_offer_similar_to_no_other_offer():
    clicks = block_interactions()
    clicks[:, [2, 6]] = 0
    vectors = collaborative_embeddings(clicks, dimensions=2)
    assert vectors.shape == (8, 2 + 2)
    matrix = OfferSimilarity.from_embeddings(vectors).matrix()
    for untaken in (2, 6):
        others = np.delete(matrix[untaken], untaken)
        np.testing.assert_allclose(others, 0.0, atol=1e-6)
        assert matrix[untaken, untaken] == pytest.approx(1.0)


def test_it_returns_the_same_collaborative_vectors_for_the_same_seed():
    clicks = (np.random.default_rng(3).random((60, 30)) < 0.2).astype(float)
    first = collaborative_embeddings(clicks, dimensions=5, seed=7)
    second = collaborative_embeddings(clicks, dimensions=5, seed=7)
    np.testing.assert_array_equal(first, second)


def test_it_rejects_negative_interactions_naming_row_and_column():
    clicks = block_interactions()
    clicks[3, 5] = -1
    with pytest.raises(ValueError, match="row 3, column 5"):
        collaborative_embeddings(clicks, dimensions=2)


def test_it_rejects_more_dimensions_than_the_matrix_has():
    with pytest.raises(ValueError, match="dimensions must be between 1 and 8"):
        collaborative_embeddings(block_interactions(), dimensions=9)
