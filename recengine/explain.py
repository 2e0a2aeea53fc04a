"""Why did a customer get this score? Field-level SHAP explanations of click models.

Contributions are given per INPUT FIELD the marketer uploaded ("age", "job", "previous
outcome"), never per word piece, and in log-odds (logit) space, where they add up:

    base_value + sum(contribution of every field) == the model's logit for the customer

API (plain data in, plain data out; no Django):

- ``field_explainer(model, config) -> Explainer``: the right explainer for a fitted model.
  ``ClickModel`` (BERT) and any model with ``predict_logits`` or ``predict_proba`` get a
  ``FieldExplainer``; a ``TabularBaseline`` gets a ``BaselineExplainer``.
- ``explainer.fit(reference_frame) -> explainer``: picks the background rows (customers a
  score is compared with) from e.g. the training rows.
- ``explainer.explain(frame, row_ids=None) -> list[Explanation]``: one explanation per row;
  ``Explanation.to_dict()`` is JSON-ready (for the API and a waterfall chart).
- ``global_importance(explainer, frame, progress=None) -> GlobalImportance``: mean |SHAP|
  per field over a sample, reporting ``progress(percent, message)`` (a Job's progress).

How the BERT model is explained (``FieldExplainer``): every field value is coded as an
integer, so a customer is a vector of field codes. SHAP's permutation explainer switches
fields between the customer and background rows (``shap.maskers.Independent`` over the code
matrix); each masked code row is decoded into a DataFrame row and scored by the model through
its own serialisation (text + numeric tower). Masked rows seen before (the same codes) are
answered from a cache, so background-only rows and repeated values cost nothing; for a
``ClickModel`` on CPU the encoder also runs only once per distinct text
(``TextEmbeddingScorer``), so switching a numeric-tower field costs only the head.

Cost per customer: about ``permutations * (2 * fields + 1) * background_size`` masked rows
(fewer where the customer and a background row share values). Local accuracy is exact by
construction for every method; ``Explanation.tolerance`` states the bound that is checked
(1e-3 logit for the permutation explainer, 1e-6 for TreeSHAP and linear SHAP) and
``Explanation.local_accuracy_error`` the measured gap.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recengine.config import json_ready

# Local accuracy of the permutation explainer holds by construction (each permutation's
# differences telescope to f(customer) - f(background)); what is left is float32 rounding of
# the model's scores, far below this.
PERMUTATION_TOLERANCE = 1e-3
# TreeSHAP and the linear explanation are exact up to float64 rounding.
EXACT_TOLERANCE = 1e-6

Progress = Callable[[float, str], None]


class LocalAccuracyError(AssertionError):
    """base value + contributions != model output beyond the stated tolerance."""


@dataclass
class ExplainConfig:
    # Background rows a customer is compared with (sampled from the reference frame); the
    # cost of one explanation grows linearly with it.
    background_size: int = 20
    # Antithetic permutations per customer (each walks every field forward and back);
    # evaluations per customer are at most permutations * (2 * fields + 1) * background rows.
    permutations: int = 1
    # Seed of the background sample and the permutations.
    seed: int = 0
    # Masked rows per model call.
    batch_size: int = 4096
    # Model outputs remembered by masked row (across customers); cleared when full.
    cache_rows: int = 500_000
    # Fields explained; None = the model's own input fields.
    fields: list[str] | None = None
    # Marketer-facing names per field; default: the model serialiser's label, else the
    # column name with "_" and "." as spaces.
    labels: dict[str, str] = field(default_factory=dict)
    # Raise LocalAccuracyError when an explanation misses the model output by more than
    # the method's tolerance (False: only record the error on the explanation).
    check_local_accuracy: bool = True
    # BERT click model: run the encoder once per distinct text and keep the pooled text
    # embeddings (masked rows that differ only in numeric-tower fields, or repeat another
    # customer's text, then cost only the head). CPU only; checked against predict_logits.
    reuse_text_embeddings: bool = True
    # Distinct texts whose embeddings are kept; cleared when full.
    text_cache_size: int = 200_000


@dataclass
class FieldContribution:
    field: str  # column name in the uploaded data
    label: str  # marketer-facing name
    value: Any  # the customer's value (JSON-ready: str, int, float or None)
    contribution: float  # change of the logit this field causes, relative to the base value


@dataclass
class Explanation:
    """One customer's score split into field contributions (logit space), largest first."""

    row_id: Any
    base_value: float  # mean logit of the background rows
    logit: float  # the model's logit for this customer
    probability: float  # sigmoid(logit)
    contributions: list[FieldContribution]  # sorted by |contribution|, largest first
    method: str  # "permutation", "tree" or "linear"
    tolerance: float  # guaranteed |base + sum - logit| bound of the method
    local_accuracy_error: float  # measured |base + sum - logit|

    @property
    def base_probability(self) -> float:
        return _sigmoid(self.base_value)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["row_id"] = json_ready(self.row_id)
        out["base_probability"] = self.base_probability
        return out


