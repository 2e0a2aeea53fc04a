"""Conventions shared by every recengine component.

Each component has a config dataclass (one comment per field) and, where it learns, a `fit`
that returns self and sets attributes ending in `_`. Configs are plain data, so a run can be
recorded as JSON and rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from typing import Any, TypeVar

import numpy as np

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (paths become strings)."""
    return json_ready(dataclasses.asdict(config))


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config, ignoring keys an older or newer version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def json_ready(value: Any, *, allow_nan: bool = False) -> Any:
    """`value` as plain JSON data: dicts with text keys, lists, text, numbers, booleans and None.

    Numpy scalars and arrays become Python numbers and lists, paths and any other value their
    text. NaN and infinities become None, since JSON has no such numbers and PostgreSQL's
    jsonb refuses them; `allow_nan=True` keeps them, for files that only Python's json reads
    back (it writes them as NaN and Infinity).
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v, allow_nan=allow_nan) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v, allow_nan=allow_nan) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if allow_nan or math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> str:
    """ "auto" means CUDA when a GPU is present, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_label(device: str) -> str:
    """What a device is, for people: "GPU (NVIDIA H200)" or "CPU"."""
    if device.startswith("cuda"):
        import torch

        return f"GPU ({torch.cuda.get_device_name(torch.device(device))})"
    return device.upper()
