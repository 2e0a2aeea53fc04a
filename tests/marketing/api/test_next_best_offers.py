"""POST /api/next-best-offers/: the model in use for every offer chooses a person's offers in
real time, as a scoring run scores them, without the offers shown too often lately, and
never for a customer who may not be profiled."""

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken

from marketing.api.next_best_offers import NextBestOffersSerializer, answer
from marketing.models import CustomerScore, Interaction, Job, ProfileField, Purpose, Suppression
from marketing.services import next_best_offers as nbo
from marketing.services.champions import model_promote
from marketing.services.erasure import customer_erase
from marketing.services.scoring import scoring_run_create
from marketing.throttles import NextBestOfferThrottle
from tests.factories import make_customer, make_offer, record_consent
from tests.marketing.training_helpers import finished_run

pytestmark = pytest.mark.django_db

URL = "/api/next-best-offers/"
# (external id, title, category): two genres, so that diversity has something to weigh.
CATALOGUE = [
    ("M-1", "Alien", "sci-fi,horror"),
    ("M-2", "Blade Runner", "sci-fi"),
    ("M-3", "Solaris", "sci-fi,drama"),
    ("M-4", "Amélie", "comedy,romance"),
    ("M-5", "Clueless", "comedy"),
    ("M-6", "Heat", "crime,drama"),
]
JOBS = ["student", "engineer", "artist"]
SCORERS = {
    "served": {"val_auc": 0.7, "rows_per_s": 100.0},
    "int8": {"val_auc": 0.7, "rows_per_s": 150.0},
    "fast": {"val_auc": 0.69, "rows_per_s": 50000.0},
}


@pytest.fixture(autouse=True)
def _nothing_kept_between_tests(monkeypatch):
    """Each process keeps the champion's model and the offers; each test has its own."""
    monkeypatch.setattr(nbo, "_served", {})


@pytest.fixture(scope="session")
def student_model(tmp_path_factory) -> tuple[str, str]:
    """(registry folder, model id) of a multi-offer model whose fast scorer (a LightGBM
    student) learnt that students like science fiction and older people comedies."""
    from recengine.registry import ModelRegistry
    from recengine.score import DistilledScorer, StudentConfig

    rng = np.random.default_rng(0)
    rows, logits = [], []
    for i in range(400):
        _, title, category = CATALOGUE[i % len(CATALOGUE)]
        age, job = int(rng.integers(18, 80)), JOBS[int(rng.integers(0, 3))]
        rows.append(
            {
                "age": age,
                "job": job,
                "offer_title": title,
                "offer_category": category,
                "offer_price": None,
            }
        )
        logits.append(
            2.0 * (job == "student") * ("sci-fi" in category)
            + 0.05 * (age - 40) * ("comedy" in category)
            + rng.normal(0, 0.1)
        )
    student = DistilledScorer(StudentConfig(threads=1, n_estimators=40)).fit(
        pd.DataFrame(rows), np.asarray(logits)
    )
    root = tmp_path_factory.mktemp("nbo-registry")
    model_id = ModelRegistry(root).save(
        student,
        name="every offer",
        fingerprint="0" * 64,
        pseudonyms=[],
        consent_snapshot={},
        parts={"student": student},
    )
    return str(root), model_id


@pytest.fixture
def offers():
    return [make_offer(code, title=title, category=category) for code, title, category in CATALOGUE]


@pytest.fixture
def champion(settings, student_model, offers, marketer):
    settings.MODEL_REGISTRY_DIR = Path(student_model[0])
    for name, data_type in (("age", "number"), ("job", "category")):
        ProfileField.objects.get_or_create(name=name, defaults={"data_type": data_type})
    run = multi_offer_run(student_model[1], marketer)
    model_promote(run=run, by=marketer)
    return run


def multi_offer_run(model_id: str, by):
    metrics = {**finished_run(None).metrics, "scorers": SCORERS}
    return finished_run(None, model_id=model_id, metrics=metrics, by=by)


def consented(external_id: str = "C-1", **attributes):
    customer = make_customer(external_id, **{"age": 22, "job": "student", **attributes})
    record_consent(customer, Purpose.PROFILING)
    return customer


def ask(client, **body):
    return client.post(URL, body, content_type="application/json")


def show(customer, offer, *, times: int, days_ago: float) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    Interaction.objects.bulk_create(
        Interaction(
            customer=customer,
            offer=offer,
            kind=Interaction.Kind.IMPRESSION,
            occurred_at=at - timedelta(minutes=i),
        )
        for i in range(times)
    )


def listed(response) -> list[str]:
    return [offer["external_id"] for offer in response.json()["offers"]]


