"""One of everything the product makes, about people whose identifiers are easy to spot.

The route walk and the schema fuzzing both read every page and endpoint over this data: each
customer has an email, phone, name and postal code found nowhere else, so any of them in a
response body is a leak. Rows come from the services where they are quick (uploads, audiences,
exports, plans, recommendations) and are written directly where the real thing trains a model
(training, scoring and explanation runs, through the tiny-model helpers).
"""

import re
from dataclasses import dataclass

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from knox.models import AuthToken

from marketing.models import (
    Audience,
    AuditEvent,
    CampaignPlan,
    ConsentRecord,
    Customer,
    DriftCheck,
    ExplanationRun,
    Export,
    Interaction,
    Job,
    LawfulBasis,
    ModelPromotion,
    Offer,
    ProfileField,
    PseudonymKeyRotation,
    Purpose,
    RecommendationRun,
    RetrainSchedule,
    ScoringRun,
    Segment,
    Suppression,
    TrainingRun,
    Upload,
)
from marketing.roles import MARKETER, VIEWER, sync_role_groups
from marketing.services.audience_results import audience_results_start
from marketing.services.audiences import audience_create, suppression_add
from marketing.services.champions import model_promote
from marketing.services.consent import consent_record_append
from marketing.services.ingest import upload_create, upload_import, upload_set_mapping
from marketing.services.jobs import run_job
from marketing.services.plans import campaign_plan_create
from marketing.services.segments import segment_create
from tests.factories import make_customer, record_consent
from tests.marketing.explain_helpers import stored_explanation
from tests.marketing.plan_helpers import ECONOMICS, respond
from tests.marketing.recommendation_helpers import make_catalogue, multi_offer_scoring, recommend
from tests.marketing.services.audience_helpers import exported, frozen_audience
from tests.marketing.training_helpers import finished_run, finished_scoring

# (first name, last name, email domain, phone, postal code): none of these strings, nor a
# piece of them used below, appears in the product's own text.
PEOPLE = [
    ("Quentinella", "Vandersloot", "zephyrmail.example", "+44 20 7946 0811", "EC1V 9HX"),
    ("Bartholomea", "Krzyzanowski", "quillpost.example", "+44 20 7946 0822", "SW1A 2AB"),
    ("Ottoline", "Featherstonehaugh", "larkbox.example", "+44 20 7946 0833", "N1C 4QP"),
    ("Perpetua", "Abercrombie", "fernletter.example", "+44 20 7946 0844", "W1D 3QU"),
    ("Leopoldine", "Okonkwo-Baptiste", "mossmail.example", "+44 20 7946 0855", "E14 5HQ"),
    ("Thaddeus", "Wojciechowski", "tidepost.example", "+44 20 7946 0866", "SE1 7PB"),
    ("Evangelina", "Marchetti-Rowe", "cinderbox.example", "+44 20 7946 0877", "NW1 6XE"),
    ("Cornelius", "Szczepanski", "harrowmail.example", "+44 20 7946 0888", "WC2N 5DU"),
    ("Marigolde", "Oyelaran", "thistlepost.example", "+44 20 7946 0899", "EC2R 8AH"),
    ("Augustijn", "Vrijdaghs", "emberletter.example", "+44 20 7946 0912", "SW7 2DD"),
    ("Philippina", "Castellanos", "wrenmail.example", "+44 20 7946 0923", "W8 4PX"),
    ("Ignatius", "Bellweather", "slatebox.example", "+44 20 7946 0934", "N7 8DB"),
]
# The failed upload row: a person the import refused, so known only from the file.
REFUSED = (
    "Ophelianna",
    "Grimsdottir",
    "Ophelianna.Grimsdottir@@hollowpost.example",
    "+44 20 7946 0945",
    "E1W 1YY",
)
JOBS = ["admin.", "technician", "student", "retired"]


def email_of(first: str, last: str, domain: str) -> str:
    return f"{first}.{last}@{domain}".lower()


