"""The next best offers of one customer, or of a visitor not yet stored, in real time.

The champion of the use case "every offer" for the target (the multi-offer model in use)
scores every active offer for the person in one vectorised call, with its fast scorer (the
distilled LightGBM student; the served model when it has none) and the input rows of a
scoring run (``scorers.customer_row``: the customers it learned from are scored out of
sample), so a list here agrees with the scores of a scoring run of the same model. Offers
shown to the customer ``NBO_FREQUENCY_CAP`` times or more in the last
``NBO_FREQUENCY_DAYS`` days are left out (``recengine.frequency``); the rest are re-ranked
for diversity by their categories, as the recommendation lists are.

Choosing offers for a stored customer is profiling: they get none while their ``profiling``
consent is not valid, or while they are on the suppression list. An erased customer is
unknown, like an external id never seen: an answer telling the two apart would itself be a
trace of the person. A visitor is scored from the profile the caller sends, checked against
the catalogue of profile fields.

Each process keeps what does not depend on the person, per target: the champion's model
and the offers' input columns and similarity, loaded when the champion's model changes, and
the model's offer half (``recengine.factored``: for every tree, the leaves each offer's
splits allow), so that a request walks the trees once for the person instead of once per
offer, with the same scores.
Every request reads the champion (one indexed row), so a promotion or a rollback takes
effect at the next request; the offers are read again when the catalogue has changed
(looked at every ``CATALOGUE_CHECK_SECONDS``; the request that finds them changed reads
them, the process's others go on with the offers it has). A request then reads the
customer (one row, with their consent and suppression) and their recent impressions (one
indexed read). Apart, because the consent and suppression checks would otherwise run
once per impression.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    Max,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.ingest.values import PROFILE_PARSERS, TEXT_TYPES, BadValue
from marketing.models import (
    Customer,
    Interaction,
    Offer,
    ProfileField,
    Suppression,
    TrainingRun,
)
from marketing.prepared import PreparedQuery
from marketing.selectors.champions import champion_model
from marketing.selectors.consent import profiling_use_q
from marketing.services.champions import NO_CHAMPION_EVERY_OFFER
from marketing.services.model_inputs import as_name, field_types, offer_columns
from marketing.services.recommendations import MAX_K, offer_similarity
from marketing.services.scorers import (
    Scorer,
    ScoringModel,
    available_scorers,
    customer_row,
    scoring_model,
)
from marketing.services.training_params import message

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from recengine.diversity import OfferSimilarity
    from recengine.factored import ItemScorer

MAX_LIMIT = MAX_K  # offers at most, as in a recommendation list
# The recommendation page's default: some score given up for variety.
DEFAULT_DIVERSITY = 0.3
# Best-scored offers the diversity re-ranking chooses from (as the recommendation lists).
POOL_SIZE = 100
# How often a process looks whether the offers changed (an offer added, edited, retired).
CATALOGUE_CHECK_SECONDS = 30.0

UNKNOWN_CUSTOMER = gettext_noop(
    "No stored customer has this external id (an erased customer has none either). Send the "
    "visitor's profile instead to choose offers for someone not stored."
)
NO_PROFILING_CONSENT = gettext_noop(
    "This customer has no valid profiling consent now, so no offers may be chosen for them."
)
SUPPRESSED = gettext_noop(
    "This customer is on the suppression list, so no offers are chosen for them."
)
UNKNOWN_FIELD = gettext_noop("Not a profile field: the catalogue has no field of this name.")
BAD_VALUE = gettext_noop("This value %(reason)s.")
NOT_ONE_VALUE = gettext_noop("A profile value is one number, text, yes/no or date.")
MESSAGES = (
    UNKNOWN_CUSTOMER,
    NO_PROFILING_CONSENT,
    SUPPRESSED,
    UNKNOWN_FIELD,
    BAD_VALUE,
    NOT_ONE_VALUE,
)


# Why no offers may be chosen -> the HTTP status the API answers with.
REFUSALS = {
    "no_champion": 409,
    "unknown_customer": 404,
    "no_profiling_consent": 403,
    "suppressed": 403,
}


class NextBestOfferRefused(ApplicationError):
    """No offers may be chosen for this request; ``reason`` (a key of REFUSALS) says why in
    one word, the message in a sentence."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.status_code = REFUSALS[reason]


