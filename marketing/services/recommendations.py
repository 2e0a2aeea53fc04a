"""Each customer's list of offers from a multi-offer scoring run, re-ranked for diversity, as a
Job ("recommend").

Recommending offers from a customer's scores is profiling, so only customers whose
``profiling`` consent is valid when the job runs get a list; the others are counted by reason.
Offers are compared in one of two ways, the marketer's choice:

- "categories" (default): ``Offer.category`` read as comma-separated tags ("savings,
  long-term"), Jaccard similarity of the tag sets; offers without a category share nothing
  with any other offer.
- "text": the offer's title, category and description read by the sentence encoder the
  scoring run's model was trained from, cosine similarity of the mean-pooled vectors; offers
  that read alike count as similar whatever their categories.

Accuracy is measured against the customers' recorded clicks and conversions that happened
after the training run read its data (its consent snapshot), which the model cannot have
seen; when there are none, against every recorded click and conversion (the model may have
learned from those, so the figures flatter it), and the result says which.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_noop

from marketing.dbstats import analyze
from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    Customer,
    CustomerRecommendation,
    CustomerScore,
    Interaction,
    Job,
    Offer,
    Purpose,
    RecommendationRun,
    ScoringRun,
)
from marketing.selectors.consent import scores_for_use
from marketing.selectors.training import consent_exclusions
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create, register_runner

if TYPE_CHECKING:
    import numpy as np

    from recengine.diversity import OfferSimilarity, ScoreMatrix

WRITE_CHUNK = 5000
MIN_K = 2
MAX_K = 50
# Diversity weights the accuracy-vs-diversity curve is measured at (plus the chosen one).
LAMBDA_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
RESPONSE_KINDS = (Interaction.Kind.CLICK, Interaction.Kind.CONVERSION)
CATEGORY_SEPARATOR = ","
# The result stores these in English (the API answers them); pages show them translated.
SIMILARITIES = {
    "categories": gettext_noop(
        "offers sharing categories count as alike (Jaccard over category tags)"
    ),
    "text": gettext_noop(
        "offers whose title, category and description read alike count as alike (cosine "
        "of sentence-encoder vectors)"
    ),
}

ACCURACY_BASES = {
    "held_out": gettext_noop(
        "clicks and conversions recorded after the model's training data was read "
        "(held out: the model never saw them)"
    ),
    "all_clicks": gettext_noop(
        "every recorded click and conversion, because none happened after the "
        "model's training data was read (the model may have learned from these, so "
        "accuracy looks better than it will be)"
    ),
    "none": gettext_noop(
        "no click or conversion of these customers is recorded, so accuracy cannot be "
        "measured; the curve shows the model's own mean score of the listed offers"
    ),
}

# What the service says, in English: errors (pages and the API), warnings, job titles and
# progress (stored). Pages show them in the reader's language (``marketing.stored_texts``).
_TEXT = {
    "single_offer": gettext_noop(
        "This scoring run scores a single offer, so there is nothing to choose between. "
        "Use “Audience diversity” on the scoring run to see how its top customers spread "
        "over the base."
    ),
    "unfinished": gettext_noop("Only a finished scoring run can be recommended from."),
    "bad_k": gettext_noop(
        "Offers per customer must be %(min)s to %(max)s, not %(k)s (a list of one offer "
        "has no variety to weigh)."
    ),
    "bad_diversity": gettext_noop("Diversity must be between 0 and 1, not %(diversity)s."),
    "bad_cap": gettext_noop("The per-offer cap must be at least 1, not %(cap)s."),
    "bad_similarity": gettext_noop("Unknown similarity %(similarity)s; choose %(choices)s."),
    "title": gettext_noop(
        "Recommend %(count)s offers per customer from scores #%(scores)s (diversity %(diversity)s)"
    ),
    "title_one": gettext_noop(
        "Recommend %(count)s offer per customer from scores #%(scores)s (diversity %(diversity)s)"
    ),
    "nobody": gettext_noop(
        "No scored customer has a valid profiling consent now, so nobody can be given "
        "recommendations."
    ),
    "one_offer": gettext_noop(
        "The scoring run has scores for one offer only; recommendations choose between "
        "several. Use “Audience diversity” for a single-offer campaign."
    ),
    "no_category": gettext_noop(
        "No offer has a category, so every two offers count as different and the "
        "diversity setting cannot change the lists. Give the offers categories, or compare "
        "them by their text."
    ),
    "one_category": gettext_noop(
        "Every offer has the same category, so no list can be more varied than "
        "another and the diversity setting cannot change the lists."
    ),
    "short_lists": gettext_noop("%(customers)s customers got fewer than %(k)s offers."),
    "short_lists_cap": gettext_noop(
        "%(customers)s customers got fewer than %(k)s offers (the per-offer cap ran out)."
    ),
    "reading_scores": gettext_noop("Reading the scores of customers with profiling consent"),
    "reading_text": gettext_noop("Reading the offers' text with the sentence encoder"),
    "reading_clicks": gettext_noop("Reading the customers' clicks and conversions"),
    "reranking": gettext_noop("Re-ranking at %(count)s diversity settings"),
    "building": gettext_noop("Building the lists at the chosen diversity"),
    "saved": gettext_noop("Saved %(done)s of %(total)s list entries"),
}
MESSAGES = (*_TEXT.values(), *SIMILARITIES.values(), *ACCURACY_BASES.values())


def _exposure_rows(
    offer_ids: np.ndarray, catalogue: list[Offer], exposure: np.ndarray
) -> list[dict[str, Any]]:
    """Customers each offer is recommended to, most first."""
    rows: list[dict[str, Any]] = [
        {
            "offer": int(pk),
            "title": offer.title,
            "category": offer.category,
            "customers": int(count),
        }
        for pk, offer, count in zip(offer_ids, catalogue, exposure, strict=True)
    ]
    return sorted(rows, key=lambda row: (-row["customers"], row["title"]))


class RecommendationSetupError(ApplicationError, ValueError):
    """The requested recommendations cannot start; the message says why."""


def recommendation_run_create(
    *,
    scoring_run: ScoringRun,
    k: int,
    diversity: float,
    offer_cap: int | None = None,
    similarity: str = "categories",
    by: Actor,
) -> RecommendationRun:
    """Start a Job that lists ``k`` offers per consented customer of ``scoring_run``, offers
    compared by ``similarity`` (a key of SIMILARITIES)."""
    if scoring_run.training_run.offer_id is not None:
        raise RecommendationSetupError(_TEXT["single_offer"])
    if scoring_run.job.status != Job.Status.SUCCEEDED:
        raise RecommendationSetupError(_TEXT["unfinished"])
    if not MIN_K <= k <= MAX_K:
        raise RecommendationSetupError(_TEXT["bad_k"] % {"min": MIN_K, "max": MAX_K, "k": k})
    if not 0.0 <= diversity <= 1.0:
        raise RecommendationSetupError(_TEXT["bad_diversity"] % {"diversity": diversity})
    if offer_cap is not None and offer_cap < 1:
        raise RecommendationSetupError(_TEXT["bad_cap"] % {"cap": offer_cap})
    if similarity not in SIMILARITIES:
        raise RecommendationSetupError(
            _TEXT["bad_similarity"]
            % {"similarity": repr(similarity), "choices": " or ".join(SIMILARITIES)}
        )
    creator = stored_user(by)
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.RECOMMEND,
            title=_TEXT["title" if k != 1 else "title_one"]
            % {"count": k, "scores": scoring_run.pk, "diversity": f"{diversity:g}"},
            params={
                "scoring_run": scoring_run.pk,
                "k": k,
                "diversity": diversity,
                "offer_cap": offer_cap,
                "similarity": similarity,
            },
            by=by,
        )
        run = RecommendationRun.objects.create(
            job=job,
            scoring_run=scoring_run,
            k=k,
            diversity=diversity,
            offer_cap=offer_cap,
            created_by=creator,
        )
        audit_log(
            actor=by,
            action=AuditEvent.Action.JOB,
            target_type="recommendation_run",
            target_ref=run.pk,
            details={"job": job.pk, "purpose": Purpose.PROFILING},
        )
    return RecommendationRun.objects.select_related("job", "scoring_run").get(pk=run.pk)


def training_cutoff(scoring_run: ScoringRun) -> datetime | None:
    """When the scoring run's model read its training data (None when unknown)."""
    training = scoring_run.training_run
    at = parse_datetime((training.consent_snapshot or {}).get("at") or "")
    return at or training.job.started_at


