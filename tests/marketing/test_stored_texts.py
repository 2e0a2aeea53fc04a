"""Texts stored in English (job titles, messages, outlooks) read in the user's language on the
pages, and stay English in the database and the API."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from marketing.models import Job
from marketing.services.preferences import user_language_set
from marketing.stored_texts import translated, translated_html
from tests.marketing.api.helpers import logged_in

IMPORT_FAILED = (
    "1 of 4 rows have problems, so nothing was imported (all or nothing). Row 4 (line 5), "
    "column 'email': 'O***@@***.example' is not an email address. The error file lists every "
    "problem; fix them, or import only the valid rows."
)


def test_english_texts_are_shown_as_stored():
    with translation.override("en"):
        assert translated("Import customers: crm.csv") == "Import customers: crm.csv"
        assert translated(IMPORT_FAILED) == IMPORT_FAILED


def test_a_text_is_translated_from_the_message_it_was_made_from():
    with translation.override("zh-hans"):
        assert translated("Waiting for a worker") == "正在等待工作进程"
        # Data (a file name) is kept; words inside (the row problem, its reason) translated.
        assert translated("Import customers: crm.csv") == "导入客户：crm.csv"
        failed = translated(IMPORT_FAILED)
        assert "O***@@***.example" in failed and "不是电子邮件地址" in failed
        assert "nothing was imported" not in failed
        waiting = translated(
            "Waiting: 2 jobs ahead (Count the customer base – 50 %, about 2 min left; "
            "CSV import #4 – waiting) · at least 2 min before it starts"
        )
        assert "统计客户群体" in waiting and "CSV 导入 #4" in waiting and "ahead" not in waiting
        # What no message made is shown as it is.
        assert translated("Something else happened") == "Something else happened"


def test_html_marks_the_quoted_values_and_escapes_the_rest():
    with translation.override("zh-hans"):
        html = translated_html("Import customers: <b>.csv")
    assert html == '导入客户：<span translate="no">&lt;b&gt;.csv</span>'


@pytest.mark.django_db
def test_the_pages_translate_the_job_and_the_api_keeps_it_english(marketer, settings):
    settings.JOB_QUEUE = "thread"
    job = Job.objects.create(
        kind=Job.Kind.TRAIN,
        title="Train “Spring”",
        status=Job.Status.RUNNING,
        progress=25,
        started_at=timezone.now() - timedelta(seconds=60),
        message="Reading the responses of customers with training consent",
    )
    user_language_set(marketer, "zh-hans")
    client = logged_in(marketer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "训练“Spring”" in page and "按当前速度，约剩 3 分钟" in page
    # Running: the page carries what its script needs to translate what polling brings.
    script = re.search(r'<script id="stored-texts".*?</script>', page, re.S)
    assert script is not None
    assert "Reading the responses" not in page.replace(script.group(0), "")
    answer = client.get(f"/api/jobs/{job.pk}/").json()
    assert answer["title"] == "Train “Spring”"
    assert answer["message"] == "Reading the responses of customers with training consent"
    assert answer["outlook"] == "About 3 min left at the current pace"
