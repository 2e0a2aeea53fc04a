"""Imports every module that registers a job runner, so workers know all job kinds."""

from marketing.services import (  # noqa: F401  (imported for their runners)
    explanations,  # field-level explanations of click models
    exports,  # audience exports to ad platforms
    ingest,  # CSV import
    plans,  # campaign plan uplift
    recommendations,  # offer lists re-ranked for diversity
    scoring,  # click model scores
    training,  # click model training
)
