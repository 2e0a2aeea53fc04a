"""The purge runs on a schedule (celery beat), as a task and by hand."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken

from marketing.models import AuditEvent
from marketing.tasks import purge_expired_data_task


def test_it_schedules_the_purge_task():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert purge_expired_data_task.name in tasks


def tokens(user, *, expired: int, valid: int) -> None:
    for _ in range(expired + valid):
        AuthToken.objects.create(user=user)
    stale = AuthToken.objects.filter(user=user).values("digest")[:expired]
    AuthToken.objects.filter(digest__in=stale).update(expiry=timezone.now() - timedelta(hours=1))


@pytest.mark.django_db
def test_the_task_runs_the_purge_and_deletes_expired_api_tokens(settings, marketer):
    settings.RETENTION_DAYS = {"job_logs": 30}
    tokens(marketer, expired=2, valid=1)

    assert purge_expired_data_task() == {"job_logs": 0, "expired_api_tokens": 2}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RETENTION).count() == 1
    assert AuthToken.objects.filter(user=marketer).count() == 1


@pytest.mark.django_db
def test_the_command_says_what_it_purged(settings, capsys, marketer):
    settings.RETENTION_DAYS = {"interactions": 30, "uploads": 0}
    tokens(marketer, expired=1, valid=1)
    call_command("purge_expired_data")
    out = capsys.readouterr().out
    assert "interactions: 0 purged (older than 30 days)" in out
    assert "uploads: kept forever" in out
    assert "expired API tokens: 1 deleted" in out


@pytest.mark.parametrize(("value", "days"), [("", 0), ("0", 0), (" 30 ", 30)])
def test_it_reads_a_retention_period_from_the_environment(monkeypatch, value, days):
    from marketing import settings as base_settings

    monkeypatch.setenv("RETENTION_DAYS_SOMETHING", value)
    assert base_settings._retention_days("RETENTION_DAYS_SOMETHING", 90) == days


@pytest.mark.parametrize("value", ["-1", "thirty", "1.5"])
def test_it_refuses_a_retention_period_that_is_not_a_number_of_days(monkeypatch, value):
    from django.core.exceptions import ImproperlyConfigured

    from marketing import settings as base_settings

    monkeypatch.setenv("RETENTION_DAYS_SOMETHING", value)
    with pytest.raises(ImproperlyConfigured, match="RETENTION_DAYS_SOMETHING"):
        base_settings._retention_days("RETENTION_DAYS_SOMETHING", 90)