@dataclass
class FieldImportance:
    field: str
    label: str
    mean_abs: float  # mean |contribution| in logit units over the sample


@dataclass
class GlobalImportance:
    fields: list[FieldImportance]  # sorted, most important first
    rows: int  # customers explained
    method: str
    seconds: float
    max_local_accuracy_error: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def top(self, n: int = 5) -> list[str]:
        return [f.field for f in self.fields[:n]]


class Explainer(Protocol):
    def fit(self, reference: pd.DataFrame) -> Explainer: ...

    def explain(
        self, frame: pd.DataFrame, row_ids: Sequence | None = None
    ) -> list[Explanation]: ...


def field_explainer(model: Any, config: ExplainConfig | None = None) -> Explainer:
    """A TreeSHAP / linear explainer for a ``TabularBaseline``, the field-masking permutation
    explainer for anything else (``ClickModel`` or a model with predict_logits/predict_proba)."""
    from recengine.baseline import TabularBaseline

    config = config or ExplainConfig()
    if isinstance(model, TabularBaseline):
        return BaselineExplainer(model, config)
    return FieldExplainer(model, config)


# ---- the field-masking explainer (BERT click model or any scorer) -----------------------------
@dataclass
class FieldExplainer:
    """Permutation SHAP over input fields, for any model scoring a DataFrame.

    ``model`` needs ``predict_logits(frame)`` or ``predict_proba(frame)`` (turned into
    logits). Tolerance: ``PERMUTATION_TOLERANCE`` (1e-3 logit); the estimate of each field's
    share is approximate (more ``permutations`` / ``background_size`` = closer), the sum is not.
    """

    model: Any
    config: ExplainConfig = field(default_factory=ExplainConfig)

    def fit(self, reference: pd.DataFrame) -> FieldExplainer:
        cfg = self.config
        self.fields_ = cfg.fields or model_fields(self.model)
        missing = [f for f in self.fields_ if f not in reference]
        if missing:
            raise ValueError(f"The reference rows lack the model's fields {missing}")
        self.labels_ = {f: field_label(self.model, f, cfg.labels) for f in self.fields_}
        rng = np.random.default_rng(cfg.seed)
        n = min(cfg.background_size, len(reference))
        if n == 0:
            raise ValueError("The reference frame has no rows to take a background from")
        picks = np.sort(rng.choice(len(reference), n, replace=False))
        self.background_ = reference.iloc[picks][self.fields_].reset_index(drop=True)
        self._codebook = _Codebook(self.fields_, self.background_)
        self._cache: dict[bytes, float] = {}
        self._logits = _model_scorer(self.model, cfg)
        if self._logits is not model_logits:
            _check_scorer(self.model, self._logits, self.background_)
        self.model_calls_ = 0
        self.rows_scored_ = 0
        self.base_value_ = float(np.mean(self._score(self._codebook.encode(self.background_))))
        return self

    def explain(self, frame: pd.DataFrame, row_ids: Sequence | None = None) -> list[Explanation]:
        """Explanations of every row of ``frame`` (ids: ``row_ids`` or the frame's index)."""
        import shap

        cfg = self.config
        _check_fields(frame, self.fields_)
        ids = list(frame.index) if row_ids is None else list(row_ids)
        if len(ids) != len(frame):
            raise ValueError(f"{len(ids)} row ids for {len(frame)} rows")
        codes = self._codebook.encode(frame[self.fields_])
        masker = shap.maskers.Independent(
            self._codebook.encode(self.background_).astype(float), max_samples=len(self.background_)
        )
        evals = cfg.permutations * (2 * len(self.fields_) + 1)
        logits = self._score(codes)
        out = []
        outside_state = np.random.get_state()  # shap seeds and draws from numpy's global RNG
        try:
            explainer = shap.explainers.Permutation(
                lambda masked: self._score(masked.astype(np.int64)), masker, seed=cfg.seed
            )
            for i in range(len(frame)):
                # Seeded by the customer's values: the same customer gets the same explanation
                # whichever rows it is explained with.
                np.random.seed(_row_seed(cfg.seed, frame[self.fields_].iloc[i].tolist()))
                # One row per call: shap 0.51's Explainer.__call__ reuses its `main_effects`
                # name for a list, so from a call's second row on it would also evaluate every
                # field's main effect (more model rows, never used here).
                result = explainer(
                    codes[i : i + 1].astype(float),
                    max_evals=evals,
                    batch_size=cfg.batch_size,
                    silent=True,
                )
                out.append(
                    self._explanation(
                        ids[i],
                        frame.iloc[i],
                        result.values[0],
                        float(result.base_values[0]),
                        float(logits[i]),
                    )
                )
        finally:
            np.random.set_state(outside_state)
        return out

    def _explanation(
        self, row_id, row: pd.Series, values: np.ndarray, base: float, logit: float
    ) -> Explanation:
        return _make_explanation(
            row_id,
            row,
            self.fields_,
            self.labels_,
            values,
            base,
            logit,
            "permutation",
            PERMUTATION_TOLERANCE,
            self.config.check_local_accuracy,
        )

    def _score(self, codes: np.ndarray) -> np.ndarray:
        """Logits of code rows; rows scored before come from the cache, the rest in one call
        per ``batch_size`` rows (duplicates within the call are scored once)."""
        codes = np.ascontiguousarray(codes, dtype=np.int32)
        keys = [r.tobytes() for r in codes]
        out = np.empty(len(keys), dtype=np.float64)
        todo: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self._cache.get(key)
            if hit is None:
                todo.setdefault(key, []).append(i)
            else:
                out[i] = hit
        if todo:
            if len(self._cache) + len(todo) > self.config.cache_rows:
                self._cache.clear()
            first = np.array([rows[0] for rows in todo.values()])
            for start in range(0, len(first), self.config.batch_size):
                part = first[start : start + self.config.batch_size]
                logits = self._logits(self.model, self._codebook.decode(codes[part]))
                self.model_calls_ += 1
                self.rows_scored_ += len(part)
                for i, value in zip(part, logits, strict=True):
                    self._cache[keys[i]] = float(value)
            for key, rows in todo.items():
                out[rows] = self._cache[key]
        return out