class ProfileInvalid(ApplicationError):
    """A visitor's profile that the catalogue cannot read; ``errors`` names each field."""


@dataclass(frozen=True)
class ListedOffer:
    rank: int
    offer_id: int
    external_id: str
    title: str
    category: str
    score: float


@dataclass(frozen=True)
class NextBestOffers:
    target: str
    training_run: int
    model_id: str
    scorer: str
    # The stored customer's pseudonym (None for a visitor).
    pseudonym: str | None
    diversity: float
    # Offers left out because the customer saw them too often lately.
    frequency_capped: int
    offers: list[ListedOffer]


# ---- what each process keeps ------------------------------------------------------------------


@dataclass
class _Catalogue:
    """The active offers, as the model and the re-ranking read them."""

    ids: np.ndarray
    external_ids: list[str]
    titles: list[str]
    categories: list[str]
    # One row per offer: its model input columns (``offer_columns``).
    frame: pd.DataFrame
    # The profile fields of the catalogue: a person's row has each (missing: NaN), as a
    # scoring run's rows have every field some customer of the batch has.
    fields: list[str]
    similarity: OfferSimilarity
    # The served model split into its customer and offer halves over these offers (None:
    # a model ``recengine.factored`` cannot split, which scores the joined rows).
    factored: ItemScorer | None
    # (active offers, last change of any offer) when read.
    version: tuple[int, Any]
    checked_at: float


@dataclass
class _Served:
    run_id: int
    model_id: str
    scorer: str
    loaded: ScoringModel
    catalogue: _Catalogue
    # A request is reading the changed catalogue: the others serve the one they have.
    refreshing: bool = False


_served: dict[str, _Served] = {}
_lock = threading.Lock()


def _catalogue_version() -> tuple[int, Any]:
    figures = Offer.objects.aggregate(
        active=Count("id", filter=Q(active=True)), changed=Max("updated_at")
    )
    return figures["active"], figures["changed"]


def _catalogue_read(base_model: str, loaded: ScoringModel) -> _Catalogue:
    import numpy as np
    import pandas as pd

    from recengine.factored import factored

    version = _catalogue_version()
    offers = list(Offer.objects.filter(active=True).order_by("pk"))
    frame = pd.DataFrame.from_records([offer_columns(offer) for offer in offers])
    return _Catalogue(
        ids=np.array([offer.pk for offer in offers], dtype=np.int64),
        external_ids=[offer.external_id for offer in offers],
        titles=[offer.title for offer in offers],
        categories=[offer.category for offer in offers],
        frame=frame,
        fields=list(ProfileField.objects.values_list("name", flat=True)),
        similarity=offer_similarity(offers, "categories", base_model),
        factored=factored(loaded.model, frame) if offers else None,
        version=version,
        checked_at=time.monotonic(),
    )


def _served_for(target: str) -> _Served:
    """What this process keeps for the target's champion, loaded or refreshed when needed."""
    from recengine.score import limit_threads

    champion = champion_model(None, target)
    if champion is None:
        raise NextBestOfferRefused("no_champion", message(NO_CHAMPION_EVERY_OFFER, target=target))
    run_id, model_id = champion
    with _lock:
        served = _served.get(target)
        if served is None or (served.run_id, served.model_id) != champion:
            run = TrainingRun.objects.only("model_id", "metrics", "base_model").get(pk=run_id)
            scorer = Scorer.FAST if Scorer.FAST in available_scorers(run.metrics) else Scorer.SERVED
            loaded = scoring_model(run, scorer, device="cpu")
            # One request scores on one thread: the server's workers are its concurrency.
            limit_threads(loaded.model, 1)
            catalogue = _catalogue_read(run.base_model, loaded)
            served = _Served(run_id, model_id, scorer, loaded, catalogue)
            _served[target] = served
            return served
        due = time.monotonic() - served.catalogue.checked_at > CATALOGUE_CHECK_SECONDS
        if not due or served.refreshing:
            return served
        served.catalogue.checked_at = time.monotonic()
        if _catalogue_version() == served.catalogue.version:
            return served
        served.refreshing = True
    # The offers changed: this request reads them (and splits the model over them again)
    # while the process's other requests go on with the offers it has.
    try:
        run = TrainingRun.objects.only("base_model").get(pk=run_id)
        catalogue = _catalogue_read(run.base_model, served.loaded)
        with _lock:
            served.catalogue = catalogue
    finally:
        served.refreshing = False
    return served