def test_it_scores_a_customer_as_a_scoring_run_of_the_fast_scorer_does(
    marketer_client, marketer, champion, django_capture_on_commit_callbacks
):
    customer = consented()
    with django_capture_on_commit_callbacks(execute=True):
        scoring = scoring_run_create(
            training_run=champion, segment=None, by=marketer, scorer="fast"
        )
    scoring.refresh_from_db()
    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    stored = dict(
        CustomerScore.objects.filter(scoring_run=scoring, customer=customer).values_list(
            "offer__external_id", "score"
        )
    )

    response = ask(marketer_client, external_id="C-1", limit=6, diversity=0)

    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer["training_run"] == champion.pk and answer["scorer"] == "fast"
    assert answer["external_id"] == "C-1" and answer["pseudonym"] == customer.pseudonym
    chosen = {offer["external_id"]: offer["score"] for offer in answer["offers"]}
    assert chosen == pytest.approx(stored, abs=1e-6)
    assert listed(response) == sorted(stored, key=lambda code: -stored[code])
    assert [offer["rank"] for offer in answer["offers"]] == [1, 2, 3, 4, 5, 6]
    assert listed(response)[0] in ("M-1", "M-2", "M-3")  # a student: science fiction first
    # Scored by the model's customer and offer halves, not by joined rows.
    assert nbo._served[champion.target].catalogue.factored is not None


def test_it_varies_the_categories_when_asked_for_diversity(marketer_client, champion):
    consented()

    plain = listed(ask(marketer_client, external_id="C-1", limit=3, diversity=0))
    varied = listed(ask(marketer_client, external_id="C-1", limit=3, diversity=0.9))

    assert set(plain) == {"M-1", "M-2", "M-3"}  # all science fiction
    assert len(varied) == 3 and not set(varied) <= {"M-1", "M-2", "M-3"}


def test_it_leaves_out_an_offer_shown_as_often_as_the_cap_allows_in_the_window(
    marketer_client, champion, offers, settings
):
    settings.NBO_FREQUENCY_CAP, settings.NBO_FREQUENCY_DAYS = 3, 7
    customer = consented()
    alien, blade_runner, solaris = offers[:3]
    show(customer, alien, times=3, days_ago=1)  # at the cap: left out
    show(customer, blade_runner, times=2, days_ago=1)  # one below: still offered
    show(customer, solaris, times=5, days_ago=8)  # before the window: not counted

    response = ask(marketer_client, external_id="C-1", limit=6, diversity=0)

    assert response.status_code == 200
    assert sorted(listed(response)) == ["M-2", "M-3", "M-4", "M-5", "M-6"]
    assert response.json()["frequency_capped"] == 1
    show(customer, blade_runner, times=1, days_ago=2)
    assert "M-2" not in listed(ask(marketer_client, external_id="C-1", limit=6))


def test_a_request_by_token_reads_the_token_model_in_use_customer_and_impressions_once_each(
    client, champion, offers, marketer, settings
):
    settings.NBO_FREQUENCY_CAP, settings.NBO_FREQUENCY_DAYS = 3, 7
    customer = consented()
    show(customer, offers[0], times=3, days_ago=1)
    # Clicks are not impressions: they count towards no cap.
    Interaction.objects.bulk_create(
        Interaction(
            customer=customer,
            offer=offers[1],
            kind=Interaction.Kind.CLICK,
            occurred_at=timezone.now() - timedelta(hours=i),
        )
        for i in range(5)
    )
    token = AuthToken.objects.create(user=marketer)[1]

    def request():
        return client.post(
            URL,
            {"external_id": "C-1", "limit": 6},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
        )

    assert request().status_code == 200  # the model and the offers, read once per process
    with CaptureQueriesContext(connection) as read:
        response = request()

    assert response.status_code == 200
    assert response.json()["frequency_capped"] == 1
    assert "M-1" not in listed(response) and "M-2" in listed(response)
    # The token with its user's roles; the champion; the customer with consent and
    # suppression; their recent impressions.
    assert len(read) == 4, [query["sql"][:80] for query in read]


def test_it_answers_no_offers_when_none_is_active_or_left(
    marketer_client, champion, offers, settings
):
    settings.NBO_FREQUENCY_CAP = 1
    customer = consented()
    for offer in offers[:5]:
        show(customer, offer, times=1, days_ago=1)

    assert listed(ask(marketer_client, external_id="C-1")) == ["M-6"]
    offers[5].active = False
    offers[5].save()
    nbo._served.clear()  # as a process started after the change

    response = ask(marketer_client, external_id="C-1")

    assert response.status_code == 200
    assert response.json()["offers"] == []
    for offer in offers:
        offer.active = False
        offer.save()
    nbo._served.clear()
    assert ask(marketer_client, external_id="C-1").json()["offers"] == []