def _model_scorer(model: Any, config: ExplainConfig) -> Callable[[Any, pd.DataFrame], np.ndarray]:
    from recengine.train import ClickModel

    # On a GPU the model scores under autocast and is fast anyway: use its own path there.
    if config.reuse_text_embeddings and isinstance(model, ClickModel) and model.device_ == "cpu":
        return TextEmbeddingScorer(config.text_cache_size)
    return model_logits


def _check_scorer(model: Any, scorer: Callable, rows: pd.DataFrame) -> None:
    """The shortcut must give the model's own logits; a model whose network no longer has
    the encoder -> pooled text -> head shape fails here loudly, not with wrong numbers."""
    fast, slow = scorer(model, rows), model_logits(model, rows)
    worst = float(np.max(np.abs(fast - slow)))
    if worst > 1e-4:
        raise RuntimeError(
            f"Text-embedding reuse differs from predict_logits by {worst:.2e}; explain with "
            "ExplainConfig(reuse_text_embeddings=False)"
        )


class TextEmbeddingScorer:
    """ClickModel logits with the encoder run once per distinct text: texts come from the
    model's serialiser, pooled embeddings (``ClickModel.pooled_embeddings``) are cached by
    text, and only the numeric tower and head (``ClickModel.logits_from_pooled``) run per
    row."""

    def __init__(self, cache_size: int):
        self.cache_size = cache_size
        self._pooled: dict[str, np.ndarray] = {}

    def __call__(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        texts = model.serializer.texts(frame)
        new = sorted({t for t in texts if t not in self._pooled}, key=len)
        if len(self._pooled) + len(new) > self.cache_size:
            self._pooled.clear()
            new = sorted(set(texts), key=len)
        if new:
            self._pooled.update(zip(new, model.pooled_embeddings(new), strict=True))
        pooled = np.stack([self._pooled[t] for t in texts])
        return model.logits_from_pooled(pooled, frame).astype(np.float64)


class _Codebook:
    """Field values <-> integer codes; equal values share a code, so SHAP skips fields where
    the customer and a background row agree, and the cache recognises repeated rows."""

    def __init__(self, fields: list[str], seed_rows: pd.DataFrame):
        self.fields = fields
        self._index: list[dict[Hashable, int]] = [{} for _ in fields]
        self._values: list[list[Any]] = [[] for _ in fields]
        self._dtypes = [seed_rows[f].dtype for f in fields]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.fields)), dtype=np.int32)
        for j, name in enumerate(self.fields):
            index, values = self._index[j], self._values[j]
            for i, value in enumerate(frame[name].tolist()):
                key = _hashable(value)
                code = index.get(key)
                if code is None:
                    code = index[key] = len(values)
                    values.append(value)
                out[i, j] = code
        return out

    def decode(self, codes: np.ndarray) -> pd.DataFrame:
        columns = {}
        for j, name in enumerate(self.fields):
            table = pd.Series(self._values[j], dtype=object)
            column = table.to_numpy()[codes[:, j]]
            dtype = self._dtypes[j]
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            columns[name] = pd.array(column, dtype=float) if numeric else column
        return pd.DataFrame(columns)