def forms_of_phone(phone: str) -> list[str]:
    """A phone as typed, as E.164, and as its digits (how an export or error might hold it)."""
    digits = re.sub(r"\D", "", phone)
    return [phone, f"+{digits}", digits]


def plain_pii_values() -> list[str]:
    """Every identifier of the fixture as a user without ``view_pii`` must never see it."""
    values = []
    for first, last, domain, phone, postal in PEOPLE:
        values += [email_of(first, last, domain), first, last, postal, *forms_of_phone(phone)]
    first, last, email, phone, postal = REFUSED
    values += [email, first, last, postal, *forms_of_phone(phone)]
    return values


@dataclass
class World:
    """The rows that pages and endpoints are reached through, by what they are."""

    marketer: User
    steward: User
    viewer: User
    customers: list[Customer]
    person: Customer  # the customer most rows are about (explanations, suppression, consents)
    consent: ConsentRecord
    offer: Offer
    interaction: Interaction
    profile_field: ProfileField
    segment: Segment
    upload: Upload  # imported, with a refused row
    failed_upload: Upload  # all or nothing, so nothing imported
    pending_upload: Upload  # mapped, not imported: the wizard's mapping and preview steps
    job: Job  # the job of ``upload``
    failed_job: Job  # the job of ``failed_upload``
    erasure_job: Job  # a finished erasure (of someone else), with a flagged model
    training_run: TrainingRun
    scoring_run: ScoringRun  # single offer: plans and audiences
    multi_scoring_run: ScoringRun  # every offer: recommendations
    audience: Audience
    draft_audience: Audience
    controlled_audience: Audience  # frozen with a control group, its results measured
    export: Export  # generic CSV
    hashed_export: Export  # Meta, hashed identifiers
    suppression: Suppression
    explanation: ExplanationRun  # about ``person``
    global_explanation: ExplanationRun
    plan: CampaignPlan
    recommendation_run: RecommendationRun
    audit_event: AuditEvent
    role_group: Group
    token: AuthToken
    access_attempt: AccessAttempt  # the login lockout's records (django-axes)
    access_log: AccessLog
    access_failure: AccessFailureLog
    key_rotation: PseudonymKeyRotation
    promotion: ModelPromotion  # the training run put in use
    retrain_schedule: RetrainSchedule
    drift_check: DriftCheck  # of the training run, finished, with an alert

    @property
    def export_job(self) -> Job:
        return self.export.job

    @property
    def recommendation_job(self) -> Job:
        return self.recommendation_run.job


def _upload_csv() -> bytes:
    header = "customer_id,email,phone,first_name,last_name,country,postal_code,age,job"
    lines = [header]
    for i, (first, last, domain, phone, postal) in enumerate(PEOPLE[:3]):
        lines.append(
            f"PII{i:03d},{email_of(first, last, domain)},{phone},{first},{last},GB,"
            f"{postal},{30 + i},{JOBS[i % len(JOBS)]}"
        )
    first, last, email, phone, postal = REFUSED
    lines.append(f"PII900,{email},{phone},{first},{last},GB,{postal},41,student")
    return ("\n".join(lines) + "\n").encode()


def _mapped(by: User, mode: str, name: str) -> Upload:
    upload = upload_create(
        kind=Upload.Kind.CUSTOMERS, file=SimpleUploadedFile(name, _upload_csv(), "text/csv"), by=by
    )
    return upload_set_mapping(upload=upload, mapping=upload.mapping, mode=mode, by=by)


def _import(by: User, mode: str, name: str) -> Upload:
    upload = _mapped(by, mode, name)
    job = upload_import(upload=upload, by=by)
    run_job(job.pk)
    upload.refresh_from_db()
    return upload


