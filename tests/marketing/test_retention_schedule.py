"""The purge runs on a schedule (celery beat), as a task and by hand."""

import pytest
from django.conf import settings
from django.core.management import call_command

from marketing.models import AuditEvent
from marketing.tasks import purge_expired_data_task


def test_it_schedules_the_purge_task():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert purge_expired_data_task.name in tasks


@pytest.mark.django_db
def test_the_task_runs_the_purge(settings):
    settings.RETENTION_DAYS = {"job_logs": 30}
    assert purge_expired_data_task() == {"job_logs": 0}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RETENTION).count() == 1


@pytest.mark.django_db
def test_the_command_says_what_it_purged(settings, capsys):
    settings.RETENTION_DAYS = {"interactions": 30, "uploads": 0}
    call_command("purge_expired_data")
    out = capsys.readouterr().out
    assert "interactions: 0 purged (older than 30 days)" in out
    assert "uploads: kept forever" in out
