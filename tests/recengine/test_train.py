import numpy as np
import pytest
import torch
from torch import nn

from recengine.train import ClickModel, TrainProgress, WeightAverage, mean_pool, soft_targets


class Cancelled(Exception):
    pass


def _split(customers):
    frame, y = customers
    return frame.iloc[:240], y[:240], frame.iloc[240:], y[240:]


def _mean_loss(history, epoch):
    return np.mean([h["loss"] for h in history if h["epoch"] == epoch])


def test_it_lowers_the_training_loss(customers, serializer, tiny_config):
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    assert _mean_loss(model.history_, 2) < _mean_loss(model.history_, 0)
    assert model.best_val_auc_ > 0.6


@pytest.mark.parametrize("mode,frozen_layers", [("lora", 0), ("lora", 1), ("frozen", 0)])
def test_it_trains_adapters_or_a_head_on_cached_layers(
    customers, serializer, tiny_config, mode, frozen_layers
):
    tiny_config.mode, tiny_config.frozen_layers = mode, frozen_layers
    tiny_config.learning_rate = 1e-2
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    assert _mean_loss(model.history_, 2) < _mean_loss(model.history_, 0)


def test_it_stops_early_when_validation_auc_stops_improving(customers, serializer, tiny_config):
    tiny_config.learning_rate = tiny_config.head_learning_rate = 0.0
    tiny_config.eval_every, tiny_config.patience = 2, 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    assert model.stopped_early_
    assert model.steps_ == 6  # first validation sets the best, two more without improvement


@pytest.mark.parametrize("average_decay", [0.0, 0.9])
def test_it_resumes_from_a_checkpoint_at_the_step_it_stopped(
    customers, serializer, tiny_config, tmp_path, average_decay
):
    tiny_config.average_decay = average_decay
    whole = ClickModel(tiny_config, serializer).fit(*_split(customers))
    tiny_config.checkpoint_dir, tiny_config.progress_every = str(tmp_path), 1

    def cancel_at_step_7(progress: TrainProgress) -> None:
        if progress.step == 7:
            raise Cancelled

    with pytest.raises(Cancelled):
        ClickModel(tiny_config, serializer).fit(*_split(customers), progress=cancel_at_step_7)
    steps = []
    resumed = ClickModel(tiny_config, serializer).fit(
        *_split(customers), progress=lambda p: steps.append(p.step)
    )
    assert steps[0] == 8
    assert resumed.steps_ == whole.steps_ == 45
    frame = customers[0]
    np.testing.assert_allclose(resumed.predict_proba(frame), whole.predict_proba(frame), atol=1e-5)


def test_it_reports_progress_with_validation_auc(customers, serializer, tiny_config):
    seen: list[TrainProgress] = []
    ClickModel(tiny_config, serializer).fit(*_split(customers), progress=seen.append)
    with_auc = [p for p in seen if p.val_auc is not None]
    assert [p.epoch for p in with_auc] == [0, 1, 2]
    assert seen[-1].total_steps == 45


def test_it_reloads_saved_lora_adapters_with_identical_scores(
    customers, serializer, tiny_config, tmp_path
):
    tiny_config.mode, tiny_config.epochs = "lora", 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "adapter" / "adapter_config.json").exists()
    reloaded = ClickModel.load(tmp_path / "model", device=model.device_)
    frame = customers[0]
    np.testing.assert_allclose(reloaded.predict_proba(frame), model.predict_proba(frame), atol=1e-6)


def test_it_scores_with_its_own_layer_loop_like_the_encoder(customers, serializer, tiny_config):
    model = ClickModel(tiny_config, serializer)
    model.device_ = "cpu"
    model._build()
    ids, mask = model._pad(model.encode(customers[0].iloc[:8]).ids)
    with torch.inference_mode():
        expected = model.network_.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = model.network_.hidden_after(ids, mask, model.network_.n_layers)
    torch.testing.assert_close(got * mask[..., None], expected * mask[..., None])


def test_it_anneals_the_learning_rate_to_zero_at_the_end_of_the_time_budget():
    from recengine.train import linear_schedule

    share = {"used": 0.0}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_schedule(optimizer, 0, 1000, time_share=lambda: share["used"])
    assert scheduler.get_last_lr()[0] == pytest.approx(1.0)
    share["used"] = 0.75
    optimizer.step()
    scheduler.step()  # step 1 of 1000: the steps alone would keep the rate near 1
    assert scheduler.get_last_lr()[0] == pytest.approx(0.25)
    share["used"] = 1.2
    optimizer.step()
    scheduler.step()
    assert scheduler.get_last_lr()[0] == 0.0


