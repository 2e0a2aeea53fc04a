import hashlib
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing.models import Audience, AuditEvent, Export, Job, Suppression
from marketing.services.audiences import audience_create
from tests.marketing.api.helpers import logged_in
from tests.marketing.services.audience_helpers import (
    everyone_segment,
    exported,
    frozen_audience,
    make_people,
)

pytestmark = pytest.mark.django_db


def test_it_builds_and_freezes_an_audience_from_the_form(
    marketer_client, django_capture_on_commit_callbacks
):
    make_people(11)
    segment = everyone_segment("Everyone here")

    page = marketer_client.get(reverse("audience-create"))
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("audience-create"), {"segment": segment.pk, "cut": "all", "name": ""}
        )

    assert page.status_code == 200
    assert b'data-preview-url="/api/audiences/preview/"' in page.content
    audience = Audience.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("audience-detail", args=[audience.pk])
    assert audience.name == "Everyone here" and audience.is_frozen and audience.size == 11
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_FREEZE)
    assert job.status == Job.Status.SUCCEEDED and job.params == {"audience": audience.pk}


def test_it_freezes_in_a_job_and_shows_its_progress_meanwhile(marketer_client):
    make_people(11)
    audience = audience_create(name="Later", segment=everyone_segment(), by=None)

    # Without a commit the job stays queued, as it is while a worker has not taken it yet.
    response = marketer_client.post(reverse("audience-freeze", args=[audience.pk]))
    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    job = Job.objects.get(kind=Job.Kind.AUDIENCE_FREEZE)
    assert response.status_code == 302
    audience.refresh_from_db()
    assert not audience.is_frozen and not audience.members.exists()
    assert 'data-testid="freeze-progress"' in page and f'data-job-id="{job.pk}"' in page
    assert 'data-refresh="audience-main"' in page
    assert reverse("audience-freeze", args=[audience.pk]) not in page  # no second freeze


def test_it_shows_a_count_now_button_before_the_first_count(marketer_client, viewer):
    make_people(11)
    audience = audience_create(name="Fresh", segment=everyone_segment(), by=None)

    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()
    seen_by_viewer = logged_in(viewer).get(reverse("audience-detail", args=[audience.pk]))

    assert "Not counted yet" in page and "Count now" in page
    count_url = reverse("audience-count", args=[audience.pk])
    form = page[page.index(f'action="{count_url}"') :]
    assert 'method="post"' in page and "csrfmiddlewaretoken" in form[: form.index("</form>")]
    assert 'data-testid="audience-size"' not in page
    assert "Not counted yet" in seen_by_viewer.content.decode()
    assert count_url not in seen_by_viewer.content.decode()
    assert logged_in(viewer).post(count_url).status_code == 403


def test_it_counts_in_a_job_then_shows_the_figures_and_their_age(
    marketer_client, django_capture_on_commit_callbacks
):
    make_people(21)
    audience = audience_create(name="Counted", segment=everyone_segment(), by=None)

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("audience-count", args=[audience.pk]))
    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    assert response.status_code == 302
    assert Job.objects.get(kind=Job.Kind.AUDIENCE_PREVIEW).status == Job.Status.SUCCEEDED
    assert 'data-testid="audience-size">20<' in page
    assert 'data-testid="figures-age"' in page and "Recount" in page


def test_it_shows_a_running_count_with_its_progress_bar(marketer_client):
    make_people(11)
    audience = audience_create(name="Busy", segment=everyone_segment(), by=None)
    marketer_client.post(reverse("audience-count", args=[audience.pk]))
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_PREVIEW)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, progress=40)

    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    assert 'data-testid="count-progress"' in page and f'data-job-id="{job.pk}"' in page
    assert "width: 40%" in page and "Count now" not in page


CUSTOMER_TABLES = ("marketing_customer", "marketing_consentrecord", "marketing_audiencemember")
BOUNDED = re.compile(r"\bLIMIT \d+(\s+OFFSET \d+)?\s*$", re.IGNORECASE)


def _page_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def _unbounded_reads_of_customers(sqls: list[str]) -> list[str]:
    """Queries that read customers, consent or members without a LIMIT on the whole result
    (a LIMIT inside, as a consent lookup has, bounds nothing): counts of the base."""
    return [
        sql
        for sql in sqls
        if any(table in sql for table in CUSTOMER_TABLES) and not BOUNDED.search(sql)
    ]


@pytest.mark.parametrize("frozen", [True, False])
def test_the_audience_page_reads_no_more_with_300_customers_than_with_10(
    marketer_client, marketer, frozen
):
    def page_for(n: int) -> list[str]:
        make_people(n)
        audience = (
            frozen_audience(marketer, name=f"Of {n}", segment=everyone_segment(f"All {n}"))
            if frozen
            else audience_create(name=f"Of {n}", segment=everyone_segment(f"All {n}"), by=None)
        )
        return _page_queries(marketer_client, reverse("audience-detail", args=[audience.pk]))

    small, large = page_for(10), page_for(300)

    assert len(small) == len(large)
    assert _unbounded_reads_of_customers(small) == []
    assert _unbounded_reads_of_customers(large) == []