def offer_similarity(offers: list[Offer], kind: str, base_model: str) -> OfferSimilarity:
    """Similarity of the offers by category tags or by their text (see the module docstring);
    ``base_model`` is the sentence encoder that reads the text."""
    from recengine.diversity import OfferSimilarity

    if kind == "text":
        from recengine.embeddings import offer_text_embeddings

        return OfferSimilarity.from_embeddings(
            offer_text_embeddings([offer_text(offer) for offer in offers], base_model)
        )
    return OfferSimilarity.from_categories(
        [offer.category or None for offer in offers], sep=CATEGORY_SEPARATOR
    )


def offer_text(offer: Offer) -> str:
    """The offer as the encoder reads it: title, then category and description when set."""
    return " | ".join(part for part in (offer.title, offer.category, offer.description) if part)


@register_runner(Job.Kind.RECOMMEND)
def run_recommendations(job: Job, progress: Progress) -> dict[str, Any]:
    run = RecommendationRun.objects.select_related("job", "scoring_run__training_run__job").get(
        job=job
    )
    return _Recommending(run, progress).execute()


class _Recommending:
    def __init__(self, run: RecommendationRun, progress: Progress):
        self.run = run
        self.progress = progress
        # Consent is read once, at this instant.
        self.at = timezone.now()

    def execute(self) -> dict[str, Any]:
        from recengine.config import json_ready
        from recengine.diversity import RerankConfig, recommend
        from recengine.list_metrics import diversity_curve, offer_popularity

        run = self.run
        self.progress(2, _TEXT["reading_scores"])
        scores, excluded = self.scores()
        offers = Offer.objects.in_bulk(scores.offers.tolist())
        catalogue = [offers[int(pk)] for pk in scores.offers]
        kind = self.run.job.params.get("similarity", "categories")
        if kind == "text":
            self.progress(8, _TEXT["reading_text"])
        similarity = offer_similarity(catalogue, kind, run.scoring_run.training_run.base_model)
        self.progress(15, _TEXT["reading_clicks"])
        clicks, basis, cutoff, n_clicks = self.clicks(scores)
        everything = self.responses(scores, since=None)
        popularity = offer_popularity(everything)

        config = RerankConfig(
            k=run.k,
            mmr_lambda=run.diversity,
            offer_cap=run.offer_cap,
            pool_size=max(100, run.k),
        )
        lambdas = sorted({*LAMBDA_GRID, float(run.diversity)})
        self.progress(25, _TEXT["reranking"] % {"count": len(lambdas)})
        curve = diversity_curve(
            scores,
            similarity=similarity,
            clicks=clicks,
            lambdas=lambdas,
            config=config,
            popularity=popularity,
        )
        self.progress(60, _TEXT["building"])
        recs = recommend(scores, config, similarity)
        chosen = next(p for p in curve.points if p.mmr_lambda == float(run.diversity))
        exposure = recs.exposure()
        self.write(recs)
        result = {
            "k": run.k,
            "diversity": run.diversity,
            "offer_cap": run.offer_cap,
            "customers": scores.n_customers,
            "customers_excluded": excluded,
            "offers": scores.n_offers,
            "similarity": {
                "kind": kind,
                "text": SIMILARITIES[kind],
                "categories": similarity.categories,
                "offers_without_category": sum(1 for o in catalogue if not o.category),
            },
            "accuracy_basis": basis,
            "accuracy_basis_text": ACCURACY_BASES[basis],
            "training_cutoff": cutoff.isoformat() if cutoff else None,
            "evaluation_clicks": n_clicks,
            "metrics": chosen.to_dict(),
            "curve": [point.to_dict() for point in curve.points],
            "tradeoff": curve.tradeoff().to_dict(),
            "exposure": _exposure_rows(scores.offers, catalogue, exposure),
            "warnings": self.warnings(similarity, catalogue, recs, config),
            "empty_slots": int((recs.positions < 0).sum()),
            "config": dataclasses.asdict(config),
        }
        RecommendationRun.objects.filter(pk=run.pk).update(result=json_ready(result))
        return {
            "recommendation_run": run.pk,
            "customers": scores.n_customers,
            "offers": scores.n_offers,
            "intra_list_diversity": chosen.metrics.intra_list_diversity,
            "ndcg": chosen.metrics.ndcg,
        }

    # ---- data ---------------------------------------------------------------------------------
    def scores(self) -> tuple[ScoreMatrix, dict[str, int]]:
        import numpy as np
        import pandas as pd

        from recengine.diversity import ScoreMatrix

        scoring = self.run.scoring_run
        scored = scoring.scores.values("customer_id")
        scored_customers = Customer.objects.filter(pk__in=scored)
        excluded = consent_exclusions(Purpose.PROFILING, queryset=scored_customers)
        rows = (
            scores_for_use(CustomerScore.objects.filter(scoring_run=scoring))
            .exclude(offer=None)
            .order_by()
            .values_list("customer_id", "offer_id", "score")
        )
        data = np.fromiter(
            (value for row in rows.iterator(chunk_size=WRITE_CHUNK) for value in row),
            dtype=np.float64,
        ).reshape(-1, 3)
        if not len(data):
            raise RecommendationSetupError(_TEXT["nobody"])
        frame = pd.DataFrame(
            {
                "customer": data[:, 0].astype(np.int64),
                "offer": data[:, 1].astype(np.int64),
                "score": data[:, 2],
            }
        )
        matrix = ScoreMatrix.from_frame(frame)
        if matrix.n_offers < 2:
            raise RecommendationSetupError(_TEXT["one_offer"])
        return matrix, excluded

    def responses(self, scores: ScoreMatrix, *, since: datetime | None) -> np.ndarray:
        """Customers x offers: who clicked or converted on which offer (after ``since``)."""
        import pandas as pd

        from recengine.diversity import click_matrix

        found = Interaction.objects.filter(
            kind__in=RESPONSE_KINDS,
            customer_id__in=scores.customers.tolist(),
            offer_id__in=scores.offers.tolist(),
        )
        if since is not None:
            found = found.filter(occurred_at__gt=since)
        pairs = list(found.order_by().values_list("customer_id", "offer_id").distinct())
        frame = pd.DataFrame(pairs, columns=["customer", "offer"])
        return click_matrix(frame, scores.customers, scores.offers)

    def clicks(self, scores: ScoreMatrix) -> tuple[np.ndarray | None, str, datetime | None, int]:
        """The clicks accuracy is measured against, which ones (a key of ACCURACY_BASES), the
        training cut-off and how many customer-offer pairs they hold."""
        cutoff = training_cutoff(self.run.scoring_run)
        if cutoff is not None:
            held_out = self.responses(scores, since=cutoff)
            if held_out.any():
                return held_out, "held_out", cutoff, int(held_out.sum())
        every = self.responses(scores, since=None)
        if every.any():
            return every, "all_clicks", cutoff, int(every.sum())
        return None, "none", cutoff, 0

    def warnings(self, similarity, catalogue, recs, config) -> list[str]:
        out = []
        by_categories = similarity.kind == "jaccard"
        if by_categories and not similarity.categories:
            out.append(_TEXT["no_category"])
        elif (
            by_categories and len(similarity.categories) == 1 and all(o.category for o in catalogue)
        ):
            out.append(_TEXT["one_category"])
        empty = int((recs.positions < 0).any(axis=1).sum())
        if empty:
            message = _TEXT["short_lists_cap" if config.offer_cap else "short_lists"]
            out.append(message % {"customers": f"{empty:,}", "k": recs.k})
        return out

    # ---- writing ------------------------------------------------------------------------------
    def write(self, recs) -> None:
        """Every listed offer as a row, in chunks; a failed or cancelled run leaves none."""
        frame = recs.to_frame()
        total = len(frame)
        run_id = self.run.pk
        try:
            for start in range(0, total, WRITE_CHUNK):
                part = frame.iloc[start : start + WRITE_CHUNK]
                CustomerRecommendation.objects.bulk_create(
                    [
                        CustomerRecommendation(
                            recommendation_run_id=run_id,
                            customer_id=int(customer),
                            offer_id=int(offer),
                            rank=int(rank),
                            score=float(score),
                        )
                        for customer, rank, offer, score in part[
                            ["customer", "rank", "offer", "score"]
                        ].itertuples(index=False)
                    ]
                )
                done = min(total, start + WRITE_CHUNK)
                self.progress(
                    65 + 34 * done / max(total, 1),
                    _TEXT["saved"] % {"done": f"{done:,}", "total": f"{total:,}"},
                )
        except BaseException:
            CustomerRecommendation.objects.filter(recommendation_run_id=run_id).delete()
            raise
        analyze(CustomerRecommendation)
