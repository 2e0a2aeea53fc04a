"""Faults for scoring tests, imported by a test's Celery worker (``--include``): each part
of a scoring run takes TEST_PART_SECONDS longer (so that a test can kill a worker while it
scores one), and part TEST_FAIL_PART fails once (the first worker to reach it creates the
file TEST_FAIL_MARKER and fails; later attempts find the file and score)."""

import os
import time
from pathlib import Path

from marketing.services import scoring_chunks

_score = scoring_chunks.chunk_score


def _chunk_score_with_faults(chunk, on_batch=None):
    marker = os.environ.get("TEST_FAIL_MARKER", "")
    if chunk.number == int(os.environ.get("TEST_FAIL_PART", "0")) and marker:
        try:
            Path(marker).touch(exist_ok=False)
        except FileExistsError:
            pass
        else:
            raise RuntimeError("made to fail once by the test")
    time.sleep(float(os.environ.get("TEST_PART_SECONDS", "0")))
    return _score(chunk, on_batch)


scoring_chunks.chunk_score = _chunk_score_with_faults
