"""Imports every module that registers a job runner, so workers know all job kinds."""
from marketing.services import ingest  # noqa: F401  (CSV import)
