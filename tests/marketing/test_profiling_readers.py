"""Every reader of scores, explanations and recommendations leaves out a customer who has
withdrawn their profiling consent since those were computed.

The world: twelve customers with ad targeting and profiling consent, scored by a single-offer
run (the victim scores highest, so every top cut picks them first), a multi-offer run with a
recommendation run, an explanation of the victim's score, and an audience frozen while the
victim still consented. Then the victim withdraws profiling, and each reader is asked.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from marketing.models import (
    Audience,
    Customer,
    ProfileField,
    Purpose,
    RecommendationRun,
    ScoringRun,
    Segment,
)
from marketing.selectors.audiences import AudienceCut, audience_candidates
from marketing.selectors.plans import consented_scores
from marketing.selectors.recommendations import customer_list, run_lists
from marketing.selectors.training import customer_latest_scores, top_scores
from marketing.services.audience_diversity import audience_diversity
from marketing.services.audiences import audience_create, audience_freeze
from marketing.services.plans import campaign_plan_create
from tests.factories import make_offer
from tests.marketing.api.helpers import logged_in
from tests.marketing.explain_helpers import stored_explanation
from tests.marketing.recommendation_helpers import make_catalogue, multi_offer_scoring, recommend
from tests.marketing.services.audience_helpers import (
    everyone_segment,
    exported,
    frozen_audience,
    make_people,
)
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db

ECONOMICS = {
    "cost_per_contact": 2.0,
    "fixed_cost": 0.0,
    "value_per_conversion": 50.0,
    "budget": None,
}


@dataclass
class World:
    victim: Customer
    scoring: ScoringRun
    multi: ScoringRun
    recommendations: RecommendationRun
    explanation_id: int
    frozen: Audience
    segment: Segment
    client: Client
    marketer: object
    admin: Client


@pytest.fixture
def world(marketer, viewer, admin_user) -> World:
    customers = make_people(
        12,
        purposes=(Purpose.AD_TARGETING, Purpose.PROFILING),
        attributes={"job": "student", "balance": 0.5, "age": 40},
    )
    for name, data_type in (("job", "text"), ("balance", "number"), ("age", "number")):
        ProfileField.objects.create(name=name, data_type=data_type)
    segment = everyone_segment()
    run = finished_run(make_offer("TERM-DEPOSIT", title="Term deposit"))
    scoring = finished_scoring(run, customers)  # the last customer scores highest
    victim = customers[-1]
    multi = multi_offer_scoring(customers, make_catalogue())
    recommendations = recommend(multi)
    explanation = stored_explanation(run, customer=victim)
    frozen = frozen_audience(
        marketer,
        segment=segment,
        scoring_run=scoring,
        cut=AudienceCut("top_n", 12),
        name="Frozen before the withdrawal",
    )
    assert frozen.members.filter(customer=victim).exists()
    add_consent([victim], Purpose.PROFILING, status="withdrawn", days_ago=1)
    return World(
        victim,
        scoring,
        multi,
        recommendations,
        explanation.pk,
        frozen,
        segment,
        logged_in(viewer),
        marketer,
        logged_in(admin_user),
    )


def _text(response) -> str:
    assert response.status_code in (200, 403), response.status_code
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _shows(w: World, text: str) -> bool:
    return w.victim.pseudonym[:16] in text


def _exported_scores(w: World) -> dict[str, str]:
    export = exported(w.frozen, "generic_csv", w.marketer)
    with open(Path(settings.MEDIA_ROOT) / export.file_path, newline="") as handle:
        return {row["pseudonym"]: row["score"] for row in csv.DictReader(handle)}


# Each reader answers: does it still use the victim's scores (or what came from them)?
READERS: dict[str, Callable[[World], bool]] = {
    "scores download (CSV)": lambda w: _shows(
        w, _text(w.client.get(f"/api/scoring-runs/{w.scoring.pk}/scores/", {"format": "csv"}))
    ),
    "scores download (JSON)": lambda w: _shows(
        w, _text(w.client.get(f"/api/scoring-runs/{w.scoring.pk}/scores/", {"format": "json"}))
    ),
    "scoring page's top list": lambda w: _shows(
        w, _text(w.client.get(reverse("model-scoring-detail", args=[w.scoring.pk])))
    ),
    "top scores": lambda w: w.victim.pk in {r["customer_id"] for r in top_scores(w.scoring)},
    "customer's latest scores": lambda w: bool(customer_latest_scores(w.victim)),
    "customer page": lambda w: (
        "0.900" in _text(w.client.get(reverse("customer-detail", args=[w.victim.pk])))
    ),
    "audience by score (top N)": lambda w: (
        w.victim
        in audience_candidates(
            rules=w.segment.rules, scoring_run=w.scoring, cut=AudienceCut("top_n", 3)
        )
    ),
    "audience by score (threshold)": lambda w: (
        audience_candidates(
            rules=w.segment.rules,
            scoring_run=w.scoring,
            cut=AudienceCut("threshold", 0.5),
        )
        .filter(pk=w.victim.pk)
        .exists()
    ),
    "audience without a cut carries the score": lambda w: (
        audience_candidates(
            rules=w.segment.rules,
            scoring_run=w.scoring,
        )
        .get(pk=w.victim.pk)
        .audience_score
        is not None
    ),
    "audience frozen now": lambda w: (
        audience_freeze(
            audience=audience_create(
                name="Top 3",
                segment=w.segment,
                scoring_run=w.scoring,
                cut=AudienceCut("top_n", 3),
                by=w.marketer,
            ),
            by=w.marketer,
        )
        .members.filter(customer=w.victim)
        .exists()
    ),
    "audience page's member sample": lambda w: (
        "0.900" in _text(w.client.get(reverse("audience-detail", args=[w.frozen.pk])))
    ),
    "export of an audience frozen before": lambda w: bool(
        _exported_scores(w).get(w.victim.pseudonym)
    ),
    "campaign plan scores": lambda w: (
        consented_scores(w.scoring, None).filter(customer=w.victim).exists()
    ),
    "campaign plan": lambda w: (
        campaign_plan_create(
            name="Plan",
            scoring_run=w.scoring,
            offer=None,
            economics=ECONOMICS,
            by=w.marketer,
        ).result["consent"]["used"]
        == 12
    ),
    "audience diversity": lambda w: (
        audience_diversity(scoring_run=w.scoring, top_n=10)["base_size"] == 12
    ),
    "recommendation lists": lambda w: (
        w.victim.pk in {row["customer_id"] for row in run_lists(w.recommendations, customers=20)}
    ),
    "customer's recommendations": lambda w: customer_list(w.recommendations, w.victim) is not None,
    "recommendation page": lambda w: _shows(
        w, _text(w.client.get(reverse("recommendation-detail", args=[w.recommendations.pk])))
    ),
    "recommendations API (customer)": lambda w: (
        w.client.get(
            f"/api/recommendation-runs/{w.recommendations.pk}/customers/{w.victim.pk}/",
        ).status_code
        == 200
    ),
    "explanation API": lambda w: (
        w.client.get(f"/api/explanations/{w.explanation_id}/").json()["result"] is not None
    ),
    "explanation in the admin console": lambda w: (
        "contributions"
        in _text(
            w.admin.get(reverse("admin:marketing_explanationrun_change", args=[w.explanation_id]))
        )
    ),
    "explanations API list": lambda w: any(
        row["result"] is not None
        for row in w.client.get("/api/explanations/", {"customer": w.victim.pk}).json()["results"]
    ),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_it_leaves_a_withdrawn_customer_out_of_every_reader(world, reader):
    assert not READERS[reader](world), f"{reader} still uses the withdrawn customer's scores"


def test_it_still_shows_the_other_customers(world):
    others = {r["customer_id"] for r in top_scores(world.scoring)}
    assert len(others) == 11 and world.victim.pk not in others


def test_the_csv_download_has_a_row_per_consented_customer(world):
    text = _text(
        world.client.get(f"/api/scoring-runs/{world.scoring.pk}/scores/", {"format": "csv"})
    )
    assert len(list(csv.DictReader(io.StringIO(text)))) == 11
