"""The admin console: masked identifiers, read-only consent history, erasure on delete."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from marketing.models import AuditEvent, ConsentRecord, Customer, Job, Segment
from marketing.pseudonyms import erasure_token
from tests.factories import make_customer, record_consent
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db

RAW = {
    "email": "jane.doe@example.com",
    "phone": "+351 912 345 678",
    "first_name": "Janelle",
    "last_name": "Doebright",
    "country": "PT",
    "postal_code": "1100-148",
}


def staff(user: User) -> User:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def jane():
    customer = make_customer("CUST-1", identity=RAW, age=41)
    record_consent(customer, "email_marketing")
    return customer


def customer_url(customer, view="change") -> str:
    return reverse(f"admin:marketing_customer_{view}", args=[customer.pk])


def assert_no_raw_pii(content: bytes) -> None:
    for name in ("email", "phone", "first_name", "last_name", "postal_code"):
        assert RAW[name].encode() not in content, name


def test_it_masks_identity_in_the_changelist_and_change_page(marketer, jane):
    client = logged_in(staff(marketer))
    changelist = client.get(reverse("admin:marketing_customer_changelist"))
    change = client.get(customer_url(jane))
    assert changelist.status_code == change.status_code == 200
    assert_no_raw_pii(changelist.content)
    assert_no_raw_pii(change.content)
    assert b"j***@e***.com" in changelist.content
    assert b"j***@e***.com" in change.content
    assert b"***78" in change.content
    assert not AuditEvent.objects.filter(action="pii_view").exists()


def test_it_shows_identity_to_a_steward_and_audits_each_view(steward, jane):
    client = logged_in(staff(steward))
    changelist = client.get(reverse("admin:marketing_customer_changelist"))
    change = client.get(customer_url(jane))
    assert RAW["email"].encode() in changelist.content
    assert RAW["last_name"].encode() in change.content
    assert RAW["phone"].encode() in change.content
    assert AuditEvent.objects.filter(action="pii_view").count() == 2


def test_it_does_not_search_by_email_without_the_pii_permission(marketer, steward, jane):
    url = reverse("admin:marketing_customer_changelist")
    masked = logged_in(staff(marketer)).get(url, {"q": "jane.doe"})
    real = logged_in(staff(steward)).get(url, {"q": "jane.doe"})
    assert masked.context["cl"].result_count == 0
    assert real.context["cl"].result_count == 1


def test_it_keeps_identity_read_only_without_the_pii_permission(marketer, jane):
    client = logged_in(staff(marketer))
    response = client.post(customer_url(jane), {"attributes": "{}"})
    assert response.status_code == 403
    jane.identity.refresh_from_db()
    assert jane.identity.email == RAW["email"]


def test_it_shows_consent_history_read_only(steward, jane):
    client = logged_in(staff(steward))
    record = ConsentRecord.objects.get()
    url = reverse("admin:marketing_consentrecord_change", args=[record.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"status": "withdrawn"}).status_code == 403
    delete = reverse("admin:marketing_consentrecord_delete", args=[record.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentRecord.objects.get().status == "granted"


def test_it_appends_a_consent_record_from_the_admin(steward, jane):
    client = logged_in(staff(steward))
    response = client.post(
        reverse("admin:marketing_consentrecord_add"),
        {
            "customer": "CUST-1",  # the ID of the team's files, not the internal number
            "purpose": "email_marketing",
            "status": "withdrawn",
            "lawful_basis": "a",
            "effective_at_0": "2030-01-01",
            "effective_at_1": "10:00:00",
            "expires_at_0": "",
            "expires_at_1": "",
            "notice_version": "v2",
            "note": "by letter",
        },
    )
    assert response.status_code == 302, response.content
    latest = ConsentRecord.objects.order_by("-id").first()
    assert (latest.status, latest.source, latest.recorded_by) == ("withdrawn", "admin", steward)
    assert ConsentRecord.objects.count() == 2
    assert AuditEvent.objects.filter(action="consent_change").count() == 1


def test_it_refuses_consent_records_from_a_marketer(marketer, jane):
    client = logged_in(staff(marketer))
    assert client.get(reverse("admin:marketing_consentrecord_add")).status_code == 403


def test_a_stewards_delete_leads_to_the_erasure_screen(steward, jane):
    client = logged_in(staff(steward))
    response = client.post(customer_url(jane, "delete"), {"post": "yes"})
    assert response["Location"] == f"/customers/{jane.pk}/erase/"
    assert Customer.objects.exists()  # the screen asks for a reason first


def test_it_erases_when_a_steward_deletes_customers_in_bulk(steward, jane):
    client = logged_in(staff(steward))
    response = client.post(
        reverse("admin:marketing_customer_changelist"),
        {"action": "delete_selected", "_selected_action": [jane.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Customer.objects.exists()
    assert not ConsentRecord.objects.exists()
    event = AuditEvent.objects.get(action="erasure")
    assert event.target_ref == erasure_token(jane.pseudonym)
    assert event.details["reason"] == "Deleted in the admin console (bulk)"


def test_it_refuses_deletion_to_a_marketer(marketer, jane):
    client = logged_in(staff(marketer))
    assert client.post(customer_url(jane, "delete"), {"post": "yes"}).status_code == 403
    assert Customer.objects.exists()


def test_it_validates_segment_rules_in_the_admin(db):
    superuser = User.objects.create_superuser("root", password="pw-for-tests-only-123")
    client = logged_in(superuser)
    bad = '{"op": "and", "rules": [{"field": "attr:nope", "operator": "eq", "value": 1}]}'
    response = client.post(
        reverse("admin:marketing_segment_add"), {"name": "S", "description": "", "rules": bad}
    )
    assert response.status_code == 200
    assert b"rules[0] (attr:nope): unknown field" in response.content
    good = '{"op": "and", "rules": []}'
    response = client.post(
        reverse("admin:marketing_segment_add"), {"name": "S", "description": "", "rules": good}
    )
    assert response.status_code == 302
    assert Segment.objects.get().name == "S"
    assert AuditEvent.objects.filter(action="segment_change").count() == 1


def test_it_renders_every_registered_model_for_a_superuser(jane):
    superuser = User.objects.create_superuser("root", password="pw-for-tests-only-123")
    Job.objects.create(kind="import", created_by=superuser)
    client = logged_in(superuser)
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert client.get(reverse(f"{name}_changelist")).status_code == 200, name
        assert client.get(reverse(f"{name}_add")).status_code in (200, 403), name
        obj = model.objects.first()
        if obj is not None:
            change = client.get(reverse(f"{name}_change", args=[obj.pk]))
            assert change.status_code == 200, name


@pytest.mark.parametrize(
    "model",
    [
        "job",
        "auditevent",
        "upload",
        "trainingrun",
        "scoringrun",
        "explanationrun",
        "campaignplan",
        "recommendationrun",
    ],
)
def test_it_keeps_product_records_read_only(db, model):
    superuser = User.objects.create_superuser("root", password="pw-for-tests-only-123")
    client = logged_in(superuser)
    assert client.get(reverse(f"admin:marketing_{model}_add")).status_code == 403


def test_it_says_hashed_for_identifiers_kept_only_as_digests(steward):
    hashed = make_customer(
        "CUST-H",
        identity={
            "country": "PT",
            "digests": {"meta:email": "ab" * 32, "google:last_name": "cd" * 32},
        },
    )
    client = logged_in(staff(steward))

    changelist = client.get(reverse("admin:marketing_customer_changelist"))

    row = changelist.content.split(b"CUST-H", 1)[1].split(b"</tr>", 1)[0]
    assert row.count(b"hashed") == 2  # the email, and the name
    assert hashed.identity.digests["meta:email"].encode() not in changelist.content


def test_it_searches_customers_by_prefix_of_external_id_or_pseudonym(marketer):
    wanted = make_customer("CUST-77")
    make_customer("OLDCUST-77")
    url = reverse("admin:marketing_customer_changelist")
    client = logged_in(staff(marketer))

    by_id = client.get(url, {"q": "cust-7"}).context["cl"].result_list
    by_pseudonym = client.get(url, {"q": wanted.pseudonym[:8]}).context["cl"].result_list
    inside = client.get(url, {"q": "ST-77"}).context["cl"].result_list

    assert list(by_id) == list(by_pseudonym) == [wanted]
    assert list(inside) == []


def test_it_finds_a_steward_customers_by_identifier_or_id_in_one_search(steward, jane):
    other = make_customer("JANE-2")
    url = reverse("admin:marketing_customer_changelist")

    found = logged_in(staff(steward)).get(url, {"q": "jane"}).context["cl"].result_list

    # "jane" starts JANE-2's external id and Jane's email.
    assert {c.pk for c in found} == {jane.pk, other.pk}


def test_it_lists_a_scoring_runs_parts_with_their_errors_for_staff(trained, marketer):
    from marketing.models import ScoringChunk, ScoringRun

    job = Job.objects.create(kind="score", created_by=marketer, status="failed")
    scoring = ScoringRun.objects.create(job=job, training_run=trained, created_by=marketer)
    ScoringChunk.objects.create(
        scoring_run=scoring,
        number=1,
        first_customer=10,
        last_customer=99,
        status="failed",
        attempts=3,
        worker="worker-7:4242",
        error="RuntimeError: no space left on device",
    )
    superuser = User.objects.create_superuser("root", password="pw-for-tests-only-123")

    page = logged_in(superuser).get(f"/admin/marketing/scoringrun/{scoring.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "worker-7:4242" in html and "no space left on device" in html


def test_a_steward_edits_a_phone_and_country_as_an_import_reads_them(jane):
    from marketing.admin import CustomerIdentityForm

    edit = {**RAW, "phone": "(415) 555-0103", "country": "United States"}
    form = CustomerIdentityForm(data=edit, instance=jane.identity)
    assert form.is_valid(), form.errors
    form.save()
    jane.identity.refresh_from_db()
    assert (jane.identity.phone, jane.identity.country) == ("+14155550103", "US")
    refused = CustomerIdentityForm(data={**edit, "country": ""}, instance=jane.identity)
    assert not refused.is_valid()
    assert "is a national number with no country" in refused.errors["phone"][0]


def test_a_consent_record_for_an_unknown_customer_id_is_refused(steward, jane):
    client = logged_in(staff(steward))
    add = reverse("admin:marketing_consentrecord_add")
    form = client.get(add, {"customer": jane.pk})
    assert 'value="CUST-1"' in form.content.decode()  # a link with the number shows the ID
    response = client.post(
        add,
        {
            "customer": str(jane.pk),
            "purpose": "email_marketing",
            "status": "withdrawn",
            "lawful_basis": "a",
            "effective_at_0": "2030-01-01",
            "effective_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert f"No customer has the ID &#x27;{jane.pk}&#x27;." in response.content.decode()
    assert ConsentRecord.objects.count() == 1


def test_a_steward_edits_profile_attributes_as_fields_read_by_their_types(steward, jane):
    from marketing.admin import _attribute_names, attributes_form
    from marketing.models import ProfileField

    ProfileField.objects.create(name="age", label="Age", data_type="number")
    ProfileField.objects.create(name="vip", label="VIP", data_type="boolean")
    ProfileField.objects.create(name="region", label="Region", data_type="category")
    page = logged_in(staff(steward)).get(customer_url(jane)).content.decode()
    assert 'name="attr__age"' in page and 'value="41"' in page
    assert 'name="attributes"' not in page  # no raw JSON to edit

    form_class = attributes_form(_attribute_names(jane))
    form = form_class(
        data={"attr__age": "42", "attr__vip": "yes", "attr__region": "12"}, instance=jane
    )
    assert form.is_valid(), form.errors
    form.save()
    jane.refresh_from_db()
    assert jane.attributes == {"age": 42, "vip": True, "region": "12"}

    bad = form_class(data={"attr__age": "forty-two", "attr__vip": ""}, instance=jane)
    assert not bad.is_valid()
    assert bad.errors["attr__age"] == ["'forty-two' is not a number"]
    emptied = form_class(data={"attr__age": "42", "attr__vip": ""}, instance=jane)
    assert emptied.is_valid()
    emptied.save()
    jane.refresh_from_db()
    assert jane.attributes == {"age": 42}  # an emptied field removes the attribute


def test_the_audit_list_names_each_step_of_an_event(steward):
    from marketing.services.audit import audit_log

    for step in ("requested", "written", "downloaded"):
        audit_log(
            actor=steward,
            action="export",
            target_type="export",
            target_ref="7",
            details={"event": step},
        )
    audit_log(actor=steward, action="erasure", target_type="customer", target_ref="tok")
    page = logged_in(staff(steward)).get(reverse("admin:marketing_auditevent_changelist"))
    import re

    cells = re.findall(r'<td class="field-what">([^<]*)</td>', page.content.decode())
    assert sorted(cells) == [
        "Erasure",
        "Export: downloaded",
        "Export: requested",
        "Export: written",
    ]