def test_it_reloads_a_hidden_head_on_piecewise_numbers_with_identical_scores(
    customers, tiny_config, tmp_path
):
    from recengine.serialize import SerializeConfig, TextSerializer

    frame, y = customers
    serializer = TextSerializer(
        SerializeConfig(
            numeric_text="omit",
            numeric_encoding="piecewise",
            piecewise_bins=4,
        )
    ).fit(frame)
    tiny_config.epochs, tiny_config.head_hidden, tiny_config.frozen_layers = 1, 8, 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    assert model.network_.deep is not None
    reloaded = ClickModel.load(model.save(tmp_path / "model"), device=model.device_)
    np.testing.assert_allclose(reloaded.predict_proba(frame), model.predict_proba(frame), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_model_trained_on_the_gpu_scores_alike_on_the_cpu(
    customers, serializer, tiny_config, tmp_path
):
    """The scoring or explanation job may run on a CPU worker: its scores differ from the
    GPU's mixed-precision ones by rounding only."""
    tiny_config.epochs, tiny_config.device = 1, "cuda"
    frame, _ = customers
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    assert model.device_ == "cuda"
    on_cpu = ClickModel.load(model.save(tmp_path / "model"), device="cpu")
    assert np.abs(on_cpu.predict_proba(frame) - model.predict_proba(frame)).max() < 5e-3
    assert np.corrcoef(on_cpu.predict_logits(frame), model.predict_logits(frame))[0, 1] > 0.999


def test_it_encodes_each_distinct_text_once_and_scores_repeats_alike(
    customers, serializer, tiny_config
):
    tiny_config.epochs = 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    frame = customers[0].iloc[:5]
    twice = model.predict_proba(frame.iloc[[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]])
    np.testing.assert_allclose(twice[:5], model.predict_proba(frame), atol=1e-6)
    np.testing.assert_allclose(twice[5:], twice[:5], atol=1e-6)


def test_it_gives_each_text_one_pooled_embedding_as_the_explainer_computed_it(
    customers, serializer, tiny_config
):
    tiny_config.epochs = 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    texts = serializer.texts(customers[0].iloc[:6])
    pooled = model.pooled_embeddings(texts)
    assert pooled.shape == (6, model.network_.bert.config.hidden_size)
    assert pooled.dtype == np.float32
    np.testing.assert_array_equal(model.pooled_embeddings(texts), pooled)
    np.testing.assert_allclose(model.pooled_embeddings(texts[2:3])[0], pooled[2], atol=1e-6)
    # What the explainer computed itself before it asked the model: texts padded together.
    batch = model.tokenizer_(
        texts, truncation=True, max_length=tiny_config.max_length, padding=True, return_tensors="pt"
    )
    net = model.network_
    with torch.inference_mode():
        hidden = net.hidden_after(batch["input_ids"], batch["attention_mask"], net.n_layers)
        expected = mean_pool(hidden, batch["attention_mask"]).numpy()
    np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_it_scores_from_pooled_embeddings_like_predict_logits(customers, serializer, tiny_config):
    tiny_config.epochs = 1
    model = ClickModel(tiny_config, serializer).fit(*_split(customers))
    frame = customers[0].iloc[:20]
    pooled = model.pooled_embeddings(serializer.texts(frame))
    np.testing.assert_allclose(
        model.logits_from_pooled(pooled, frame), model.predict_logits(frame), atol=1e-6
    )


def test_the_weight_average_follows_each_step_and_swaps_in_only_inside_its_block():
    torch.manual_seed(0)
    layer = nn.Linear(3, 1)
    frozen = nn.Linear(3, 1).requires_grad_(False)
    network = nn.Sequential(layer, frozen)
    start = layer.weight.detach().clone()
    average = WeightAverage(network, decay=0.5)
    assert set(average.params) == {"0.weight", "0.bias"}  # trainable weights only
    with torch.no_grad():
        layer.weight.add_(1.0)
    average.update(step=100)  # the ramp (101/110) is above 0.5: the decay is 0.5
    expected = start + 0.5
    torch.testing.assert_close(average.state()["0.weight"], expected)
    with average.applied():
        torch.testing.assert_close(layer.weight.detach(), expected)
    torch.testing.assert_close(layer.weight.detach(), start + 1.0)


def test_the_weight_average_leans_on_recent_steps_at_the_start():
    layer = nn.Linear(2, 1)
    average = WeightAverage(layer, decay=0.99)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average.update(step=1)  # decay (1 + 1) / (10 + 1): mostly the new weights
    assert average.state()["weight"].min() > 0.8


def test_an_averaged_run_keeps_the_average_it_validated(customers, serializer, tiny_config):
    frame, y, val_frame, y_val = _split(customers)
    tiny_config.average_decay = 0.9
    averaged = ClickModel(tiny_config, serializer).fit(frame, y, val_frame, y_val)
    best = max(h["val_auc"] for h in averaged.history_ if "val_auc" in h)
    scores = averaged.predict_logits(val_frame)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y_val, scores) == pytest.approx(best)
    tiny_config.average_decay = 0.0
    plain = ClickModel(tiny_config, serializer).fit(frame, y, val_frame, y_val)
    assert not np.allclose(plain.predict_logits(val_frame), scores)


