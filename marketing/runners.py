"""Imports every module that registers a job runner, so workers know all job kinds."""

from marketing.services import (  # noqa: F401  (imported for their runners)
    audience_results,  # an audience's contacted members against its control group
    audiences,  # freezing audiences
    erasure,  # erasing a customer (a data steward's request)
    explanations,  # field-level explanations of click models
    exports,  # audience exports to ad platforms
    figures,  # figures over the customer base for pages (counts, audience diversity)
    ingest,  # CSV import
    monitoring,  # drift checks of the models in use
    plans,  # campaign plan uplift
    recommendations,  # offer lists re-ranked for diversity
    scoring,  # click model scores
    training,  # click model training
)