# ---- the baseline (LightGBM: TreeSHAP, logistic: linear SHAP) ---------------------------------
@dataclass
class BaselineExplainer:
    """Exact SHAP for ``TabularBaseline``: TreeSHAP (LightGBM's path-dependent algorithm; the
    base value is the trees' expected logit) or linear SHAP against the background rows
    (logistic; one-hot columns are summed back into their field). Tolerance: EXACT_TOLERANCE."""

    model: Any
    config: ExplainConfig = field(default_factory=ExplainConfig)

    def fit(self, reference: pd.DataFrame) -> BaselineExplainer:
        import shap

        cfg, model = self.config, self.model
        self.fields_ = list(model.columns_)
        if cfg.fields and set(cfg.fields) != set(self.fields_):
            raise ValueError(f"The baseline explains all its columns {self.fields_}")
        self.labels_ = {f: field_label(model, f, cfg.labels) for f in self.fields_}
        _check_fields(reference, self.fields_)
        rng = np.random.default_rng(cfg.seed)
        picks = np.sort(
            rng.choice(len(reference), min(cfg.background_size, len(reference)), replace=False)
        )
        self.background_ = reference.iloc[picks][self.fields_].reset_index(drop=True)
        if model.config.kind == "lightgbm":
            self.method_ = "tree"
            self._explainer = shap.TreeExplainer(model.model_)
        else:
            self.method_ = "linear"
            prep, linear = model.model_.named_steps["prep"], model.model_.named_steps["model"]
            background = _dense(prep.transform(self.background_))
            self._explainer = shap.LinearExplainer(
                linear, shap.maskers.Independent(background, max_samples=len(background))
            )
            self._groups = _one_hot_groups(prep, self.fields_)
        return self

    def explain(self, frame: pd.DataFrame, row_ids: Sequence | None = None) -> list[Explanation]:
        _check_fields(frame, self.fields_)
        ids = list(frame.index) if row_ids is None else list(row_ids)
        if self.method_ == "tree":
            raw = self._explainer(lightgbm_input(self.model, frame))
            values = np.asarray(raw.values, dtype=float)
            base = np.broadcast_to(np.asarray(raw.base_values, dtype=float), len(frame))
            if values.ndim == 3:  # some shap versions return one slice per class
                values, base = values[..., 1], np.asarray(raw.base_values)[:, 1]
        else:
            prep = self.model.model_.named_steps["prep"]
            raw = self._explainer(_dense(prep.transform(frame[self.fields_])))
            values = np.column_stack([raw.values[:, g].sum(axis=1) for g in self._groups])
            base = np.broadcast_to(np.asarray(raw.base_values, dtype=float), len(frame))
        logits = model_logits(self.model, frame)
        return [
            _make_explanation(
                ids[i],
                frame.iloc[i],
                self.fields_,
                self.labels_,
                values[i],
                float(base[i]),
                float(logits[i]),
                self.method_,
                EXACT_TOLERANCE + _proba_rounding(logits[i]),
                self.config.check_local_accuracy,
            )
            for i in range(len(frame))
        ]


