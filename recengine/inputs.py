"""Checks of the frames and ids that recengine functions take: each error names the row and
column at fault, in the user's own ids and labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd


def shown(value: Any) -> str:
    """An id or cell as the user wrote it (numpy scalars as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"Missing column(s) {missing}; the frame has {list(frame.columns)}.")


def numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as floats; a value that is not a number is an error naming its row."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        label = raw.index[int(np.flatnonzero(bad.to_numpy())[0])]
        raise ValueError(
            f"Row {shown(label)}, column {column!r}: {shown(raw[label])} is not a number."
        )
    result = values.to_numpy(dtype=np.float64)
    if np.isinf(result).any():
        label = raw.index[int(np.flatnonzero(np.isinf(result))[0])]
        raise ValueError(f"Row {shown(label)}, column {column!r}: the score is infinite.")
    return result