@pytest.mark.parametrize("status", [None, "withdrawn", "denied"])
def test_it_chooses_nothing_for_a_customer_who_may_not_be_profiled(
    marketer_client, champion, status
):
    customer = make_customer("C-1", age=22, job="student")
    record_consent(customer, Purpose.AD_TARGETING)
    if status:
        record_consent(customer, Purpose.PROFILING, days_ago=40)
        record_consent(customer, Purpose.PROFILING, status, days_ago=1)

    response = ask(marketer_client, external_id="C-1")

    assert response.status_code == 403
    assert response.json()["reason"] == "no_profiling_consent"
    assert "profiling consent" in response.json()["detail"]
    assert "offers" not in response.json()


def test_it_chooses_nothing_for_an_expired_profiling_consent(marketer_client, champion):
    customer = make_customer("C-1", age=22, job="student")
    record_consent(customer, Purpose.PROFILING, expires_at=timezone.now() - timedelta(days=1))

    response = ask(marketer_client, external_id="C-1")

    assert (response.status_code, response.json()["reason"]) == (403, "no_profiling_consent")


def test_a_consent_that_expires_between_two_requests_refuses_the_second(
    marketer_client, champion, monkeypatch
):
    customer = make_customer("C-1", age=22, job="student")
    now = timezone.now()
    record_consent(customer, Purpose.PROFILING, expires_at=now + timedelta(hours=1))
    assert ask(marketer_client, external_id="C-1").status_code == 200

    # The same process, its reads already built: the moment is the request's.
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(hours=2))
    response = ask(marketer_client, external_id="C-1")

    assert (response.status_code, response.json()["reason"]) == (403, "no_profiling_consent")


def test_it_chooses_nothing_for_a_suppressed_customer(marketer_client, champion):
    Suppression.objects.create(customer=consented(), reason="asked")

    response = ask(marketer_client, external_id="C-1")

    assert response.status_code == 403
    assert response.json()["reason"] == "suppressed"
    assert "suppression list" in response.json()["detail"]


def test_it_answers_an_erased_customer_as_one_never_stored(marketer_client, champion, steward):
    customer_erase(customer=consented(), by=steward, reason="asked")

    erased = ask(marketer_client, external_id="C-1")
    never = ask(marketer_client, external_id="C-404")

    assert erased.status_code == never.status_code == 404
    assert erased.json() == never.json()
    assert erased.json()["reason"] == "unknown_customer"


def test_it_scores_a_visitor_as_a_stored_customer_of_the_same_profile(marketer_client, champion):
    consented(age=61, job="artist")

    stored = ask(marketer_client, external_id="C-1", limit=6).json()
    visitor = ask(marketer_client, profile={"age": "61", "job": "artist"}, limit=6)

    assert visitor.status_code == 200, visitor.json()
    assert visitor.json()["offers"] == stored["offers"]
    assert visitor.json()["external_id"] is None and visitor.json()["pseudonym"] is None
    assert visitor.json()["frequency_capped"] == 0


def test_it_names_each_profile_field_it_cannot_read(marketer_client, champion):
    response = ask(
        marketer_client, profile={"age": "old", "job": "student", "shoe_size": 42, "mood": None}
    )

    assert response.status_code == 400
    problems = response.json()["profile"]
    assert set(problems) == {"age", "shoe_size", "mood"}
    assert "not a number" in problems["age"][0]
    assert "Not a profile field" in problems["shoe_size"][0]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"external_id": "C-1", "profile": {"age": 30}},
        {"external_id": "C-1", "limit": 51},
        {"external_id": "C-1", "limit": 0},
        {"external_id": "C-1", "target": "purchase"},
    ],
)
def test_it_refuses_a_request_it_cannot_read(marketer_client, champion, body):
    consented()

    assert ask(marketer_client, **body).status_code == 400


def test_it_says_to_put_a_model_in_use_when_none_is(marketer_client, offers, marketer):
    consented()
    finished_run(None, by=marketer)  # trained, never promoted

    response = ask(marketer_client, external_id="C-1", target="click")

    assert response.status_code == 409
    assert response.json()["reason"] == "no_champion"
    assert "put a finished training run in use" in response.json()["detail"]


def test_it_follows_a_promotion_and_a_new_offer_at_the_next_request(
    marketer_client, marketer, champion, student_model, monkeypatch
):
    consented()
    assert ask(marketer_client, external_id="C-1").json()["training_run"] == champion.pk
    challenger = multi_offer_run(student_model[1], marketer)
    model_promote(run=challenger, by=marketer)
    monkeypatch.setattr(nbo, "CATALOGUE_CHECK_SECONDS", 0.0)
    make_offer("M-7", title="Star Wars", category="sci-fi")

    answer = ask(marketer_client, external_id="C-1", limit=7, diversity=0).json()

    assert answer["training_run"] == challenger.pk
    assert "M-7" in [offer["external_id"] for offer in answer["offers"]]


