"""What is ahead of a job in the queue and how long it has left."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.models import Job
from marketing.selectors.jobs import job_outlook
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db


def _job(kind, status=Job.Status.QUEUED, *, progress=0, started_s_ago=None, **params):
    started = timezone.now() - timedelta(seconds=started_s_ago) if started_s_ago else None
    return Job.objects.create(
        kind=kind,
        title=f"{kind} job",
        status=status,
        progress=progress,
        started_at=started,
        params=params,
    )


def test_a_running_job_says_how_long_it_has_left_at_its_own_pace(settings):
    settings.JOB_QUEUE = "thread"
    job = _job(Job.Kind.TRAIN, Job.Status.RUNNING, progress=25, started_s_ago=60)
    outlook = job_outlook(job)
    assert 175 <= outlook.seconds_left <= 185  # 60 s for 25 %: 180 s for the other 75 %
    assert outlook.text == "About 3 min left at the current pace"
    just_started = _job(Job.Kind.TRAIN, Job.Status.RUNNING, progress=1, started_s_ago=2)
    assert job_outlook(just_started).text == ""  # no pace to read yet


def test_a_queued_job_names_the_jobs_ahead_in_its_lane(settings):
    settings.JOB_QUEUE = "thread"
    training = _job(Job.Kind.TRAIN, Job.Status.RUNNING, progress=50, started_s_ago=100)
    _job(Job.Kind.SEGMENT_COUNT)  # the short lane: not ahead of an import
    waiting_import = _job(Job.Kind.IMPORT)
    mine = _job(Job.Kind.SCORE)
    _job(Job.Kind.IMPORT)  # created after: behind it
    outlook = job_outlook(mine)
    assert outlook.ahead == 2
    assert outlook.at_least  # the waiting import has no pace yet
    assert 95 <= outlook.seconds_left <= 105
    assert outlook.text.startswith("Waiting: 2 jobs ahead (")
    assert f"{training} – 50 %, about 2 min left" in outlook.text
    assert f"{waiting_import} – waiting" in outlook.text
    assert outlook.text.endswith("at least 2 min before it starts")
    count = _job(Job.Kind.OVERVIEW)
    assert job_outlook(count).ahead == 1  # the segment count, in its own lane


def test_celery_jobs_wait_behind_those_sent_to_the_same_queue(settings):
    settings.JOB_QUEUE = "celery"
    _job(Job.Kind.TRAIN, Job.Status.RUNNING, progress=10, started_s_ago=30, queue="gpu")
    _job(Job.Kind.IMPORT, queue="default")
    mine = _job(Job.Kind.SCORE, queue="gpu")
    outlook = job_outlook(mine)
    assert outlook.ahead == 1 and not outlook.at_least


def test_the_job_api_gives_one_jobs_outlook(settings, marketer):
    settings.JOB_QUEUE = "thread"
    job = _job(Job.Kind.TRAIN, Job.Status.RUNNING, progress=50, started_s_ago=120)
    client = logged_in(marketer)
    one = client.get(f"/api/jobs/{job.pk}/").json()
    assert one["outlook"] == "About 2 min left at the current pace"
    listed = client.get("/api/jobs/").json()["results"]
    assert [j["outlook"] for j in listed] == [None]
    page = client.get(f"/jobs/{job.pk}/")
    assert "About 2 min left at the current pace" in page.content.decode()
