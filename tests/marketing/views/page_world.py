"""A dashboard with one of everything (uploads, segments, a multi-offer scoring run with
recommendations, a campaign plan, a frozen audience and its export), whose customer base can
grow while every object stays the same: more customers, each with an identity, a consent
history, responses, scores, recommendations and an audience membership.

The pages' work must not grow with the base; tests render each page at two sizes of the same
world and compare (query counts, or the rows the database reads).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from marketing.models import (
    Audience,
    AudienceMember,
    CampaignPlan,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    CustomerRecommendation,
    CustomerScore,
    Export,
    Interaction,
    LawfulBasis,
    Offer,
    ProfileField,
    Purpose,
    RecommendationRun,
    ScoringRun,
    Segment,
    Upload,
)
from marketing.pseudonyms import pseudonym_for
from marketing.roles import DATA_STEWARD, MARKETER, VIEWER
from marketing.services.audiences import audience_create, audience_freeze
from marketing.services.current_consent import current_consent_refresh
from marketing.services.exports import export_create
from marketing.services.ingest import upload_create, upload_import, upload_set_mapping
from marketing.services.plans import campaign_plan_create
from marketing.services.segments import segment_create
from tests.marketing.plan_helpers import ECONOMICS
from tests.marketing.recommendation_helpers import make_catalogue, multi_offer_scoring, recommend
from tests.marketing.training_helpers import finished_run, finished_scoring

EVERY_ROLE = (MARKETER, DATA_STEWARD, VIEWER)
WRITERS = (MARKETER,)
UPLOADERS = (MARKETER, DATA_STEWARD)
CONSENT_RULES = {
    "op": "and",
    "rules": [{"field": "consent:email_marketing", "operator": "has_consent"}],
}
ALL_OR_NOTHING = Upload.Mode.ALL_OR_NOTHING
JOB_RULES = {"op": "and", "rules": [{"field": "attr:job", "operator": "eq", "value": "admin."}]}
# A consent history per customer, cycling: the purposes granted, one denied, one withdrawn.
PURPOSES = [p.value for p in Purpose]
UPLOAD_CSV = (
    "customer_id,email,age,job,consent_email_marketing,consent_date\n"
    "U001,u1@example.com,30,admin.,granted,2025-01-01\n"
    "U002,u2@example.com,40,student,denied,2025-01-01\n"
)


@dataclass
class PageWorld:
    offers: list[Offer]
    consent_segment: Segment
    job_segment: Segment
    scoring: ScoringRun
    single_scoring: ScoringRun
    recommendations: RecommendationRun
    plan: CampaignPlan
    audience: Audience
    export: Export
    imported_upload: Upload
    pending_upload: Upload
    customer: Customer
    size: int = 0
    added: list[int] = field(default_factory=list)


def build_world(by) -> PageWorld:
    """Every object, over a first few customers (those the services need to run)."""
    ProfileField.objects.get_or_create(name="job", defaults={"label": "Job", "data_type": "text"})
    ProfileField.objects.get_or_create(name="age", defaults={"label": "Age", "data_type": "number"})
    offers = make_catalogue()
    _add_customers(0, 5, offers)
    customers = list(Customer.objects.order_by("pk"))
    scoring = multi_offer_scoring(customers, offers, by=by)
    # Audience diversity compares the audience of one offer: a single-offer run of its own.
    single_scoring = finished_scoring(finished_run(offers[0], by=by), customers, by=by)
    recommendations = recommend(scoring, k=2, by=by)
    consent_segment = segment_create(name="Email consent", rules=CONSENT_RULES, by=by)
    job_segment = segment_create(name="Admin staff", rules=JOB_RULES, by=by)
    audience = audience_create(
        name="Email consent · best offer", segment=consent_segment, scoring_run=scoring, by=by
    )
    audience = audience_freeze(audience=audience, by=by)
    export = export_create(audience=audience, platform="meta_custom_audience", by=by)
    imported = upload_create(
        kind="customers", file=ContentFile(UPLOAD_CSV.encode(), "a.csv"), by=by
    )
    upload_set_mapping(upload=imported, mapping=imported.mapping, mode=ALL_OR_NOTHING, by=by)
    upload_import(upload=imported, by=by)
    # Mapped, not imported: its mapping and preview steps are pages.
    pending = upload_create(kind="customers", file=ContentFile(UPLOAD_CSV.encode(), "b.csv"), by=by)
    upload_set_mapping(upload=pending, mapping=pending.mapping, mode=ALL_OR_NOTHING, by=by)
    plan = campaign_plan_create(
        scoring_run=scoring, name="Spring calls", economics=ECONOMICS, offer=offers[0], by=by
    )
    world = PageWorld(
        offers=offers,
        consent_segment=consent_segment,
        job_segment=job_segment,
        scoring=scoring,
        single_scoring=single_scoring,
        recommendations=recommendations,
        plan=plan,
        audience=audience,
        export=export,
        imported_upload=imported,
        pending_upload=pending,
        customer=customers[0],
    )
    world.size = Customer.objects.count()
    return world


def grow(world: PageWorld, size: int) -> None:
    """More customers, each with the same kinds of rows as the first (in the same scoring
    run, recommendation run and audience), until the base holds ``size``."""
    start = Customer.objects.count()
    if size <= start:
        return
    new = _add_customers(start, size, world.offers)
    CustomerScore.objects.bulk_create(
        CustomerScore(scoring_run=world.scoring, customer_id=pk, offer=offer, score=0.3 + 0.1 * j)
        for pk in new
        for j, offer in enumerate(world.offers)
    )
    CustomerScore.objects.bulk_create(
        CustomerScore(
            scoring_run=world.single_scoring, customer_id=pk, offer=world.offers[0], score=0.4
        )
        for pk in new
    )
    CustomerRecommendation.objects.bulk_create(
        CustomerRecommendation(
            recommendation_run=world.recommendations,
            customer_id=pk,
            offer=world.offers[rank - 1],
            rank=rank,
            score=0.9 - 0.1 * rank,
        )
        for pk in new
        for rank in (1, 2)
    )
    pseudonyms = dict(Customer.objects.filter(pk__in=new).values_list("pk", "pseudonym"))
    members = world.audience.size
    AudienceMember.objects.bulk_create(
        AudienceMember(
            audience=world.audience,
            customer_id=pk,
            pseudonym=pseudonyms[pk],
            score=0.5,
            rank=members + i + 1,
            why="grown",
        )
        for i, pk in enumerate(new)
    )
    Audience.objects.filter(pk=world.audience.pk).update(size=members + len(new))
    world.audience.refresh_from_db()
    world.size = size
    world.added.extend(new)


def grow_by_sql(world: PageWorld, size: int) -> None:
    """``grow`` in a few INSERT ... SELECT statements over generate_series (PostgreSQL), for
    a base of 100,000 customers in seconds. The same rows as ``grow`` adds."""
    start = Customer.objects.count()
    last_id = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    offers = [offer.pk for offer in world.offers]
    now = timezone.now()
    statements = [
        (
            "INSERT INTO marketing_customer (external_id, pseudonym, attributes, created_at,"
            " updated_at) SELECT 'W' || lpad(i::text, 7, '0'), md5('a' || i) || md5('b' || i),"
            " jsonb_build_object('job', (ARRAY['admin.', 'student', 'retired'])[i %% 3 + 1],"
            " 'age', 20 + i %% 60), %(now)s, %(now)s FROM generate_series(%(start)s, %(stop)s) i",
        ),
        (
            "INSERT INTO marketing_customeridentity (customer_id, email, phone, first_name,"
            " last_name, country, postal_code, digests, updated_at) SELECT id,"
            " 'w' || id || '@example.com', '+49 30 1234567', 'Wera', 'Weber', 'DE', '10115',"
            " '{}', %(now)s FROM marketing_customer WHERE id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_consentrecord (customer_id, purpose, status, lawful_basis,"
            " effective_at, source, notice_version, note, recorded_at) SELECT c.id, p,"
            " CASE WHEN c.id %% 5 = 4 THEN %(denied)s ELSE %(granted)s END, %(basis)s,"
            " %(then)s, %(form)s, 'v1', '', %(now)s FROM marketing_customer c,"
            " unnest(%(purposes)s) p WHERE c.id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_consentrecord (customer_id, purpose, status, lawful_basis,"
            " effective_at, source, notice_version, note, recorded_at) SELECT c.id, p,"
            " %(withdrawn)s, %(basis)s, %(lately)s, %(form)s, 'v1', '', %(now)s"
            " FROM marketing_customer c, unnest(%(purposes)s) p"
            " WHERE c.id > %(last_id)s AND c.id %% 7 = 6",
        ),
        (
            "INSERT INTO marketing_interaction (customer_id, offer_id, kind, occurred_at,"
            " campaign) SELECT c.id, (%(offers)s::int[])[c.id %% %(offer_count)s + 1], k,"
            " %(now)s - (1 + c.id %% 30) * interval '1 day', '' FROM marketing_customer c,"
            " unnest(%(kinds)s) k WHERE c.id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_customerscore (scoring_run_id, customer_id, offer_id, score)"
            " SELECT %(scoring)s, c.id, o, 0.3 FROM marketing_customer c, unnest(%(offers)s) o"
            " WHERE c.id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_customerscore (scoring_run_id, customer_id, offer_id, score)"
            " SELECT %(single)s, id, (%(offers)s::int[])[1], 0.4 FROM marketing_customer"
            " WHERE id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_customerrecommendation (recommendation_run_id, customer_id,"
            " offer_id, rank, score) SELECT %(recommendations)s, c.id,"
            " (%(offers)s::int[])[r], r, 0.9 - 0.1 * r FROM marketing_customer c,"
            " generate_series(1, 2) r WHERE c.id > %(last_id)s",
        ),
        (
            "INSERT INTO marketing_audiencemember (audience_id, customer_id, pseudonym, score,"
            " rank, why) SELECT %(audience)s, id, pseudonym, 0.5,"
            " %(members)s + row_number() OVER (ORDER BY id), 'grown' FROM marketing_customer"
            " WHERE id > %(last_id)s",
        ),
    ]
    params = {
        "now": now,
        "then": now - timedelta(days=60),
        "lately": now - timedelta(days=5),
        "start": start,
        "stop": size - 1,
        "last_id": last_id,
        "purposes": PURPOSES,
        "granted": ConsentRecord.Status.GRANTED.value,
        "denied": ConsentRecord.Status.DENIED.value,
        "withdrawn": ConsentRecord.Status.WITHDRAWN.value,
        "basis": LawfulBasis.CONSENT.value,
        "form": ConsentRecord.Source.FORM.value,
        "offers": offers,
        "offer_count": len(offers),
        "kinds": [Interaction.Kind.IMPRESSION.value, Interaction.Kind.CLICK.value],
        "scoring": world.scoring.pk,
        "single": world.single_scoring.pk,
        "recommendations": world.recommendations.pk,
        "audience": world.audience.pk,
        "members": world.audience.size,
    }
    with connection.cursor() as cursor:
        for (sql,) in statements:
            cursor.execute(sql, params)
    # The history was written around the services: the consent in effect is worked out again,
    # as the rebuild command does after such a load.
    current_consent_refresh(
        customer_ids=list(Customer.objects.filter(pk__gt=last_id).values_list("pk", flat=True))
    )
    Audience.objects.filter(pk=world.audience.pk).update(size=F("size") + size - start)
    world.audience.refresh_from_db()
    world.size = size


def _add_customers(start: int, stop: int, offers: list[Offer]) -> list[int]:
    """Customers ``start`` to ``stop - 1``: identity, consent for every purpose (every fifth
    denied, every seventh later withdrawn), two responses. Returns their ids."""
    ids = [f"W{i:07d}" for i in range(start, stop)]
    Customer.objects.bulk_create(
        Customer(
            external_id=external_id,
            pseudonym=pseudonym_for(external_id),
            attributes={"job": ("admin.", "student", "retired")[i % 3], "age": 20 + i % 60},
        )
        for i, external_id in enumerate(ids, start=start)
    )
    pks = list(
        Customer.objects.filter(external_id__in=ids).order_by("pk").values_list("pk", flat=True)
    )
    CustomerIdentity.objects.bulk_create(
        CustomerIdentity(
            customer_id=pk,
            email=f"w{pk}@example.com",
            phone="+49 30 1234567",
            first_name="Wera",
            last_name="Weber",
            country="DE",
            postal_code="10115",
        )
        for pk in pks
    )
    now = timezone.now()
    consents = []
    for n, pk in enumerate(pks, start=start):
        for purpose in PURPOSES:
            status = ConsentRecord.Status.DENIED if n % 5 == 4 else ConsentRecord.Status.GRANTED
            consents.append(_consent(pk, purpose, status, now - timedelta(days=60)))
            if n % 7 == 6:
                consents.append(
                    _consent(pk, purpose, ConsentRecord.Status.WITHDRAWN, now - timedelta(days=5))
                )
    ConsentRecord.objects.bulk_create(consents)
    current_consent_refresh(customer_ids=[c.customer_id for c in consents])
    Interaction.objects.bulk_create(
        Interaction(
            customer_id=pk,
            offer=offers[n % len(offers)],
            kind=kind,
            occurred_at=now - timedelta(days=1 + n % 30),
        )
        for n, pk in enumerate(pks, start=start)
        for kind in (Interaction.Kind.IMPRESSION, Interaction.Kind.CLICK)
    )
    return pks


def _consent(pk: int, purpose: str, status: str, at) -> ConsentRecord:
    return ConsentRecord(
        customer_id=pk,
        purpose=purpose,
        status=status,
        effective_at=at,
        source=ConsentRecord.Source.FORM,
        notice_version="v1",
    )


@dataclass(frozen=True)
class Page:
    """A GET page of the dashboard: its URL name, how to build its URL, who may see it."""

    name: str
    url: Callable[[PageWorld], str]
    roles: tuple[str, ...] = EVERY_ROLE

    def __str__(self) -> str:
        return self.name


def _named(name: str, *args: Callable[[PageWorld], object], query: str = "") -> Page:
    return Page(name, lambda w: reverse(name, args=[arg(w) for arg in args]) + query)


def _only(page: Page, roles: tuple[str, ...]) -> Page:
    return Page(page.name, page.url, roles)


# Every GET page of marketing/views/urls.py. Left out, as they answer GET with no page: the
# POST-only views (demo data, explanations, scoring, freeze, export, the plan's replan,
# actuals and uplift) and the file downloads (an export, an upload's error file).
PAGES = [
    _named("overview"),
    _named("upload-list"),
    _only(_named("upload-create"), UPLOADERS),
    _named("upload-detail", lambda w: w.imported_upload.pk),
    _only(_named("upload-mapping", lambda w: w.pending_upload.pk), UPLOADERS),
    _only(_named("upload-preview", lambda w: w.pending_upload.pk), UPLOADERS),
    _named("customer-list"),
    Page("customer-list?consent", lambda w: reverse("customer-list") + "?consent=email_marketing"),
    Page("customer-list?q", lambda w: reverse("customer-list") + "?q=W00000"),
    Page("customer-list?page=last", lambda w: reverse("customer-list") + "?page=last"),
    _named("customer-detail", lambda w: w.customer.pk),
    _only(_named("customer-portability", lambda w: w.customer.pk), (DATA_STEWARD,)),
    _named("segment-list"),
    _only(_named("segment-create"), WRITERS),
    _named("segment-detail", lambda w: w.consent_segment.pk),
    Page("segment-detail?attribute", lambda w: reverse("segment-detail", args=[w.job_segment.pk])),
    _only(_named("segment-edit", lambda w: w.consent_segment.pk), WRITERS),
    _named("model-list"),
    _only(_named("model-create"), WRITERS),
    _named("model-detail", lambda w: w.scoring.training_run_id),
    _named("model-scoring-detail", lambda w: w.scoring.pk),
    _named("model-audience-diversity", lambda w: w.single_scoring.pk),
    _named("recommendation-list"),
    _only(_named("recommendation-create"), WRITERS),
    _named("recommendation-detail", lambda w: w.recommendations.pk),
    _named("plan-list"),
    _only(_named("plan-create"), WRITERS),
    _named("plan-detail", lambda w: w.plan.pk),
    _named("audience-list"),
    _only(_named("audience-create"), WRITERS),
    _named("audience-detail", lambda w: w.audience.pk),
    _named("export-list"),
    _named("job-list"),
    _named("job-detail", lambda w: w.export.job_id),
]
PAGE_ROLES = [(page, role) for page in PAGES for role in page.roles]


def analyze() -> None:
    """Fresh planner statistics, as autovacuum would have after a load (PostgreSQL only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