def warm_up() -> list[str]:
    """Load what a process keeps for every target whose use case "every offer" has a model
    in use, as its first request would; the targets loaded. A web worker calls it before
    it takes requests (``docker/gunicorn.conf.py``), so that no request waits the second or
    two the loading takes."""
    loaded = []
    for target in TrainingRun.Target.values:
        try:
            _served_for(target)
        except NextBestOfferRefused:  # no model in use for this target
            continue
        loaded.append(target)
    return loaded


# ---- the person -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    customer_id: int | None
    pseudonym: str | None
    attributes: Any
    # Offer id -> when it was shown within the frequency window.
    shown: dict[Hashable, list[Any]]


def _customer_query(external_id: str, now: datetime) -> QuerySet:
    return (
        Customer.objects.filter(external_id=external_id)
        .annotate(
            may_profile=ExpressionWrapper(
                profiling_use_q(customer="pk", now=now), output_field=BooleanField()
            ),
            suppressed=Exists(Suppression.objects.filter(customer=OuterRef("pk"))),
        )
        .order_by("pk")
        .values_list("pk", "pseudonym", "attributes", "may_profile", "suppressed")[:1]
    )


def _impressions_query(customer_id: int, since: datetime) -> QuerySet:
    return (
        Interaction.objects.filter(
            customer_id=customer_id, kind=Interaction.Kind.IMPRESSION, occurred_at__gte=since
        )
        .order_by()
        .values_list("offer_id", "occurred_at")
    )


# Built into SQL once per process (and database connection), run with each request's values.
_customer_read = PreparedQuery(
    _customer_query, external_id=Customer._meta.get_field("external_id"), now=DateTimeField()
)
_impressions_read = PreparedQuery(
    _impressions_query,
    customer_id=Interaction._meta.get_field("customer").target_field,
    since=Interaction._meta.get_field("occurred_at"),
)


def _stored_customer(external_id: str, now: datetime) -> _Person:
    """The customer of ``external_id`` with the offers shown to them lately, or a refusal."""
    found = _customer_read.rows(external_id=external_id, now=now)
    if not found:
        raise NextBestOfferRefused("unknown_customer", UNKNOWN_CUSTOMER)
    customer_id, pseudonym, attributes, may_profile, suppressed = found[0]
    if not may_profile:
        raise NextBestOfferRefused("no_profiling_consent", NO_PROFILING_CONSENT)
    if suppressed:
        raise NextBestOfferRefused("suppressed", SUPPRESSED)
    since = now - timedelta(days=settings.NBO_FREQUENCY_DAYS)
    shown: dict[Hashable, list[Any]] = {}
    for offer_id, at in _impressions_read.rows(customer_id=customer_id, since=since):
        shown.setdefault(offer_id, []).append(at)
    return _Person(customer_id, pseudonym, attributes, shown)


def visitor_profile(values: dict[str, Any]) -> dict[str, Any]:
    """A visitor's profile read as an import reads a customer's (numbers, yes/no, dates,
    text by the catalogue's type of each field); ``ProfileInvalid`` names every field of the
    catalogue it lacks and every value it cannot read."""
    types = field_types()
    profile: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, value in values.items():
        data_type = types.get(name)
        if data_type is None:
            problems[name] = UNKNOWN_FIELD
            continue
        try:
            profile[name] = _profile_value(value, data_type)
        except BadValue as exc:
            problems[name] = message(BAD_VALUE, reason=str(exc))
        except TypeError:
            problems[name] = NOT_ONE_VALUE
    if problems:
        raise ProfileInvalid(errors=problems)
    return profile


