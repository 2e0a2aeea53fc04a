import numpy as np
import pandas as pd
import pytest

from recengine.diversity import OfferSimilarity, ScoreMatrix
from recengine.models_base import build_tiny_bert
from recengine.serialize import SerializeConfig, TextSerializer
from recengine.train import TrainConfig

JOBS = ["admin.", "technician", "student", "retired", "services"]


def random_scores(n_customers: int = 40, n_offers: int = 30, seed: int = 0) -> ScoreMatrix:
    rng = np.random.default_rng(seed)
    values = rng.random((n_customers, n_offers)).round(2)  # rounding makes ties
    values[rng.random(values.shape) < 0.2] = np.nan
    return ScoreMatrix.from_array(values)


def two_genre_catalogue(n_customers: int = 5) -> tuple[ScoreMatrix, OfferSimilarity]:
    """Offers 0-4 are dramas everyone scores high, offers 5-9 comedies scored lower."""
    scores = np.r_[np.linspace(0.9, 0.86, 5), np.linspace(0.5, 0.46, 5)]
    values = np.tile(scores, (n_customers, 1))
    similarity = OfferSimilarity.from_categories(["drama"] * 5 + ["comedy"] * 5)
    return ScoreMatrix.from_array(values), similarity


def make_customers(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic customers whose click depends on a word (student) and a number (balance)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "job": rng.choice(JOBS, n),
            "balance": rng.normal(0, 1, n).round(2),
        }
    )
    logit = 2.5 * (frame["job"] == "student") + 1.5 * frame["balance"] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


@pytest.fixture
def customers() -> tuple[pd.DataFrame, np.ndarray]:
    return make_customers()


@pytest.fixture
def serializer(customers) -> TextSerializer:
    return TextSerializer(SerializeConfig()).fit(customers[0])


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    frame, _ = make_customers()
    texts = TextSerializer(SerializeConfig()).fit(frame).texts(frame)
    return str(build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts))


@pytest.fixture
def tiny_config(tiny_bert) -> TrainConfig:
    return TrainConfig(
        base_model=tiny_bert,
        mode="full",
        epochs=3,
        batch_size=16,
        learning_rate=2e-3,
        head_learning_rate=1e-2,
        eval_batch_size=64,
        threads=1,
        seed=0,
    )
