import csv
import hashlib
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from marketing.exporters import google, meta, tiktok
from marketing.exporters.countries import GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.formats import FORMATS
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Export,
    ExportExclusion,
    Job,
    Purpose,
    Suppression,
)
from marketing.pseudonyms import erasure_token
from marketing.selectors.audiences import customer_exports, exports_holding
from marketing.selectors.consent import has_consent
from marketing.services import exports as export_service
from marketing.services.current_consent import current_consent_refresh
from marketing.services.erasure import customer_erase
from marketing.services.exports import ExportError, export_create
from tests.marketing.services.audience_helpers import (
    GOOGLE_PURPOSES,
    exported,
    frozen_audience,
    make_people,
)

pytestmark = pytest.mark.django_db

# Formats whose first column is the hashed email, with the platform's email normaliser.
EMAIL_KEYED = {
    "google_customer_match": google.normalise_email,
    "meta_custom_audience_csv": meta.normalise_email,
    "tiktok_customer_file": tiktok.normalise_email,
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_of(export: Export) -> Path:
    return Path(settings.MEDIA_ROOT) / export.file_path


def keys_in_file(export: Export) -> set[str]:
    """What identifies a person in the file: the pseudonym where the format carries it, the
    hashed email otherwise."""
    text = file_of(export).read_text(encoding="utf-8")
    if export.platform == "meta_custom_audience":
        return {row[0] for line in text.splitlines() for row in json.loads(line)["data"]}
    if export.platform == "generic_json":
        return {row["pseudonym"] for row in json.loads(text)}
    return {row[0] for row in list(csv.reader(io.StringIO(text)))[1:]}


def included(export: Export) -> set[int]:
    """The export's audience members without those it left out."""
    members = set(export.audience.members.values_list("customer_id", flat=True))
    return members - set(export.exclusions.values_list("customer_id", flat=True))


def expected_keys(platform: str, customers) -> set[str]:
    if platform not in EMAIL_KEYED:
        return {c.pseudonym for c in customers}
    normalise = EMAIL_KEYED[platform]
    return {sha(normalise(c.identity.email)) for c in customers}


def test_it_exports_only_consented_unsuppressed_customers_of_10000_and_counts_the_rest(marketer):
    allowed_everywhere = [
        *make_people(4000, country="US"),
        *make_people(2000, country="DE", purposes=GOOGLE_PURPOSES),
    ]
    google_refused = [
        *make_people(600, country="FR"),  # EEA with ad targeting only
        *make_people(200, country="IT", purposes=(Purpose.AD_TARGETING, Purpose.AD_USER_DATA)),
        *make_people(200, country=""),  # unknown country: Google's consents are required
    ]
    no_record = make_people(800, purposes=())
    denied = make_people(400, status=ConsentRecord.Status.DENIED)
    withdrawn = make_people(700, withdrawn=True)
    expired = make_people(600, expired=True)
    suppressed = make_people(500, suppressed=True)
    refused = [*no_record, *denied, *withdrawn, *expired, *suppressed]
    audience = frozen_audience(marketer)
    assert audience.size == 10_000
    people = {c.pk: c for c in Customer.objects.select_related("identity")}

    for platform in FORMATS:
        export = exported(audience, platform, marketer)

        assert export.job.status == Job.Status.SUCCEEDED, export.job.error
        google_rules = FORMATS[platform].needs_google_consents
        allowed = allowed_everywhere if google_rules else allowed_everywhere + google_refused
        left_out = [*refused, *google_refused] if google_rules else refused
        in_file = keys_in_file(export)
        assert in_file == expected_keys(platform, [people[c.pk] for c in allowed]), platform
        assert not in_file & expected_keys(platform, [people[c.pk] for c in left_out]), platform
        assert export.row_count == len(allowed)
        assert included(export) == {c.pk for c in allowed}
        assert export.exclusions.count() == len(left_out)
        assert export.left_out == {
            "no_record": 800,
            "denied": 400,
            "withdrawn": 700,
            "expired": 600,
            "suppressed": 500,
            **({"google_consent": 1000} if google_rules else {}),
            "no_identifier": 0,
        }
        snapshot = export.consent_snapshot
        assert snapshot["members"] == 10_000 and snapshot["exported"] == len(allowed)
        assert ("google_eu_user_consent" in snapshot) is google_rules


def test_it_writes_the_checksum_of_the_file_and_audits_the_export(marketer):
    make_people(12)
    audience = frozen_audience(marketer)

    export = exported(audience, "meta_custom_audience", marketer)

    content = file_of(export).read_bytes()
    assert export.checksum == hashlib.sha256(content).hexdigest()
    assert export.file_size == len(content)
    assert export.file_path.startswith("exports/") and export.file_path.endswith(".jsonl")
    events = AuditEvent.objects.filter(target_type="export", target_ref=str(export.pk))
    assert sorted(e.details["event"] for e in events) == ["requested", "written"]
    written = events.get(details__event="written")
    assert written.action == AuditEvent.Action.EXPORT and written.actor == marketer
    assert written.details["sha256"] == export.checksum and written.details["rows"] == 12


def test_it_counts_members_without_anything_to_match_and_keeps_them_out_of_the_record(marketer):
    matched = make_people(11)
    unmatched = make_people(3, identity=False)
    audience = frozen_audience(marketer)

    export = exported(audience, "tiktok_customer_file", marketer)
    generic = exported(audience, "generic_csv", marketer)

    assert export.row_count == 11 and export.left_out["no_identifier"] == 3
    assert included(export) == {c.pk for c in matched}
    assert generic.row_count == 14  # pseudonyms need no identifier
    assert {c.pseudonym for c in unmatched} <= keys_in_file(generic)


def test_it_refuses_to_export_a_draft_audience_or_an_unknown_format(marketer):
    make_people(3)
    audience = frozen_audience(marketer)
    with pytest.raises(ExportError, match="Unknown platform"):
        export_create(audience=audience, platform="myspace", by=marketer)
    audience.status = audience.Status.DRAFT
    with pytest.raises(ExportError, match="Freeze"):
        export_create(audience=audience, platform="generic_csv", by=marketer)
    assert not Export.objects.exists()


def test_it_leaves_no_file_and_no_members_when_cancelled_midway(marketer, monkeypatch):
    make_people(30)
    audience = frozen_audience(marketer)
    monkeypatch.setattr(export_service, "CHUNK_ROWS", 10)
    monkeypatch.setattr(export_service, "PROGRESS_EVERY_S", 0)
    leave_out = export_service._ExportWriter.leave_out

    def cancel_after_the_first_chunk(writer, chunk):
        leave_out(writer, chunk)
        Job.objects.filter(pk=writer.export.job_id).update(cancel_requested=True)

    monkeypatch.setattr(export_service._ExportWriter, "leave_out", cancel_after_the_first_chunk)

    export = exported(audience, "generic_csv", marketer)

    assert export.job.status == Job.Status.CANCELLED
    assert not ExportExclusion.objects.filter(export=export).exists()
    assert not list((Path(settings.MEDIA_ROOT) / "exports").iterdir())
    assert export.checksum == "" and export.file_path == ""


def test_it_still_finds_the_exports_that_held_an_erased_customer(marketer, steward):
    people = make_people(10)
    refused = make_people(1, withdrawn=True)[0]
    audience = frozen_audience(marketer)
    export = exported(audience, "meta_custom_audience", marketer)
    erased = people[0]
    assert list(customer_exports(erased)) == [export]
    assert not customer_exports(refused).exists()

    customer_erase(customer=erased, by=steward)
    customer_erase(customer=refused, by=steward)
    later = exported(audience, "meta_custom_audience", marketer)

    assert list(exports_holding(erased.pseudonym)) == [export]  # not the later export
    assert not exports_holding(refused.pseudonym).exists()
    assert later.row_count == 9 and later.consent_snapshot["members"] == 9
    member = audience.members.get(pseudonym=erasure_token(erased.pseudonym))
    assert member.customer_id is None and audience.members.count() == 11


def test_it_applies_consent_at_export_time_not_at_freezing(marketer):
    people = make_people(12)
    audience = frozen_audience(marketer)
    ConsentRecord.objects.create(
        customer=people[0],
        purpose=Purpose.AD_TARGETING,
        status="withdrawn",
        effective_at=timezone.now() - timedelta(seconds=1),
        source="form",
    )
    current_consent_refresh(customer_ids=[people[0].pk])
    Suppression.objects.create(customer=people[1])

    export = exported(audience, "generic_json", marketer)

    assert audience.consent_snapshot["may_be_exported"] == 12
    assert export.row_count == 10
    assert export.left_out["withdrawn"] == 1 and export.left_out["suppressed"] == 1
    assert not {people[0].pseudonym, people[1].pseudonym} & keys_in_file(export)


# ---- property: the export never holds anyone the consent selector refuses ----------------------

PURPOSES = [Purpose.AD_TARGETING, Purpose.AD_USER_DATA, Purpose.AD_PERSONALIZATION]
consent_event = st.tuples(
    st.sampled_from(PURPOSES),
    st.sampled_from(list(ConsentRecord.Status.values)),
    st.integers(min_value=-3, max_value=60),  # days ago it took effect (negative: future)
    st.one_of(st.none(), st.integers(min_value=-20, max_value=20)),  # expiry, days from now
)
person = st.fixed_dictionaries(
    {
        "country": st.sampled_from(["US", "DE", "GB", "CH", "NO", "AU", ""]),
        "history": st.lists(consent_event, max_size=5),
        "suppressed": st.booleans(),
        "identity": st.booleans(),
    }
)


def may_be_exported(customer: Customer, platform: str, at: datetime) -> bool:
    """The oracle: the consent selector, asked about one customer at a time."""
    if not has_consent(customer, Purpose.AD_TARGETING, at=at):
        return False
    if Suppression.objects.filter(customer=customer).exists():
        return False
    if not FORMATS[platform].needs_google_consents:
        return True
    identity = CustomerIdentity.objects.filter(customer=customer).first()
    country = identity.country if identity else ""
    if country and country not in GOOGLE_CONSENT_COUNTRIES:
        return True
    return has_consent(customer, Purpose.AD_USER_DATA, at=at) and has_consent(
        customer, Purpose.AD_PERSONALIZATION, at=at
    )


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(person, min_size=1, max_size=6), platform=st.sampled_from(list(FORMATS)))
def test_it_never_exports_a_customer_the_consent_selector_refuses(marketer, people, platform):
    with transaction.atomic():
        now = timezone.now()
        customers = []
        for i, spec in enumerate(people):
            customer = Customer.objects.create(external_id=f"H{i}", pseudonym=f"h{i:063d}")
            if spec["identity"]:
                CustomerIdentity.objects.create(
                    customer=customer,
                    email=f"h{i}@example.com",
                    country=spec["country"],
                    phone="+1 202 555 0100",
                )
            for purpose, status, days_ago, expires in spec["history"]:
                ConsentRecord.objects.create(
                    customer=customer,
                    purpose=purpose,
                    status=status,
                    source="form",
                    effective_at=now - timedelta(days=days_ago),
                    expires_at=None if expires is None else now + timedelta(days=expires),
                )
            current_consent_refresh(customer_ids=[customer.pk])
            if spec["suppressed"]:
                Suppression.objects.create(customer=customer)
            customers.append(customer)
        audience = frozen_audience(marketer)

        export = exported(audience, platform, marketer)

        assert export.job.status == Job.Status.SUCCEEDED, export.job.error
        at = datetime.fromisoformat(export.consent_snapshot["at"])
        allowed = {c.pk for c in customers if may_be_exported(c, platform, at)}
        held = included(export)
        assert held <= allowed
        assert len(allowed - held) == export.left_out["no_identifier"]
        assert sum(export.left_out.values()) + export.row_count == len(customers)
        in_file = keys_in_file(export)
        held_customers = Customer.objects.select_related("identity").filter(pk__in=held)
        assert in_file == expected_keys(platform, held_customers)
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_it_exports_outside_a_transaction_as_a_worker_does(marketer):
    people = make_people(25)
    make_people(5, withdrawn=True)
    audience = frozen_audience(marketer)

    export = exported(audience, "meta_custom_audience", marketer)

    assert export.job.status == Job.Status.SUCCEEDED, export.job.error
    assert keys_in_file(export) == {c.pseudonym for c in people}
    assert export.left_out["withdrawn"] == 5


def test_it_warns_when_the_file_holds_fewer_people_than_the_platform_needs(marketer):
    from tests.marketing.api.helpers import logged_in

    make_people(12)
    audience = frozen_audience(marketer)

    small = exported(audience, "meta_custom_audience", marketer)  # Meta: about 100
    generic = exported(audience, "generic_csv", marketer)  # no platform minimum

    small.job.refresh_from_db()
    assert small.job.result["warning"] == (
        "Only 12 people in this file: Meta serves an uploaded audience once about 100 people "
        "match, so this one will upload but not deliver."
    )
    generic.job.refresh_from_db()
    assert "warning" not in generic.job.result
    page = logged_in(marketer).get(f"/audiences/{audience.pk}/").content.decode()
    assert page.count("below the platform's minimum") == 1
