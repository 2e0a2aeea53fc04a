"""Conventions shared by every recengine component.

Each component has a config dataclass (one comment per field) and, where it learns, a `fit`
that returns self and sets attributes ending in `_`. Configs are plain data, so a run can be
recorded as JSON and rebuilt from it.
"""

from __future__ import annotations

import dataclasses
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


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> str:
    """"auto" means CUDA when a GPU is present, else CPU."""
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