def _profile_value(value: Any, data_type: str) -> Any:
    """A JSON value as an import stores the cell: text types as text (a region code sent as
    a number is its name), the others parsed from their text; blank is missing."""
    if isinstance(value, (dict, list)):
        raise TypeError(data_type)
    if isinstance(value, bool) and data_type == ProfileField.DataType.BOOLEAN:
        return value
    text = value.strip() if isinstance(value, str) else as_name(value)
    if value is None or not text:
        return None
    return text if data_type in TEXT_TYPES else PROFILE_PARSERS[data_type](text)


# ---- choosing ---------------------------------------------------------------------------------


def next_best_offers(
    *,
    target: str,
    limit: int = 5,
    diversity: float = DEFAULT_DIVERSITY,
    external_id: str | None = None,
    profile: dict[str, Any] | None = None,
) -> NextBestOffers:
    """The best ``limit`` offers for the stored customer ``external_id`` or for a visitor of
    ``profile`` (read by ``visitor_profile`` first), by the target's champion; raises
    ``NextBestOfferRefused`` when none may be chosen (see the module docstring)."""
    import numpy as np

    from recengine.frequency import capped

    now = timezone.now()
    served = _served_for(target)
    if external_id is not None:
        person = _stored_customer(external_id, now)
    else:
        person = _Person(None, None, profile or {}, {})
    catalogue = served.catalogue
    scores = _scores(served.loaded, catalogue, person)
    over = capped(
        person.shown.keys(),
        person.shown,
        cap=settings.NBO_FREQUENCY_CAP,
        days=settings.NBO_FREQUENCY_DAYS,
        now=now,
    )
    left_out = np.isin(catalogue.ids, np.array(list(over), dtype=np.int64))
    scores[left_out] = np.nan  # not a candidate
    return NextBestOffers(
        target=target,
        training_run=served.run_id,
        model_id=served.model_id,
        scorer=served.scorer,
        pseudonym=person.pseudonym,
        diversity=diversity,
        frequency_capped=int(left_out.sum()),
        offers=_reranked(scores, catalogue, limit=limit, diversity=diversity),
    )


def _scores(loaded: ScoringModel, catalogue: _Catalogue, person: _Person) -> np.ndarray:
    """The person's score for every offer of the catalogue, in one call of the scorer."""
    import numpy as np

    if not len(catalogue.ids):
        return np.zeros(0)
    row = customer_row(
        person.attributes, loaded, customer_id=person.customer_id, pseudonym=person.pseudonym
    )
    # The rows a scoring run would score: the customer's columns beside each offer's. A
    # missing value is NaN, which every scorer reads as missing whatever the column's type.
    columns = {
        name: np.nan if value is None else value
        for name, value in {**dict.fromkeys(catalogue.fields), **row}.items()
        if name not in catalogue.frame
    }
    if catalogue.factored is not None:
        return catalogue.factored.predict_proba(columns)
    frame = catalogue.frame.assign(**columns)
    return np.asarray(loaded.model.predict_proba(frame), dtype=np.float64)


def _reranked(
    scores: np.ndarray, catalogue: _Catalogue, *, limit: int, diversity: float
) -> list[ListedOffer]:
    """The best offers by score (NaN: not a candidate), re-ranked for diversity of
    categories as the recommendation lists are."""
    from recengine.diversity import RerankConfig, recommend_one

    positions = recommend_one(
        scores,
        RerankConfig(k=limit, mmr_lambda=diversity, pool_size=max(POOL_SIZE, limit)),
        catalogue.similarity,
    )
    return [
        ListedOffer(
            rank=rank,
            offer_id=int(catalogue.ids[at]),
            external_id=catalogue.external_ids[at],
            title=catalogue.titles[at],
            category=catalogue.categories[at],
            score=round(float(scores[at]), 6),
        )
        for rank, at in enumerate(positions.tolist(), start=1)
    ]
