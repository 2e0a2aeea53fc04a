"""Customer (+ offer, + recent interactions) -> compact text, plus an optional numeric matrix.

The text uses the marketer's field names ("age 41 | job technician | ..."). Every token costs
training and scoring time, so numbers are rounded or shown as a quantile word ("euribor high"),
and fields that feed the numeric tower can be left out of the text altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

BIN_WORDS = ["lowest", "low", "mid", "high", "highest"]


@dataclass
class SerializeConfig:
    # Customer profile columns, in the order they appear in the text; None = every column
    # except `exclude` (order of the frame).
    fields: list[str] | None = None
    # Offer columns appended after the customer part (multi-offer data); empty = no offer part.
    offer_fields: list[str] = field(default_factory=list)
    # Column holding a list of recent offer names for the customer (None = no history part).
    history_field: str | None = None
    # How many recent interactions to show; each costs a few tokens.
    history_items: int = 3
    # Columns never used (target, ids, leaking columns such as the call duration).
    exclude: list[str] = field(default_factory=list)
    # Marketer-facing names per column; default is the column name with "_" and "." as spaces.
    # An empty label shows the value alone, for values that name themselves ("married").
    labels: dict[str, str] = field(default_factory=dict)
    # Numbers in the text: "round" (to `round_digits` significant digits), "bin" (quantile
    # word: lowest..highest) or "omit" (only in the numeric tower).
    numeric_text: Literal["round", "bin", "omit"] = "bin"
    # Significant digits kept when numeric_text is "round".
    round_digits: int = 2
    # Quantile bins when numeric_text is "bin" (at most 5, each shown as one word).
    n_bins: int = 5
    # Also produce a float matrix of the numeric fields (the numeric tower input).
    numeric_tower: bool = True
    # Numeric tower input per field: "standard" (one standardised column) or "piecewise"
    # (the standardised column plus a piecewise-linear encoding over quantile bins, so the
    # network can learn any bent response curve, and a flag per sentinel value).
    numeric_encoding: Literal["standard", "piecewise"] = "standard"
    # Quantile bins of the piecewise-linear encoding (fewer when a field has few values).
    piecewise_bins: int = 16
    # Values that mean "not applicable" rather than an amount, per column (bank: pdays 999 =
    # never contacted). They get their own 0/1 column and count as missing in the others.
    sentinels: dict[str, float] = field(default_factory=dict)
    # Find such values when fitting (`find_sentinel`) and add them to `sentinels`.
    detect_sentinels: bool = False
    # Separator between fields; " |" keeps field boundaries visible at one token.
    separator: str = " | "


# A value held by at least this share of the rows, lying this many times the spread of the
# other values beyond them, is a code ("999 = never contacted"), not an amount.
SENTINEL_MIN_SHARE = 0.05
SENTINEL_GAP = 5.0


def find_sentinel(values: np.ndarray) -> float | None:
    """The column's "not applicable" code, if it has one: its most common value, when that is
    its highest or lowest value and far outside the range of all the others."""
    values = values[~np.isnan(values)]
    if len(values) < 20:
        return None
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) < 3:
        return None
    top = distinct[np.argmax(counts)]
    if counts.max() < SENTINEL_MIN_SHARE * len(values) or top not in (distinct[0], distinct[-1]):
        return None
    rest = distinct[distinct != top]
    spread = rest[-1] - rest[0]
    gap = rest[0] - top if top == distinct[0] else top - rest[-1]
    return float(top) if spread > 0 and gap >= SENTINEL_GAP * spread else None


@dataclass
class TextSerializer:
    config: SerializeConfig = field(default_factory=SerializeConfig)

    def fit(self, frame: pd.DataFrame) -> TextSerializer:
        cfg = self.config
        fields = cfg.fields or [
            c
            for c in frame.columns
            if c not in cfg.exclude and c not in cfg.offer_fields and c != cfg.history_field
        ]
        self.fields_ = [f for f in fields if f not in cfg.exclude]
        used = self.fields_ + [f for f in cfg.offer_fields if f not in cfg.exclude]
        self.numeric_fields_ = [
            c
            for c in used
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if cfg.detect_sentinels:
            found = {
                c: value
                for c in self.numeric_fields_
                if c not in cfg.sentinels
                and (value := find_sentinel(frame[c].to_numpy(dtype=float))) is not None
            }
            # The config is saved with the model, so scoring treats them alike.
            self.config = cfg = replace(cfg, sentinels={**cfg.sentinels, **found})
        numeric = self._without_sentinels(frame[self.numeric_fields_].astype(float))
        self.means_ = numeric.mean().fillna(0.0).to_dict()
        self.stds_ = numeric.std().replace(0, 1.0).fillna(1.0).to_dict()
        qs = np.linspace(0, 1, cfg.n_bins + 1)[1:-1]
        self.bin_edges_ = {
            c: np.unique(np.nanquantile(numeric[c].to_numpy(), qs)).tolist()
            for c in self.numeric_fields_
        }
        self.piecewise_edges_: dict[str, list[float]] = {}
        if cfg.numeric_encoding == "piecewise":
            qs = np.linspace(0, 1, cfg.piecewise_bins + 1)
            for c in self.numeric_fields_:
                values = numeric[c].dropna().to_numpy()
                edges = np.unique(np.quantile(values, qs)) if len(values) else np.array([])
                self.piecewise_edges_[c] = edges.tolist()
        return self

    @property
    def n_numeric(self) -> int:
        """Width of the numeric tower input."""
        if not self.config.numeric_tower:
            return 0
        pieces = sum(max(len(e) - 1, 0) for e in getattr(self, "piecewise_edges_", {}).values())
        flags = sum(c in self.config.sentinels for c in self.numeric_fields_)
        return len(self.numeric_fields_) + pieces + flags

    def label(self, column: str) -> str:
        if column in self.config.labels:
            return self.config.labels[column]
        return column.replace("_", " ").replace(".", " ")

    def texts(self, frame: pd.DataFrame) -> list[str]:
        cfg = self.config
        parts = [self._field_strings(frame, c) for c in self.fields_]
        if cfg.history_field and cfg.history_field in frame:
            parts.append(self._history_strings(frame[cfg.history_field]))
        customer = _join_columns(parts, cfg.separator, len(frame))
        if not cfg.offer_fields:
            return customer
        offer = _join_columns(
            [self._field_strings(frame, c) for c in cfg.offer_fields if c in frame],
            cfg.separator,
            len(frame),
        )
        return [f"{c} || {o}" for c, o in zip(customer, offer, strict=True)]

    def numeric_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The numeric tower input, shape (rows, n_numeric), float32: standardised fields
        (missing -> mean), then the piecewise-linear pieces and sentinel flags if configured."""
        if not self.n_numeric:
            return np.zeros((len(frame), 0), dtype=np.float32)
        present = [c for c in self.numeric_fields_ if c in frame]
        raw = self._without_sentinels(frame[present].astype(float))
        standard = [
            np.clip(
                ((raw[c].fillna(self.means_[c]) - self.means_[c]) / self.stds_[c]).to_numpy(), -5, 5
            )
            if c in raw
            else np.zeros(len(frame))
            for c in self.numeric_fields_
        ]
        pieces = [
            _piecewise(raw[c].to_numpy() if c in raw else np.full(len(frame), np.nan), edges)
            for c, edges in self.piecewise_edges_.items()
            if len(edges) > 1
        ]
        flags = [
            (frame[c].to_numpy(dtype=float) == self.config.sentinels[c]).astype(float)
            if c in frame
            else np.zeros(len(frame))
            for c in self.numeric_fields_
            if c in self.config.sentinels
        ]
        return np.column_stack(standard + pieces + flags).astype(np.float32)

    def _without_sentinels(self, numeric: pd.DataFrame) -> pd.DataFrame:
        for c, value in self.config.sentinels.items():
            if c in numeric:
                numeric[c] = numeric[c].mask(numeric[c] == value)
        return numeric

    def state(self) -> dict:
        """The fitted state as JSON-ready data (saved beside a model)."""
        return {
            "fields_": self.fields_,
            "numeric_fields_": self.numeric_fields_,
            "means_": self.means_,
            "stds_": self.stds_,
            "bin_edges_": self.bin_edges_,
            "piecewise_edges_": self.piecewise_edges_,
        }

    @classmethod
    def from_state(cls, config: SerializeConfig, state: dict) -> TextSerializer:
        serializer = cls(config)
        serializer.piecewise_edges_ = {}  # models saved before the piecewise encoding
        for name, value in state.items():
            setattr(serializer, name, value)
        return serializer

    def _field_strings(self, frame: pd.DataFrame, column: str) -> list[str]:
        if column not in frame:
            return [""] * len(frame)
        values = frame[column]
        label = self.label(column)
        if column in self.numeric_fields_:
            if self.config.numeric_text == "omit":
                return [""] * len(frame)
            rendered = self._render_numbers(column, values.astype(float).to_numpy())
        else:
            rendered = ["" if _missing(v) else str(v) for v in values.tolist()]
        return [(f"{label} {v}" if label else v) if v else "" for v in rendered]

    def _render_numbers(self, column: str, values: np.ndarray) -> list[str]:
        if self.config.numeric_text == "round":
            digits = self.config.round_digits
            return ["" if np.isnan(v) else _round_significant(v, digits) for v in values]
        edges = self.bin_edges_[column]
        # Fewer distinct edges than bins (many equal values): spread the words over what is left.
        picks = np.linspace(0, len(BIN_WORDS) - 1, len(edges) + 1).round().astype(int)
        words = [BIN_WORDS[i] for i in picks] if len(edges) else ["mid"]
        idx = np.searchsorted(edges, values, side="left")
        return ["" if np.isnan(v) else words[i] for v, i in zip(values, idx, strict=True)]

    def _history_strings(self, histories: pd.Series) -> list[str]:
        n = self.config.history_items
        out = []
        for items in histories.tolist():
            recent = [] if _missing(items) else list(items)[-n:]
            out.append("recent " + ", ".join(map(str, recent)) if recent else "")
        return out


def _piecewise(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """One column per bin between consecutive edges: 0 below the bin, 1 above it, linear
    inside; a missing value is 0.5 in every column (the middle, no information)."""
    lo, hi = np.asarray(edges[:-1]), np.asarray(edges[1:])
    out = np.clip((values[:, None] - lo) / (hi - lo), 0.0, 1.0)
    out[np.isnan(values)] = 0.5
    return out


def _round_significant(value: float, digits: int) -> str:
    """Plain digits, no exponent: 4.857 -> "4.9", 5191 -> "5200", 999 -> "1000"."""
    if value == 0:
        return "0"
    decimals = digits - 1 - int(np.floor(np.log10(abs(value))))
    text = f"{round(value, decimals):.{max(decimals, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _join_columns(columns: list[list[str]], separator: str, n: int) -> list[str]:
    return (
        [separator.join(p for p in parts if p) for parts in zip(*columns, strict=True)]
        if (columns)
        else [""] * n
    )