def test_it_reads_a_changed_catalogue_under_the_same_model_in_use(
    marketer_client, champion, monkeypatch
):
    consented()
    first = listed(ask(marketer_client, external_id="C-1", limit=7, diversity=0))
    assert "M-7" not in first
    monkeypatch.setattr(nbo, "CATALOGUE_CHECK_SECONDS", 0.0)
    make_offer("M-7", title="Star Wars", category="sci-fi")

    answer = ask(marketer_client, external_id="C-1", limit=7, diversity=0).json()

    assert answer["training_run"] == champion.pk
    assert "M-7" in [offer["external_id"] for offer in answer["offers"]]
    catalogue = nbo._served[champion.target].catalogue
    assert len(catalogue.ids) == 7 and catalogue.factored is not None
    assert not nbo._served[champion.target].refreshing


def test_it_answers_marketers_and_stewards_by_token_and_refuses_viewers(
    client, champion, marketer, steward, viewer
):
    consented()
    for user, expected in ((marketer, 200), (steward, 200), (viewer, 403)):
        token = AuthToken.objects.create(user=user)[1]
        response = client.post(
            URL,
            {"external_id": "C-1"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
        )
        assert response.status_code == expected, user.username
    assert "reason" not in response.json()  # the role, not the customer


def test_it_refuses_anonymous_callers(client, champion):
    consented()

    assert ask(client, external_id="C-1").status_code in (401, 403)


def test_it_throttles_with_its_own_scope(marketer_client, champion, monkeypatch):
    monkeypatch.setattr(NextBestOfferThrottle, "THROTTLE_RATES", {"next_best_offers": "2/min"})
    consented()

    codes = [ask(marketer_client, external_id="C-1").status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    assert marketer_client.get("/api/offers/").status_code == 200  # other endpoints are not


def test_its_answer_holds_no_personal_identifier(marketer_client, champion):
    customer = make_customer(
        "C-1",
        age=22,
        job="student",
        identity={
            "email": "zelda.quist@example.com",
            "phone": "+4915112345678",
            "first_name": "Zelda",
            "last_name": "Quist",
            "postal_code": "10115",
        },
    )
    record_consent(customer, Purpose.PROFILING)

    response = ask(marketer_client, external_id="C-1")

    text = response.content.decode()
    assert response.status_code == 200
    for value in ("zelda", "Quist", "+4915112345678", "10115"):
        assert value not in text
    assert set(response.json()) == {
        "external_id",
        "pseudonym",
        "target",
        "training_run",
        "model_id",
        "scorer",
        "diversity",
        "frequency_capped",
        "offers",
    }


def test_its_answer_is_what_its_documented_serializer_writes():
    chosen = nbo.NextBestOffers(
        target="conversion",
        training_run=7,
        model_id="m-1",
        scorer="fast",
        pseudonym="p-1",
        diversity=0.3,
        frequency_capped=2,
        offers=[
            nbo.ListedOffer(rank, 10 + rank, f"O{rank}", f"Offer {rank}", "", 0.5 / rank)
            for rank in (1, 2)
        ],
    )

    written = NextBestOffersSerializer({**asdict(chosen), "external_id": "C-1"}).data

    assert json.dumps(answer(chosen, "C-1")) == json.dumps(written)


def test_warming_up_loads_the_model_in_use_of_each_target_before_any_request(
    settings, student_model, offers, marketer
):
    settings.MODEL_REGISTRY_DIR = Path(student_model[0])
    assert nbo.warm_up() == []  # nothing in use yet
    assert nbo._served == {}
    runs = {}
    for target in ("click", "conversion"):
        metrics = {**finished_run(None).metrics, "scorers": SCORERS}
        runs[target] = finished_run(
            None, model_id=student_model[1], metrics=metrics, target=target, by=marketer
        )
        model_promote(run=runs[target], by=marketer)

    assert nbo.warm_up() == ["conversion", "click"]

    assert {target: served.run_id for target, served in nbo._served.items()} == {
        target: run.pk for target, run in runs.items()
    }
    assert nbo._served["conversion"].catalogue.factored is not None


def test_each_request_reads_with_fields_of_its_own():
    from marketing.api.next_best_offers import NextBestOffersRequestSerializer

    first = NextBestOffersRequestSerializer(data={"external_id": "C-1", "limit": 99})
    second = NextBestOffersRequestSerializer(data={"external_id": "C-2"})

    assert not first.is_valid() and second.is_valid()
    assert first.fields["limit"] is not second.fields["limit"]
    assert first.fields["limit"].parent is first and second.fields["limit"].parent is second
    # The class's own fields are never bound to a request's serializer.
    assert NextBestOffersRequestSerializer._declared_fields["limit"].parent is None
    assert second.validated_data == {
        "external_id": "C-2",
        "limit": 5,
        "target": "conversion",
        "diversity": nbo.DEFAULT_DIVERSITY,
    }