def test_the_preview_api_reads_no_customers(marketer_client, marketer):
    make_people(300)
    audience = frozen_audience(marketer)

    sqls = _page_queries(marketer_client, f"/api/audiences/{audience.pk}/preview/")

    assert _unbounded_reads_of_customers(sqls) == []
    assert not [sql for sql in sqls if "marketing_customer" in sql]


def test_it_shows_what_is_wrong_with_a_cut(marketer_client):
    segment = everyone_segment()

    response = marketer_client.post(
        reverse("audience-create"), {"segment": segment.pk, "cut": "top_n", "cut_value": "5"}
    )

    assert response.status_code == 200
    assert "A cut by score needs a scoring run." in response.content.decode()
    assert not Audience.objects.exists()


def test_it_keeps_the_builder_for_marketers(viewer):
    assert logged_in(viewer).get(reverse("audience-create")).status_code == 403


def test_it_shows_readiness_and_export_buttons_on_the_audience_page(marketer_client, marketer):
    make_people(21)
    make_people(11, withdrawn=True)
    audience = frozen_audience(marketer, name="Spring")

    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()

    # Counts to the nearest 10 (the minimum group size): 32 members, 11 left out.
    assert "Spring" in page and 'data-testid="audience-size">30<' in page
    assert page.count('name="platform"') == 6
    assert "Google Customer Match (CSV)" in page and "10 left out" in page


def test_it_starts_an_export_from_the_page_and_lists_it_with_its_progress(
    marketer_client, marketer, django_capture_on_commit_callbacks
):
    make_people(12)
    audience = frozen_audience(marketer)

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("audience-export", args=[audience.pk]), {"platform": "tiktok_customer_file"}
        )

    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"].endswith("#exports")
    assert export.job.status == Job.Status.SUCCEEDED and export.row_count == 12
    page = marketer_client.get(reverse("audience-detail", args=[audience.pk])).content.decode()
    assert reverse("export-download", args=[export.pk]) in page
    assert export.checksum[:12] in page


def test_it_shows_a_progress_bar_while_an_export_runs(marketer_client, marketer):
    make_people(12)
    audience = frozen_audience(marketer)
    export = exported(audience, "generic_csv", marketer)
    Job.objects.filter(pk=export.job_id).update(status=Job.Status.RUNNING, progress=40)

    page = marketer_client.get(reverse("export-list")).content.decode()

    assert f'data-job-id="{export.job_id}"' in page and 'data-refresh="export-table"' in page


def test_it_lets_only_marketers_and_stewards_download_from_the_history(marketer, steward, viewer):
    make_people(12)
    export = exported(frozen_audience(marketer), "google_customer_match", marketer)
    url = reverse("export-download", args=[export.pk])

    assert url not in logged_in(viewer).get(reverse("export-list")).content.decode()
    assert logged_in(viewer).get(url).status_code == 403
    assert url in logged_in(steward).get(reverse("export-list")).content.decode()
    download = logged_in(steward).get(url)

    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == export.checksum
    assert AuditEvent.objects.filter(details__event="downloaded", actor=steward).count() == 1


def test_it_lists_the_exports_that_included_a_customer_on_their_page(marketer_client, marketer):
    included = make_people(11)[0]
    refused = make_people(1, withdrawn=True)[0]
    export = exported(frozen_audience(marketer, name="Spring"), "meta_custom_audience", marketer)

    held = marketer_client.get(reverse("customer-detail", args=[included.pk])).content.decode()
    left = marketer_client.get(reverse("customer-detail", args=[refused.pk])).content.decode()

    assert "Exports that included this customer" in held and f"#{export.pk}" in held
    assert "Exports that included this customer" not in left


def test_it_lists_audiences_with_a_link_in_the_sidebar(viewer, marketer):
    make_people(10)
    frozen_audience(marketer, name="Spring")

    page = logged_in(viewer).get(reverse("audience-list")).content.decode()

    assert "Spring" in page and "Audiences &amp; exports" in page
    assert reverse("audience-create") not in page.split("</aside>", 1)[1]  # viewers do not build


def test_it_keeps_the_suppression_list_in_the_admin_console_with_an_audit_trail(client):
    admin = User.objects.create_superuser("root", password="pw-for-tests-only-123")
    client.force_login(admin)
    customer = make_people(1)[0]

    added = client.post(
        reverse("admin:marketing_suppression_add"), {"customer": customer.pk, "reason": "complaint"}
    )
    suppression = Suppression.objects.get()
    removed = client.post(
        reverse("admin:marketing_suppression_delete", args=[suppression.pk]), {"post": "yes"}
    )

    assert added.status_code == 302 and removed.status_code == 302
    assert not Suppression.objects.exists()
    changes = AuditEvent.objects.filter(target_ref=customer.pseudonym)
    assert sorted(e.details["change"] for e in changes) == ["suppressed", "unsuppressed"]
    assert client.get(reverse("admin:marketing_export_changelist")).status_code == 200
    assert client.get(reverse("admin:marketing_audience_changelist")).status_code == 200
