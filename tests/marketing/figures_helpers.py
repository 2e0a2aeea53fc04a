"""Run the counting jobs at once (a test's transaction never commits, so they would wait)."""

from marketing.models import Audience, Job, Segment
from marketing.services.figures import (
    audience_figures_refresh,
    overview_refresh,
    segment_figures_refresh,
)
from marketing.services.jobs import run_job


def _ran(job: Job) -> Job:
    finished = run_job(job.pk)
    assert finished is not None and finished.status == Job.Status.SUCCEEDED, job.error
    return finished


def counted_segment(segment: Segment) -> Job:
    return _ran(segment_figures_refresh(segment=segment, by=None))


def counted_overview() -> Job:
    return _ran(overview_refresh(by=None))


def counted_audience(audience: Audience) -> Job:
    return _ran(audience_figures_refresh(audience=audience, by=None))