def _login_records(username: str) -> dict:
    """A mistyped password, then a login, as the lockout records them."""
    request = {
        "user_agent": "Mozilla/5.0",
        "ip_address": "203.0.113.7",
        "username": username,
        "http_accept": "text/html",
        "path_info": "/accounts/login/",
    }
    return {
        "access_attempt": AccessAttempt.objects.create(
            **request,
            get_data="",
            post_data=f"username={username}\npassword=********",
            failures_since_start=1,
        ),
        "access_failure": AccessFailureLog.objects.create(**request),
        "access_log": AccessLog.objects.create(**request),
    }


def user_with_role(username: str, role: str, *, staff: bool = False) -> User:
    """A user of one role; ``staff`` opens the admin console to them."""
    sync_role_groups()
    user = User.objects.create_user(
        username=username, password="pw-for-tests-only-123", is_staff=staff
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def build_world(*, marketer: User, steward: User, viewer: User) -> World:
    customers = [
        make_customer(
            f"PII{i:03d}",
            identity={
                "email": email_of(first, last, domain),
                "phone": phone,
                "first_name": first,
                "last_name": last,
                "country": "GB",
                "postal_code": postal,
            },
            age=30 + i,
            job=JOBS[i % len(JOBS)],
            balance=round(0.3 * i - 1, 2),
        )
        for i, (first, last, domain, phone, postal) in enumerate(PEOPLE)
    ]
    person = customers[0]
    for customer in customers:
        for purpose in Purpose.values:
            record_consent(customer, purpose)
    consent = consent_record_append(
        customer=person,
        purpose=Purpose.EMAIL_MARKETING,
        status=ConsentRecord.Status.WITHDRAWN,
        lawful_basis=LawfulBasis.CONSENT,
        source=ConsentRecord.Source.FORM,
        notice_version="v2",
        note="Unsubscribed by email",
        by=steward,
    )
    for name, data_type in (("age", "number"), ("job", "text"), ("balance", "number")):
        ProfileField.objects.get_or_create(name=name, defaults={"data_type": data_type})

    # Uploaded by a colleague: the person who uploads a file sees what it holds (to correct
    # it); every other marketer and viewer sees its identifiers masked.
    uploader = user_with_role(f"{marketer.username}-uploader", MARKETER)
    upload = _import(uploader, Upload.Mode.VALID_ROWS, "crm-export.csv")
    failed_upload = _import(uploader, Upload.Mode.ALL_OR_NOTHING, "crm-export-strict.csv")
    pending_upload = _mapped(uploader, Upload.Mode.VALID_ROWS, "crm-export-next.csv")

    offers = make_catalogue()
    offer = offers[0]
    interaction = respond(person, offer, Interaction.Kind.CONVERSION, campaign="spring", value=40.0)
    segment = segment_create(
        name="Adults",
        rules={"op": "and", "rules": [{"field": "attr:age", "operator": "gte", "value": 18}]},
        by=marketer,
    )

    training_run = finished_run(offer, by=marketer)
    scoring_run = finished_scoring(training_run, customers, by=marketer)
    multi_scoring_run = multi_offer_scoring(customers, offers, by=marketer)

    audience = frozen_audience(marketer, segment=segment, name="Spring savers")
    draft_audience = audience_create(
        name="Draft savers", segment=segment, scoring_run=scoring_run, by=marketer
    )
    controlled_audience = frozen_audience(
        marketer,
        segment=segment,
        scoring_run=scoring_run,
        name="Spring savers with a control group",
        control_percent=25,
        control_seed=1,
    )
    run_job(
        audience_results_start(audience=controlled_audience, cost_per_contact=1, by=marketer).pk
    )
    controlled_audience.refresh_from_db()
    export = exported(audience, "generic_csv", marketer)
    hashed_export = exported(audience, "meta_custom_audience_csv", marketer)
    suppression = suppression_add(customer=customers[-1], reason="Objected by phone", by=steward)

    explanation = stored_explanation(training_run, customer=person, by=marketer)
    global_explanation = stored_explanation(training_run, by=marketer)
    plan = campaign_plan_create(
        scoring_run=scoring_run, name="Spring plan", economics=ECONOMICS, offer=offer, by=marketer
    )
    recommendation_run = recommend(multi_scoring_run, by=marketer)
    promotion = model_promote(run=training_run, by=marketer, note="Best so far")
    retrain_schedule = RetrainSchedule.objects.create(
        offer=offer, target="conversion", every_days=30, next_at=timezone.now()
    )
    drift_check = _drift_check(training_run, customers, by=marketer)

    world = World(
        marketer=marketer,
        steward=steward,
        viewer=viewer,
        customers=customers,
        person=person,
        consent=consent,
        offer=offer,
        interaction=interaction,
        profile_field=ProfileField.objects.get(name="age"),
        segment=segment,
        upload=upload,
        failed_upload=failed_upload,
        pending_upload=pending_upload,
        job=upload.job,
        failed_job=failed_upload.job,
        erasure_job=Job.objects.create(
            kind=Job.Kind.ERASE,
            title="Erasure of a customer",
            status=Job.Status.SUCCEEDED,
            progress=100,
            params={"customer": 0, "reason": "Request by letter"},
            result={"identity": 1, "models_flagged": 1, "flagged_runs": [training_run.pk]},
            created_by=steward,
        ),
        training_run=training_run,
        scoring_run=scoring_run,
        multi_scoring_run=multi_scoring_run,
        audience=audience,
        draft_audience=draft_audience,
        controlled_audience=controlled_audience,
        export=export,
        hashed_export=hashed_export,
        suppression=suppression,
        explanation=explanation,
        global_explanation=global_explanation,
        plan=plan,
        recommendation_run=recommendation_run,
        audit_event=AuditEvent.objects.filter(action=AuditEvent.Action.IMPORT).first(),
        role_group=Group.objects.get(name=VIEWER),
        token=AuthToken.objects.create(user=marketer)[0],
        **_login_records(steward.username),
        key_rotation=PseudonymKeyRotation.objects.create(
            old_key_fingerprint="0f" * 8,
            new_key_fingerprint="a1" * 8,
            status=PseudonymKeyRotation.Status.FINISHED,
            counts={"customers": len(customers)},
            finished_at=timezone.now(),
        ),
        promotion=promotion,
        retrain_schedule=retrain_schedule,
        drift_check=drift_check,
    )
    return world


def _drift_check(run: TrainingRun, customers: list[Customer], *, by: User) -> DriftCheck:
    """A finished drift check of ``run`` in which the customers' ages moved."""
    import pandas as pd

    from recengine.drift import drift_report

    trained = pd.DataFrame({"age": [20.0 + i % 5 for i in range(50)], "balance": [0.1] * 50})
    recent = pd.DataFrame(
        {"age": [float(c.attributes["age"]) for c in customers], "balance": [0.1] * len(customers)}
    )
    job = Job.objects.create(
        kind=Job.Kind.DRIFT,
        title=f"Drift check of “{run.name}”",
        status=Job.Status.SUCCEEDED,
        progress=100,
        message="Done",
        created_by=by,
    )
    report = drift_report(trained, recent).as_dict()
    return DriftCheck.objects.create(
        job=job,
        training_run=run,
        report=report,
        live={"responses": 12, "test_auc": 0.7},
        alert=bool(report["moved"]),
        recent_rows=len(customers),
        created_by=by,
    )


# Which fixture rows (``World`` attributes) a route with an id is walked with: by the route's
# name (API routes as "api:<name>", since the router reuses the pages' names), or else by the
# longest path prefix (keys ending in "/").
OBJECTS: dict[str, tuple[str, ...]] = {
    # pages
    "upload-detail": ("upload", "failed_upload", "pending_upload"),
    "upload-mapping": ("pending_upload",),
    "upload-preview": ("pending_upload",),
    "upload-errors": ("upload", "failed_upload"),
    "customers/": ("person",),
    "segment-detail": ("segment",),
    "segment-edit": ("segment",),
    "segment-count": ("segment",),
    "model-detail": ("training_run",),
    "model-score": ("training_run",),
    "model-retrain": ("training_run",),
    "model-promote": ("training_run",),
    "model-rollback": ("training_run",),
    "model-history": ("training_run",),
    "model-drift": ("training_run",),
    "model-compare": ("training_run",),
    "customer-erasure": ("erasure_job",),
    "model-explain": ("training_run",),
    "model-scoring-detail": ("scoring_run", "multi_scoring_run"),
    "model-audience-diversity": ("scoring_run", "multi_scoring_run"),
    "model-audience-diversity-compute": ("scoring_run",),
    "recommendation-detail": ("recommendation_run",),
    "campaigns/plans/": ("plan",),
    "audiences/": ("audience", "draft_audience", "controlled_audience"),
    "exports/": ("export", "hashed_export"),
    "jobs/": ("job", "failed_job", "export_job", "recommendation_job"),
    # API
    "api/customers/": ("person",),
    "api/offers/": ("offer",),
    "api/interactions/": ("interaction",),
    "api/consents/": ("consent",),
    "api/segments/": ("segment",),
    "api/uploads/": ("upload", "failed_upload", "pending_upload"),
    "api/jobs/": ("job", "failed_job", "export_job", "recommendation_job"),
    "api/training-runs/": ("training_run",),
    "api/scoring-runs/": ("scoring_run", "multi_scoring_run"),
    "api/audiences/": ("audience", "draft_audience", "controlled_audience"),
    "api/exports/": ("export", "hashed_export"),
    "api/suppressions/": ("suppression",),
    "api/explanations/": ("explanation", "global_explanation"),
    "api/campaign-plans/": ("plan",),
    "api/recommendation-runs/": ("recommendation_run",),
    # admin
    "admin/auth/group/": ("role_group",),
    "admin/auth/user/": ("viewer", "steward"),
    "admin/knox/authtoken/": ("token",),
    "admin/axes/accessattempt/": ("access_attempt",),
    "admin/axes/accesslog/": ("access_log",),
    "admin/axes/accessfailurelog/": ("access_failure",),
    "admin/marketing/customer/": ("person",),
    "admin/marketing/consentrecord/": ("consent",),
    "admin/marketing/segment/": ("segment",),
    "admin/marketing/offer/": ("offer",),
    "admin/marketing/interaction/": ("interaction",),
    "admin/marketing/profilefield/": ("profile_field",),
    "admin/marketing/job/": ("job", "failed_job", "export_job", "recommendation_job"),
    "admin/marketing/upload/": ("upload", "failed_upload"),
    "admin/marketing/auditevent/": ("audit_event",),
    "admin/marketing/audience/": ("audience",),
    "admin/marketing/export/": ("export",),
    "admin/marketing/suppression/": ("suppression",),
    "admin/marketing/trainingrun/": ("training_run",),
    "admin/marketing/scoringrun/": ("scoring_run",),
    "admin/marketing/explanationrun/": ("explanation",),
    "admin/marketing/campaignplan/": ("plan",),
    "admin/marketing/recommendationrun/": ("recommendation_run",),
    "admin/marketing/pseudonymkeyrotation/": ("key_rotation",),
    "admin/marketing/modelpromotion/": ("promotion",),
    "admin/marketing/retrainschedule/": ("retrain_schedule",),
    "admin/marketing/driftcheck/": ("drift_check",),
    # the admin's "view on site" link: the person's customer page
    "admin:view_on_site": ("person",),
}


def rows_for(name: str, path: str) -> tuple[str, ...] | None:
    """The ``OBJECTS`` entry for a route: by its name, else by the longest prefix of its path
    (without the leading slash); None when neither says."""
    if name in OBJECTS:
        return OBJECTS[name]
    path = path.lstrip("/")
    prefixes = [key for key in OBJECTS if key.endswith("/") and path.startswith(key)]
    return OBJECTS[max(prefixes, key=len)] if prefixes else None
