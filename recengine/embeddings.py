"""Offer embeddings for diversity re-ranking: what an offer says, and who takes it.

- `offer_text_embeddings`: each offer's text, as the product writes an offer ("movie Toy
  Story (1995) | genres animation children's comedy"), through the sentence encoder, mean
  pooled over its tokens and L2-normalised. Offers that read alike to a customer get close
  vectors, whatever catalogue fields they share.
- `collaborative_embeddings`: a truncated SVD of the customer x offer interaction matrix.
  Offers taken by the same customers get close vectors; fit it on training interactions
  only, or held-out behaviour leaks into the re-ranking.

Both return one row per offer, ready for `OfferSimilarity.from_embeddings` (cosine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recengine.models_base import DEFAULT_BASE_MODEL, load_encoder, load_tokenizer


def offer_text_embeddings(
    texts: Sequence[str],
    base_model: str = DEFAULT_BASE_MODEL,
    batch_size: int = 64,
    max_length: int = 64,
) -> np.ndarray:
    """One L2-normalised float32 row per offer text: the encoder's token states, mean pooled
    over the real (non-padding) tokens. Texts are encoded shortest first, so a batch carries
    little padding; the rows come back in the order given."""
    import torch

    from recengine.train import mean_pool

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    texts = list(texts)
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Offer text at row {row} is empty or not a string: {text!r}.")
    tokenizer = load_tokenizer(base_model)
    encoder = load_encoder(base_model).eval()
    order = np.argsort([len(text) for text in texts], kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return out


def collaborative_embeddings(
    interactions: np.ndarray, dimensions: int = 64, seed: int = 0
) -> np.ndarray:
    """Offer vectors (offers x `dimensions`, float32) from a truncated SVD of the customer x
    offer interaction matrix: right singular vectors scaled by their singular values, so dot
    products approximate how many customers two offers share.

    An offer nobody took has nothing to compare by; it gets its own extra column (1 there,
    0 elsewhere), so its cosine similarity to every other offer is 0, as with an offer
    without categories in Jaccard similarity."""
    from sklearn.utils.extmath import randomized_svd

    matrix = np.asarray(interactions, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"Interactions must be a 2-D array, got shape {matrix.shape}.")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        row, col = np.argwhere(~np.isfinite(matrix) | (matrix < 0))[0]
        raise ValueError(
            f"Interaction at row {row}, column {col} is {matrix[row, col]}; counts must be "
            "finite and non-negative."
        )
    if not 1 <= dimensions <= min(matrix.shape):
        raise ValueError(
            f"dimensions must be between 1 and {min(matrix.shape)} (the smaller side of the "
            f"{matrix.shape} matrix), got {dimensions}."
        )
    _, singular, right = randomized_svd(matrix, dimensions, random_state=seed)
    vectors = right.T * singular[None, :]
    untaken = np.flatnonzero(matrix.sum(axis=0) == 0)
    vectors[untaken] = 0.0
    own = np.zeros((matrix.shape[1], len(untaken)))
    own[untaken, np.arange(len(untaken))] = 1.0
    return np.hstack([vectors, own]).astype(np.float32)