def lightgbm_input(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the baseline's LightGBM sees it: training categories on text columns."""
    x = frame[model.columns_].copy()
    for c in model.categorical_:
        x[c] = pd.Categorical(x[c].astype(str), categories=model.categories_[c])
    return x


def _one_hot_groups(prep: Any, fields: list[str]) -> list[np.ndarray]:
    """Output columns of the logistic pipeline's ColumnTransformer belonging to each field."""
    owner: list[str] = []
    for name, transformer, columns in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if hasattr(transformer, "categories_"):
            for column, cats in zip(columns, transformer.categories_, strict=True):
                owner.extend([column] * len(cats))
        else:
            owner.extend(columns)
    owned = np.array(owner)
    return [np.flatnonzero(owned == f) for f in fields]


# ---- global importance ------------------------------------------------------------------------
def global_importance(
    explainer: Explainer,
    frame: pd.DataFrame,
    progress: Progress | None = None,
    chunk_rows: int = 50,
) -> GlobalImportance:
    """Mean |contribution| per field over the rows of ``frame`` (pass a sample), explained in
    chunks of ``chunk_rows``; ``progress(percent, message)`` after each chunk."""
    started = time.perf_counter()
    totals: dict[str, float] = {}
    labels: dict[str, str] = {}
    worst, method, done = 0.0, "", 0
    for start in range(0, len(frame), chunk_rows):
        for exp in explainer.explain(frame.iloc[start : start + chunk_rows]):
            method = exp.method
            worst = max(worst, exp.local_accuracy_error)
            for c in exp.contributions:
                totals[c.field] = totals.get(c.field, 0.0) + abs(c.contribution)
                labels[c.field] = c.label
        done = min(start + chunk_rows, len(frame))
        if progress is not None:
            progress(100.0 * done / len(frame), f"Explained {done} of {len(frame)} customers")
    fields = sorted(
        (FieldImportance(f, labels[f], total / max(done, 1)) for f, total in totals.items()),
        key=lambda item: -item.mean_abs,
    )
    return GlobalImportance(fields, done, method, time.perf_counter() - started, worst)


# ---- shared helpers ---------------------------------------------------------------------------
def model_fields(model: Any) -> list[str]:
    """The input fields a model reads: a click model's serialised fields, a baseline's
    columns; other models must name them in ExplainConfig.fields."""
    serializer = getattr(model, "serializer", None)
    if serializer is not None and hasattr(serializer, "fields_"):
        cfg = serializer.config
        extra = list(cfg.offer_fields) + ([cfg.history_field] if cfg.history_field else [])
        return list(serializer.fields_) + [f for f in extra if f not in cfg.exclude]
    if hasattr(model, "columns_"):
        return list(model.columns_)
    raise ValueError("Name the fields to explain in ExplainConfig.fields for this model")


def field_label(model: Any, column: str, labels: dict[str, str]) -> str:
    """The marketer's name of a field; never empty (the serialiser leaves out some labels in
    the text, such as "job", whose values name themselves)."""
    if labels.get(column):
        return labels[column]
    serializer = getattr(model, "serializer", None)
    label = serializer.label(column) if serializer is not None else ""
    return label or column.replace("_", " ").replace(".", " ")


def model_logits(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's logit per row (predict_logits, else the logit of predict_proba)."""
    if hasattr(model, "predict_logits"):
        return np.asarray(model.predict_logits(frame), dtype=np.float64)
    p = np.clip(np.asarray(model.predict_proba(frame), dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def _make_explanation(
    row_id: Any,
    row: pd.Series,
    fields: list[str],
    labels: dict[str, str],
    values: np.ndarray,
    base: float,
    logit: float,
    method: str,
    tolerance: float,
    check: bool,
) -> Explanation:
    error = abs(base + float(np.sum(values)) - logit)
    if check and not error <= tolerance:
        raise LocalAccuracyError(
            f"Row {row_id!r}: base {base:.6f} + contributions {float(np.sum(values)):.6f} "
            f"misses the model's logit {logit:.6f} by {error:.2e} (> {tolerance:.0e})"
        )
    contributions = [
        FieldContribution(f, labels[f], json_ready(row[f]), float(v))
        for f, v in zip(fields, values, strict=True)
    ]
    contributions.sort(key=lambda c: -abs(c.contribution))
    return Explanation(
        row_id, base, logit, _sigmoid(logit), contributions, method, tolerance, error
    )


def _proba_rounding(logit: float) -> float:
    """Logits recovered from probabilities near 0 or 1 lose digits (float64 has ~1e-16
    resolution around p): allow for that instead of hiding it."""
    p = _sigmoid(logit)
    return 1e-15 / max(min(p, 1 - p), 1e-15)


def _check_fields(frame: pd.DataFrame, fields: list[str]) -> None:
    missing = [f for f in fields if f not in frame]
    if missing:
        raise ValueError(f"The rows to explain lack the columns {missing}")


def _row_seed(seed: int, values: list) -> int:
    return zlib.crc32(repr((seed, [_hashable(v) for v in values])).encode())


def _hashable(value: Any) -> Hashable:
    if isinstance(value, list | tuple | np.ndarray):
        return ("__seq__", *map(_hashable, value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("__missing__",)
    return value


def _dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