def test_soft_targets_blend_labels_and_teacher_and_refuse_bad_teachers():
    y = np.array([0.0, 1.0, 1.0], dtype=np.float32)
    teacher = np.array([0.2, 0.6, 1.0])
    np.testing.assert_allclose(soft_targets(y, teacher, 0.25), [0.05, 0.9, 1.0], atol=1e-6)
    assert soft_targets(y, None, 0.5) is y
    assert soft_targets(y, teacher, 0.0) is y
    with pytest.raises(ValueError, match="2 rows, the labels 3"):
        soft_targets(y, teacher[:2], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        soft_targets(y, np.array([0.2, 1.5, 0.1]), 0.5)
    with pytest.raises(ValueError, match="teacher_weight"):
        soft_targets(y, teacher, 1.5)


def test_a_teacher_moves_what_the_model_learns(customers, serializer, tiny_config):
    # With the teacher's probabilities as the whole target, the model learns them instead of
    # the labels: a constant teacher far from the response rate pulls every score towards it.
    frame, y, val_frame, y_val = _split(customers)
    tiny_config.head_learning_rate = 5e-2
    plain = ClickModel(tiny_config, serializer).fit(frame, y, val_frame, y_val)
    tiny_config.teacher_weight = 1.0
    taught = ClickModel(tiny_config, serializer).fit(
        frame, y, val_frame, y_val, teacher=np.full(len(y), 0.9)
    )
    assert y.mean() < 0.6
    assert plain.predict_proba(frame).mean() < 0.6
    assert taught.predict_proba(frame).mean() > 0.75


@pytest.mark.parametrize("mode,frozen_layers", [("full", 0), ("lora", 1)])
def test_continued_fine_tuning_starts_from_the_parents_weights(
    customers, serializer, tiny_config, tmp_path, mode, frozen_layers
):
    frame, y, val_frame, y_val = _split(customers)
    tiny_config.mode, tiny_config.frozen_layers = mode, frozen_layers
    trained = ClickModel(tiny_config, serializer).fit(frame, y, val_frame, y_val)
    # As the product does it: the parent comes back from disk.
    parent = ClickModel.load(trained.save(tmp_path / "parent"))
    # With nothing to learn, a continued model scores as its parent; a new one does not.
    still = ClickModel.continued(parent, learning_rate=0.0, head_learning_rate=0.0, epochs=1)
    still.fit(val_frame, y_val, val_frame, y_val)
    tiny_config.learning_rate = tiny_config.head_learning_rate = 0.0
    fresh = ClickModel(tiny_config, serializer).fit(val_frame, y_val, val_frame, y_val)
    np.testing.assert_allclose(still.predict_proba(frame), parent.predict_proba(frame), atol=1e-5)
    assert np.abs(fresh.predict_proba(frame) - parent.predict_proba(frame)).max() > 1e-3
    assert still.serializer is parent.serializer
    assert still.config.mode == mode


def test_continued_fine_tuning_learns_from_the_newer_rows(customers, serializer, tiny_config):
    frame, y, val_frame, y_val = _split(customers)
    parent = ClickModel(tiny_config, serializer).fit(frame, y, val_frame, y_val)
    child = ClickModel.continued(parent, epochs=2).fit(val_frame, y_val, val_frame, y_val)
    assert np.abs(child.predict_proba(frame) - parent.predict_proba(frame)).max() > 1e-4
    with pytest.raises(ValueError, match="keeps the parent's mode, num_layers"):
        ClickModel.continued(parent, mode="full", num_layers=1)
