"""What the benchmarks share: a quiet torch on a fixed number of threads, timestamped progress
on stderr (stdout carries only the JSON), and the machine's load next to every timing."""

from __future__ import annotations

import os
import sys
import time
import warnings


def quiet_torch(threads: int) -> None:
    """Fix torch's CPU threads and silence the progress bars and warnings of the libraries."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: on 2 cores anything above ~2 slows every timing."""
    return [round(value, 2) for value in os.getloadavg()]
