"""Files that hold customer data are readable by the app's own user only."""

import os
import stat
from pathlib import Path

import pytest
from django.conf import settings

from marketing.models import Upload
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.services.ingest_helpers import customers_csv, import_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _usual_umask():
    """The common default, under which a plain open() makes a world-readable file."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_it_keeps_uploads_and_error_files_private(marketer, django_capture_on_commit_callbacks):
    text = customers_csv(5, bad={2: {"email": "not-an-email"}})
    import_text(django_capture_on_commit_callbacks, text, by=marketer, mode=Upload.Mode.VALID_ROWS)

    upload = Upload.objects.get()
    assert upload.error_file
    assert mode(upload.file.path) == 0o600
    assert mode(upload.error_file.path) == 0o600
    assert mode(Path(upload.file.path).parent) == 0o700


def test_it_keeps_export_files_private(marketer):
    make_people(3)
    export = exported(frozen_audience(marketer), "generic_csv", marketer)

    path = Path(settings.MEDIA_ROOT) / export.file_path
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
