"""Fine-tuning a BERT-family encoder as a click model: full, LoRA or frozen encoder + head.

The network is encoder -> mean pooling -> [pooled text ; numeric tower] -> one logit.
Speed on a small CPU comes from short compact texts, dynamic padding with length buckets,
and `frozen_layers`: the lowest layers are frozen and their outputs computed once and cached,
so each training step only runs (and back-propagates through) the top layers.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from transformers import AutoTokenizer

from recengine.config import (
    config_from_dict,
    config_to_dict,
    json_ready,
    pick_device,
    seed_everything,
)
from recengine.data import pos_weight
from recengine.models_base import DEFAULT_BASE_MODEL, load_encoder, load_tokenizer
from recengine.serialize import SerializeConfig, TextSerializer

CHECKPOINT_FILE = "checkpoint.pt"


TrainMode = Literal["full", "lora", "frozen"]


@dataclass
class TrainConfig:
    # Base encoder: "packaged:all-MiniLM-L6-v2", a local folder or a (cached) hub id.
    base_model: str = DEFAULT_BASE_MODEL
    # "full" trains every unfrozen weight, "lora" trains low-rank adapters, "frozen" trains
    # only the head on cached sentence embeddings.
    mode: TrainMode = "lora"
    # Keep only the lowest N encoder layers (None = all); fewer layers score faster.
    num_layers: int | None = None
    # The lowest N layers stay frozen and their outputs are cached once (full and lora).
    frozen_layers: int = 0
    # LoRA rank, scaling and dropout.
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    # Linear layers that get adapters: "query,value" or "all-linear".
    lora_targets: str = "query,value"
    # Longest text in tokens; the compact text is usually far shorter.
    max_length: int = 96
    # Rows per optimisation step.
    batch_size: int = 32
    # Rows per scoring batch.
    eval_batch_size: int = 256
    # Passes over the training rows (early stopping may end sooner).
    epochs: int = 3
    # Learning rate of the encoder weights or adapters.
    learning_rate: float = 5e-4
    # Learning rate of the numeric tower and head (new weights learn faster).
    head_learning_rate: float = 2e-3
    # AdamW weight decay (not applied to biases and norms).
    weight_decay: float = 0.01
    # Share of the steps spent warming the learning rate up; the rest decays linearly to 0.
    warmup_ratio: float = 0.06
    # Gradient norm clip.
    max_grad_norm: float = 1.0
    # Validate every N steps (None = once per epoch).
    eval_every: int | None = None
    # Stop after this many validations without a better validation AUC.
    patience: int = 2
    # Validate (and keep) an exponential moving average of the trained weights instead of the
    # weights of the last step, with this decay per step (0 = off). The average is less noisy
    # than any one step's weights, so early stopping picks a model that generalises better.
    average_decay: float = 0.0
    # "pos_weight" weighs clicks by non-clicks/clicks (the logit is shifted back afterwards so
    # probabilities stay calibrated); "none" leaves the loss unweighted.
    imbalance: Literal["pos_weight", "none"] = "none"
    # Weight of a teacher's probabilities in the training targets (0 = the labels alone): each
    # row learns (1 - w) * label + w * teacher, when `fit` is given the teacher's out-of-fold
    # probabilities of the training rows. A tree ensemble's probabilities carry what it found
    # in the numbers, which the encoder otherwise has to discover from few positives.
    teacher_weight: float = 0.0
    # Width of the numeric tower (used when the serialiser provides numeric fields).
    numeric_hidden: int = 32
    # Dropout before the head.
    head_dropout: float = 0.1
    # Width of a hidden layer beside the linear head (0 = linear head only); it lets the
    # text and the numbers interact instead of only adding up.
    head_hidden: int = 0
    # Seed of initialisation, batch order and dropout.
    seed: int = 0
    # Stop training after this many seconds (None = no limit); the best state so far is kept.
    time_budget_s: float | None = None
    # CPU threads for torch (None = torch's default).
    threads: int | None = None
    # "auto" (CUDA when present), "cuda" or "cpu".
    device: str = "auto"
    # bf16/fp16 autocast on CUDA; CPU always runs in float32.
    mixed_precision: bool = True
    # Folder for resumable checkpoints (None = no checkpoints).
    checkpoint_dir: str | None = None
    # Save a checkpoint every N steps (and when training is stopped by the progress callback).
    checkpoint_every: int = 200
    # Call the progress callback every N steps (and after each validation).
    progress_every: int = 10


@dataclass
class TrainProgress:
    step: int
    epoch: int
    total_steps: int
    loss: float
    val_auc: float | None


ProgressCallback = Callable[[TrainProgress], None]


# A transformers encoder of the BERT family (config.hidden_size, embeddings, encoder.layer) or
# peft's wrapper of one: both reach their parts by name at run time, beyond what types say.
Encoder = Any


class ClickNetwork(nn.Module):
    """Encoder, mean pooling, numeric tower and a one-logit head."""

    def __init__(
        self,
        encoder: Encoder,
        n_numeric: int,
        numeric_hidden: int,
        dropout: float,
        head_hidden: int = 0,
    ):
        super().__init__()
        self.encoder: Encoder = encoder
        hidden: int = self.bert.config.hidden_size
        self.numeric = (
            nn.Sequential(nn.Linear(n_numeric, numeric_hidden), nn.GELU()) if n_numeric else None
        )
        # The raw numbers also reach the head directly (a wide, linear path beside the tower).
        width = hidden + (numeric_hidden + n_numeric if n_numeric else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 1))
        self.deep = (
            nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(width, head_hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(head_hidden, 1),
            )
            if head_hidden
            else None
        )

    @property
    def bert(self) -> Encoder:
        """The plain encoder, also when peft has wrapped it."""
        unwrap = getattr(self.encoder, "get_base_model", None)
        return unwrap() if unwrap is not None else self.encoder

    @property
    def n_layers(self) -> int:
        return len(self.bert.encoder.layer)

    def hidden_after(self, ids: torch.Tensor, mask: torch.Tensor, layers: int) -> torch.Tensor:
        hidden = self.bert.embeddings(input_ids=ids)
        return self.run_layers(hidden, mask, 0, layers)

    def run_layers(
        self, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int
    ) -> torch.Tensor:
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.bert.encoder.layer[start:stop]:
            out = layer(hidden, additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def logits_from_pooled(self, pooled: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        if self.numeric is not None:
            pooled = torch.cat([pooled, self.numeric(numeric), numeric], dim=-1)
        logits = self.head(pooled)
        if self.deep is not None:
            logits = logits + self.deep(pooled)
        return logits.squeeze(-1)

    def logits_from_hidden(
        self, hidden: torch.Tensor, mask: torch.Tensor, numeric: torch.Tensor, start: int
    ) -> torch.Tensor:
        hidden = self.run_layers(hidden, mask, start, self.n_layers)
        return self.logits_from_pooled(mean_pool(hidden, mask), numeric)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.logits_from_hidden(self.hidden_after(ids, mask, 0), mask, numeric, 0)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@dataclass
class Encoded:
    """Tokenised rows: one id list per row plus the numeric tower input."""

    ids: list[list[int]]
    numeric: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass
class ClickModel:
    """Text click model: `fit(frame, y)` then `predict_proba(frame)` -> P(click) per row."""

    config: TrainConfig = field(default_factory=TrainConfig)
    serializer: TextSerializer = field(default_factory=TextSerializer)
    # Weights to start from instead of the base encoder's (`continued`).
    warm_start_: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    # ---- continued fine-tuning ------------------------------------------------------------
    @classmethod
    def continued(cls, parent: ClickModel, **changes: Any) -> ClickModel:
        """A model that goes on from ``parent``'s trained weights (the adapters or encoder it
        trained, the numeric tower and the head) when fitted on newer rows, instead of from
        the base encoder. It keeps the parent's architecture and text serialiser (the same
        fields, numeric bins and vocabulary), so ``changes`` may only touch how it trains
        (passes, learning rates, budget, validation, seed, threads, teacher weight)."""
        fixed = {
            "base_model", "mode", "num_layers", "lora_r", "lora_alpha", "lora_targets",
            "numeric_hidden", "head_hidden", "max_length",
        }  # fmt: skip
        if touched := sorted(fixed & set(changes)):
            raise ValueError(f"continued fine-tuning keeps the parent's {', '.join(touched)}")
        model = cls(replace(parent.config, **changes), parent.serializer)
        model.warm_start_ = {k: v.detach().clone() for k, v in parent.network_.state_dict().items()}
        return model

    def _warm_start(self) -> None:
        """Load the parent's weights into the freshly built network; every trainable weight
        must come from the parent (a mismatch would silently train from scratch)."""
        state = self.warm_start_
        if state is None:
            return
        result = self.network_.load_state_dict(state, strict=False)
        trainable = {name for name, p in self.network_.named_parameters() if p.requires_grad}
        missing = sorted(trainable & set(result.missing_keys))
        if missing or result.unexpected_keys:
            raise ValueError(
                "the parent's weights do not fit this network: missing "
                f"{missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}"
            )

    # ---- building -------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        self.tokenizer_ = load_tokenizer(cfg.base_model)
        encoder = load_encoder(cfg.base_model, cfg.num_layers)
        n_layers = len(encoder.encoder.layer)
        # Full and LoRA keep at least the top layer trainable.
        self.frozen_layers_ = (
            n_layers if cfg.mode == "frozen" else min(cfg.frozen_layers, max(n_layers - 1, 0))
        )
        for param in encoder.parameters():
            param.requires_grad_(cfg.mode == "full")
        if cfg.mode == "full":
            for param in encoder.embeddings.parameters():
                param.requires_grad_(self.frozen_layers_ == 0)
            for layer in encoder.encoder.layer[: self.frozen_layers_]:
                layer.requires_grad_(False)
        if cfg.mode == "lora":
            encoder = self._with_lora(encoder, n_layers)
        torch.manual_seed(cfg.seed)
        self.network_ = ClickNetwork(
            encoder,
            self.serializer.n_numeric,
            cfg.numeric_hidden,
            cfg.head_dropout,
            cfg.head_hidden,
        ).to(self.device_)

    def _with_lora(self, encoder: nn.Module, n_layers: int) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        cfg = self.config
        targets: str | list[str] = (
            "all-linear" if cfg.lora_targets == "all-linear" else cfg.lora_targets.split(",")
        )
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            layers_to_transform=list(range(self.frozen_layers_, n_layers)),
            layers_pattern="layer",
        )
        return get_peft_model(encoder, lora)

    # ---- encoding -------------------------------------------------------------------------
    def encode(self, frame: pd.DataFrame) -> Encoded:
        texts = self.serializer.texts(frame)
        ids = self.tokenizer_(texts, truncation=True, max_length=self.config.max_length)[
            "input_ids"
        ]
        return Encoded(ids, self.serializer.numeric_matrix(frame))

    def _pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(i) for i in ids)
        out = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return torch.from_numpy(out).to(self.device_), torch.from_numpy(mask).to(self.device_)

    def _autocast(self):  # -> context manager
        if self.device_ == "cuda" and self.config.mixed_precision:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    @torch.inference_mode()
    def _cache_lower(self, data: Encoded) -> list[torch.Tensor]:
        """Outputs of the frozen lower layers per row (pooled when every layer is frozen).
        Rows with the same text share one computed (and stored) tensor."""
        self.network_.eval()
        unique, inverse = unique_texts(data.ids)
        lengths = np.fromiter((len(i) for i in unique), dtype=np.int64, count=len(unique))
        done: list[torch.Tensor | None] = [None] * len(unique)
        for batch in length_batches(lengths, self.config.eval_batch_size):
            ids, mask = self._pad([unique[i] for i in batch])
            with self._autocast():
                hidden = self.network_.hidden_after(ids, mask, self.frozen_layers_)
                if self.frozen_layers_ == self.network_.n_layers:
                    hidden = mean_pool(hidden, mask)
            hidden = hidden.float().cpu()
            for row, i in enumerate(batch):
                item = hidden[row] if hidden.dim() == 2 else hidden[row, : len(unique[i])]
                done[i] = item.to(torch.float16) if hidden.dim() == 3 else item.clone()
        return [done[i] for i in inverse]

    # ---- pooled text embeddings -----------------------------------------------------------
    def pooled_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The encoder's output mean-pooled over each text's tokens (texts x hidden size,
        float32): what the head reads beside the numbers. Equal texts get equal rows, so a
        caller scoring many rows that share few texts (the explainer) can compute each once."""
        ids = self.tokenizer_(list(texts), truncation=True, max_length=self.config.max_length)[
            "input_ids"
        ]
        self.network_.eval()
        return self._pooled_ids(ids).numpy()

    @torch.inference_mode()
    def logits_from_pooled(self, pooled: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        """`predict_logits(frame)` from the pooled embeddings of the frame's texts (one row
        per row of `frame`, as `pooled_embeddings` gives them): only the numeric tower and
        the head run."""
        self.network_.eval()
        return self._head_logits(torch.from_numpy(pooled), self.serializer.numeric_matrix(frame))

    @torch.inference_mode()
    def _pooled_ids(self, ids: list[list[int]]) -> torch.Tensor:
        """The encoder's pooled output per token sequence, computed once per distinct one."""
        unique, inverse = unique_texts(ids)
        lengths = np.fromiter((len(i) for i in unique), dtype=np.int64, count=len(unique))
        pooled = torch.empty((len(unique), self.network_.bert.config.hidden_size))
        for batch in length_batches(lengths, self.config.eval_batch_size):
            ids_t, mask = self._pad([unique[i] for i in batch])
            with self._autocast():
                hidden = self.network_.hidden_after(ids_t, mask, self.network_.n_layers)
                pooled[torch.from_numpy(batch)] = mean_pool(hidden, mask).float().cpu()
        return pooled[torch.from_numpy(inverse)]

    def _head_logits(self, pooled: torch.Tensor, numeric: np.ndarray) -> np.ndarray:
        with self._autocast():
            logits = self.network_.logits_from_pooled(
                pooled.to(self.device_), torch.from_numpy(numeric).to(self.device_)
            )
        return logits.float().cpu().numpy() + self.logit_offset_

    def _batch_logits(
        self, data: Encoded, batch: np.ndarray, cache: list[torch.Tensor] | None
    ) -> torch.Tensor:
        numeric = torch.from_numpy(data.numeric[batch]).to(self.device_)
        net = self.network_
        if cache is None:
            ids, mask = self._pad([data.ids[i] for i in batch])
            return net(ids, mask, numeric)
        rows = [cache[i] for i in batch]
        if rows[0].dim() == 1:
            return net.logits_from_pooled(torch.stack(rows).to(self.device_), numeric)
        hidden = nn.utils.rnn.pad_sequence(rows, batch_first=True).to(self.device_).float()
        lengths = torch.tensor([len(r) for r in rows], device=self.device_)
        mask = (torch.arange(hidden.shape[1], device=self.device_)[None] < lengths[:, None]).long()
        return net.logits_from_hidden(hidden, mask, numeric, self.frozen_layers_)

    @torch.inference_mode()
    def _logits(self, data: Encoded, cache: list[torch.Tensor] | None = None) -> np.ndarray:
        self.network_.eval()
        if cache is None:
            return self._head_logits(self._pooled_ids(data.ids), data.numeric)
        out = np.empty(len(data.ids), dtype=np.float32)
        for batch in length_batches(data.lengths, self.config.eval_batch_size):
            with self._autocast():
                out[batch] = self._batch_logits(data, batch, cache).float().cpu().numpy()
        return out + self.logit_offset_

    # ---- fitting --------------------------------------------------------------------------
    def fit(
        self,
        frame: pd.DataFrame,
        y: np.ndarray,
        val_frame: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
        progress: ProgressCallback | None = None,
        teacher: np.ndarray | None = None,
    ) -> ClickModel:
        """Fit on the labels `y`; with `teacher` (probabilities of the training rows from a
        model that did not see them) and a `teacher_weight`, on a blend of the two. Validation
        and early stopping use the labels alone."""
        cfg = self.config
        started = time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.device_ = pick_device(cfg.device)
        if not hasattr(self.serializer, "fields_"):
            self.serializer.fit(frame)
        self._build()
        self._warm_start()
        y = np.asarray(y, dtype=np.float32)
        weight = pos_weight(y) if cfg.imbalance == "pos_weight" else 1.0
        targets = soft_targets(y, teacher, cfg.teacher_weight)
        self.logit_offset_ = -math.log(weight)
        train = self.encode(frame)
        val = self.encode(val_frame) if val_frame is not None else None
        caching = self.frozen_layers_ > 0
        train_cache = self._cache_lower(train) if caching else None
        val_cache = self._cache_lower(val) if caching and val is not None else None

        steps_per_epoch = math.ceil(len(y) / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        optimizer = self._optimizer()
        scheduler = linear_schedule(
            optimizer,
            int(total * cfg.warmup_ratio),
            total,
            time_share=(lambda: (time.perf_counter() - started) / budget_s)
            if (budget_s := cfg.time_budget_s)
            else None,
        )
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, device=self.device_))
        scaler = torch.amp.GradScaler(
            enabled=self.device_ == "cuda"
            and cfg.mixed_precision
            and not torch.cuda.is_bf16_supported()
        )
        run = TrainState(total_steps=total)
        checkpoint = Path(cfg.checkpoint_dir) / CHECKPOINT_FILE if cfg.checkpoint_dir else None
        if checkpoint is not None and checkpoint.exists():
            run = self._load_checkpoint(checkpoint, optimizer, scheduler)
        eval_every = cfg.eval_every or steps_per_epoch
        y_t = torch.from_numpy(targets)
        average = WeightAverage(self.network_, cfg.average_decay, run.average)

        rows_seen = 0
        try:
            for epoch in range(run.epoch, cfg.epochs):
                batches = training_batches(train.lengths, cfg.batch_size, cfg.seed + epoch)
                for index, batch in enumerate(batches):
                    if epoch == run.epoch and index < run.batch_index:
                        continue  # already done before the checkpoint we resumed from
                    self.network_.train()
                    with self._autocast():
                        logits = self._batch_logits(train, batch, train_cache)
                        loss = loss_fn(logits.float(), y_t[batch].to(self.device_))
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(self._trainable(), cfg.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    rows_seen += len(batch)
                    run.advance(epoch, index + 1, float(loss.detach()))
                    average.update(run.step)
                    val_auc = None
                    if val is not None and run.step % eval_every == 0:
                        with average.applied():
                            val_auc = self._validate(val, y_val, val_cache, run)
                    if progress and (val_auc is not None or run.step % cfg.progress_every == 0):
                        progress(TrainProgress(run.step, epoch, total, run.last_loss, val_auc))
                    if checkpoint is not None and run.step % cfg.checkpoint_every == 0:
                        run.average = average.state()
                        self._save_checkpoint(checkpoint, optimizer, scheduler, run)
                    if run.bad_evals > cfg.patience or self._out_of_time(started):
                        run.stopped_early = True
                        run.stop_reason = (
                            "validation" if run.bad_evals > cfg.patience else "time_budget"
                        )
                        break
                if run.stopped_early:
                    break
                run.epoch, run.batch_index = epoch + 1, 0
            if val is not None and run.history and "val_auc" not in run.history[-1]:
                with average.applied():
                    self._validate(val, y_val, val_cache, run)
        except BaseException:
            # A cancelled or failed run leaves a checkpoint behind, so it can resume later.
            if checkpoint is not None:
                run.average = average.state()
                self._save_checkpoint(checkpoint, optimizer, scheduler, run)
            raise
        if run.best_state is not None:
            self.network_.load_state_dict(run.best_state, strict=False)
        elif average.active:
            average.copy_to_network()
        self.history_ = run.history
        self.best_val_auc_ = run.best_auc
        self.steps_ = run.step
        self.stopped_early_ = run.stopped_early
        # "validation" (no better validation AUC for `patience` validations), "time_budget",
        # or "epochs" (every pass done).
        self.stop_reason_ = run.stop_reason or "epochs"
        self.fit_seconds_ = time.perf_counter() - started
        self.train_rows_per_s_ = rows_seen / self.fit_seconds_
        return self

    def _validate(
        self, val: Encoded, y_val: Any, cache: list[torch.Tensor] | None, run: TrainState
    ) -> float:
        scores = self._logits(val, cache)
        auc = float(roc_auc_score(np.asarray(y_val), scores))
        run.record_eval(auc, self._trainable_state())
        return auc

    def _out_of_time(self, started: float) -> bool:
        budget = self.config.time_budget_s
        return budget is not None and time.perf_counter() - started > budget

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.network_.parameters() if p.requires_grad]

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.network_.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.network_.state_dict().items() if k in names}

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, param in self.network_.named_parameters():
            if not param.requires_grad:
                continue
            is_head = not name.startswith("encoder.")
            no_decay = param.dim() < 2
            groups.setdefault((is_head, no_decay), []).append(param)
        return torch.optim.AdamW(
            [
                {
                    "params": params,
                    "lr": cfg.head_learning_rate if is_head else cfg.learning_rate,
                    "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                }
                for (is_head, no_decay), params in sorted(groups.items())
            ]
        )

    # ---- checkpoints ----------------------------------------------------------------------
    def _save_checkpoint(self, path: Path, optimizer, scheduler, run: TrainState) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self._trainable_state(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "run": asdict(run),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "config": config_to_dict(self.config),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def _load_checkpoint(self, path: Path, optimizer, scheduler) -> TrainState:
        # On the CPU first: the RNG states must stay CPU byte tensors; the weights and the
        # optimizer state are copied onto the network's device by load_state_dict.
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.network_.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            # A checkpoint from a machine with more GPUs restores the ones this one has.
            for device, rng in enumerate(state["rng"]["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(rng, device)
        return TrainState(**state["run"])

    # ---- saving ---------------------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        """Weights (full: whole network; lora: adapter + head; frozen: head), tokenizer, config."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer_.save_pretrained(folder / "tokenizer")
        state = self.network_.state_dict()
        if self.config.mode == "full":
            save_file({k: v.contiguous() for k, v in state.items()}, folder / "network.safetensors")
        else:
            head = {k: v.contiguous() for k, v in state.items() if not k.startswith("encoder.")}
            save_file(head, folder / "head.safetensors")
        if self.config.mode == "lora":
            self.network_.encoder.save_pretrained(folder / "adapter")
        meta = {
            "train_config": config_to_dict(self.config),
            "serialize_config": config_to_dict(self.serializer.config),
            "serializer_state": json_ready(self.serializer.state(), allow_nan=True),
            "logit_offset": self.logit_offset_,
            "history": self.history_,
            "best_val_auc": self.best_val_auc_,
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path | str, device: str = "cpu") -> ClickModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text())
        config = config_from_dict(TrainConfig, meta["train_config"])
        serializer = TextSerializer.from_state(
            config_from_dict(SerializeConfig, meta["serialize_config"]), meta["serializer_state"]
        )
        model = cls(config, serializer)
        model.device_ = pick_device(device)
        encoder = load_encoder(config.base_model, config.num_layers)
        if config.mode == "lora":
            from peft import PeftModel

            encoder = PeftModel.from_pretrained(encoder, folder / "adapter")
        model.network_ = ClickNetwork(
            encoder,
            serializer.n_numeric,
            config.numeric_hidden,
            config.head_dropout,
            config.head_hidden,
        )
        weights = "network.safetensors" if config.mode == "full" else "head.safetensors"
        model.network_.load_state_dict(load_file(folder / weights), strict=config.mode == "full")
        model.network_.to(model.device_).eval()
        model.tokenizer_ = AutoTokenizer.from_pretrained(
            folder / "tokenizer", local_files_only=True
        )
        model.frozen_layers_ = 0
        model.logit_offset_ = meta["logit_offset"]
        model.history_ = meta["history"]
        model.best_val_auc_ = meta["best_val_auc"]
        return model

    # ---- scoring --------------------------------------------------------------------------
    def predict_logits(self, frame: pd.DataFrame) -> np.ndarray:
        return self._logits(self.encode(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(click) per row (1-D)."""
        return 1.0 / (1.0 + np.exp(-self.predict_logits(frame)))


@dataclass
class TrainState:
    """Where a run is; saved in checkpoints so a stopped run resumes at the same step."""

    total_steps: int
    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    last_loss: float = float("nan")
    best_auc: float = float("-inf")
    best_state: dict[str, torch.Tensor] | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    # The moving average of the trained weights (TrainConfig.average_decay), when kept.
    average: dict[str, torch.Tensor] | None = None

    def advance(self, epoch: int, batch_index: int, loss: float) -> None:
        self.step += 1
        self.epoch, self.batch_index, self.last_loss = epoch, batch_index, loss
        self.history.append({"step": self.step, "epoch": epoch, "loss": loss})

    def record_eval(self, auc: float, state: dict[str, torch.Tensor]) -> None:
        self.history[-1]["val_auc"] = auc
        if auc > self.best_auc:
            self.best_auc, self.best_state, self.bad_evals = auc, state, 0
        else:
            self.bad_evals += 1


class WeightAverage:
    """An exponential moving average of a network's trainable weights.

    `update` after each optimisation step; `applied()` swaps the average in for the duration
    of a `with` block (validation, keeping the best state) and the trained weights back
    after. The decay is ramped up over the first steps ((1 + step) / (10 + step)), so the
    average does not lean on the untrained start. Decay 0 turns it off (every call a no-op).
    """

    def __init__(
        self, network: nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None
    ) -> None:
        self.decay = decay
        self.params = {n: p for n, p in network.named_parameters() if p.requires_grad}
        self.active = decay > 0
        self.average: dict[str, torch.Tensor] = {}
        if self.active:
            source = state or {n: p.detach() for n, p in self.params.items()}
            self.average = {
                n: source[n].detach().clone().to(p.device) for n, p in self.params.items()
            }

    def update(self, step: int) -> None:
        if not self.active:
            return
        decay = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, param in self.params.items():
                self.average[name].lerp_(param.detach(), 1.0 - decay)

    def state(self) -> dict[str, torch.Tensor] | None:
        return {n: t.clone() for n, t in self.average.items()} if self.active else None

    def copy_to_network(self) -> None:
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(self.average[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        if not self.active:
            yield
            return
        trained = {n: p.detach().clone() for n, p in self.params.items()}
        self.copy_to_network()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self.params.items():
                    param.copy_(trained[name])


def linear_schedule(
    optimizer: torch.optim.Optimizer,
    warmup: int,
    total: int,
    time_share: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the base rate, then linear decay to zero at `total` steps or, with
    `time_share` (the share of a time budget used), at the end of the budget if that comes
    first: a run cut short by its budget still ends on a small, annealed learning rate."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        by_steps = (total - step) / max(total - warmup, 1)
        return max(0.0, min(by_steps, 1.0 - time_share()) if time_share else by_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def soft_targets(y: np.ndarray, teacher: np.ndarray | None, weight: float) -> np.ndarray:
    """(1 - weight) * labels + weight * teacher probabilities, as float32."""
    if teacher is None or weight == 0:
        return y
    if not 0 <= weight <= 1:
        raise ValueError(f"teacher_weight must be between 0 and 1, not {weight}")
    teacher = np.asarray(teacher, dtype=np.float32)
    if teacher.shape != y.shape:
        raise ValueError(f"teacher has {teacher.shape[0]} rows, the labels {y.shape[0]}")
    if not np.all(np.isfinite(teacher)) or teacher.min() < 0 or teacher.max() > 1:
        raise ValueError("teacher probabilities must be finite and between 0 and 1")
    return ((1 - weight) * y + weight * teacher).astype(np.float32)


def unique_texts(ids: list[list[int]]) -> tuple[list[list[int]], np.ndarray]:
    """The distinct token sequences and, per row, the index of its sequence among them."""
    index: dict[tuple[int, ...], int] = {}
    inverse = np.fromiter(
        (index.setdefault(tuple(seq), len(index)) for seq in ids), dtype=np.int64, count=len(ids)
    )
    return [list(seq) for seq in index], inverse


def length_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Rows sorted by length and cut into batches, so padding is minimal (for scoring)."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def training_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort within pools of 50 batches, cut,
    shuffle the batch order. The same seed gives the same batches (needed to resume)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
