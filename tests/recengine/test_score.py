import numpy as np
import pytest

from recengine.score import (
    DistilledScorer,
    ScoreConfig,
    iter_frames,
    quantized_for_cpu,
    score_in_chunks,
)
from recengine.train import ClickModel


@pytest.fixture
def model(customers, serializer, tiny_config) -> ClickModel:
    tiny_config.epochs = 1
    frame, y = customers
    return ClickModel(tiny_config, serializer).fit(frame, y)


def test_it_scores_in_chunks_like_all_at_once(customers, model):
    frame = customers[0]
    chunks = list(score_in_chunks(model, [frame], ScoreConfig(chunk_size=64)))
    assert [len(c) for c in chunks] == [64, 64, 64, 64, 44]
    np.testing.assert_allclose(np.concatenate(chunks), model.predict_proba(frame), atol=1e-6)


def test_it_builds_chunks_from_row_dicts_without_reading_ahead(customers):
    rows = iter(customers[0].to_dict("records"))
    chunks = iter_frames(rows, chunk_size=100)
    assert len(next(chunks)) == 100
    assert len(list(rows)) == 200  # the rest of the rows were not consumed yet


def test_it_scores_a_customer_with_a_profile_but_no_history(model):
    import pandas as pd

    new = pd.DataFrame({"age": [30], "job": ["student"], "balance": [np.nan]})
    assert 0 < model.predict_proba(new)[0] < 1


def test_it_quantizes_for_cpu_with_close_scores(customers, model):
    frame = customers[0]
    fast = quantized_for_cpu(model)
    full, quick = model.predict_proba(frame), fast.predict_proba(frame)
    assert np.corrcoef(full, quick)[0, 1] > 0.95


def test_the_int8_copy_runs_on_the_cpu_whatever_device_trained_it(customers, model):
    import torch

    model.device_ = "cuda" if torch.cuda.is_available() else "meta"  # trained elsewhere
    fast = quantized_for_cpu(model)
    assert fast.device_ == "cpu"
    assert {p.device.type for p in fast.network_.parameters()} <= {"cpu"}
    assert fast.predict_proba(customers[0]).shape == (len(customers[0]),)
    assert model.device_ != "cpu"  # the original is left as it was


def test_it_distils_the_model_into_a_fast_student(customers, model):
    frame = customers[0]
    teacher = model.predict_logits(frame)
    student = DistilledScorer().fit(frame, teacher)
    assert np.corrcoef(student.predict_proba(frame), model.predict_proba(frame))[0, 1] > 0.9
