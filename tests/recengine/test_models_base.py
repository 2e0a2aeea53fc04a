from pathlib import Path

import pytest

from recengine.models_base import BaseModelError, load_tokenizer, resolve_base_model


def test_it_resolves_the_packaged_model_to_its_installed_folder():
    folder = Path(resolve_base_model("packaged:all-MiniLM-L6-v2"))
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def test_it_accepts_a_local_folder(tiny_bert):
    assert resolve_base_model(tiny_bert) == str(Path(tiny_bert).resolve())
    assert load_tokenizer(tiny_bert)("job student")["input_ids"][0] is not None


def test_it_names_an_unknown_packaged_model():
    with pytest.raises(BaseModelError, match="nope"):
        resolve_base_model("packaged:nope")
