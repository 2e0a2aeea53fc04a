from pathlib import Path

import pytest

from recengine.models_base import (
    BaseModelError,
    load_encoder,
    load_tokenizer,
    resolve_base_model,
)


def test_it_resolves_the_packaged_model_to_its_installed_folder():
    folder = Path(resolve_base_model("packaged:all-MiniLM-L6-v2"))
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def test_it_accepts_a_local_folder(tiny_bert):
    assert resolve_base_model(tiny_bert) == str(Path(tiny_bert).resolve())
    assert load_tokenizer(tiny_bert)("job student")["input_ids"][0] is not None


def test_it_names_an_unknown_packaged_model():
    with pytest.raises(BaseModelError, match="nope"):
        resolve_base_model("packaged:nope")


def test_it_loads_a_half_precision_checkpoint_in_float32(tmp_path):
    import torch
    from transformers import AutoModel

    from recengine.models_base import build_tiny_bert, load_encoder

    folder = build_tiny_bert(tmp_path, ["job student", "job retired"])
    AutoModel.from_pretrained(folder).half().save_pretrained(folder)
    stored = AutoModel.from_pretrained(folder, dtype="auto")
    assert next(stored.parameters()).dtype == torch.float16  # the checkpoint is half
    encoder = load_encoder(str(folder))
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}


def test_it_says_how_to_provide_a_hub_model_that_is_not_on_the_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache" / "hub"))
    for load in (load_tokenizer, load_encoder):
        with pytest.raises(
            BaseModelError,
            match="'no-such-org/no-such-bert' is not on this machine.*CLICK_MODEL_BASE",
        ) as raised:
            load("no-such-org/no-such-bert")
        assert len(str(raised.value)) <= 255  # a job's message shows it whole


def test_it_names_a_local_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(BaseModelError, match=str(tmp_path)):
        load_encoder(str(tmp_path))


def test_it_names_the_device_for_people():
    import torch

    from recengine.config import device_label

    assert device_label("cpu") == "CPU"
    if torch.cuda.is_available():
        assert device_label("cuda").startswith("GPU (")
