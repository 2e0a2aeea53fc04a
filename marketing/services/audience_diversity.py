"""Audience diversity of a single-offer scoring run: how its top customers spread over
profile attributes compared with every scored customer, in sentences for the marketer.

Audiences come from scores, which is profiling: only customers whose ``profiling`` consent is
valid now are counted.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from marketing.errors import ApplicationError
from marketing.models import CustomerScore, Job, ProfileField, ScoringRun
from marketing.selectors.consent import scores_for_use
from marketing.selectors.recommendations import audience_attributes
from marketing.services.jobs import Progress
from marketing.templatetags.money import percent_text

DEFAULT_TOP_SHARE = 0.1


class AudienceDiversityError(ApplicationError, ValueError):
    """The audience diversity cannot be computed; the message says why."""


def audience_diversity(
    *,
    scoring_run: ScoringRun,
    top_share: float | None = None,
    top_n: int | None = None,
    attributes: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The top ``top_n`` customers (or ``top_share`` of them) by score compared with every
    scored customer, over profile ``attributes`` (default: every number, text and yes/no
    attribute). Groups under ``MIN_GROUP_SIZE`` customers of the base are left out of the
    report, and a top smaller than that is refused, so it cannot single anyone out."""
    import pandas as pd

    from recengine.audience_diversity import AudienceConfig
    from recengine.audience_diversity import audience_diversity as spread_of

    started = time.perf_counter()
    top_n, top_share, chosen, fields = _checked(
        scoring_run=scoring_run, top_share=top_share, top_n=top_n, attributes=attributes
    )
    if progress is not None:
        progress(5, "Reading the scores of customers with a valid profiling consent")

    rows = (
        scores_for_use(CustomerScore.objects.filter(scoring_run=scoring_run))
        .order_by("-score", "customer_id")
        .values_list("score", "customer__attributes")
    )
    scores, profiles = [], []
    for score, profile in rows.iterator(chunk_size=5000):
        scores.append(score)
        profiles.append(profile or {})
    base = len(scores)
    if not base:
        raise AudienceDiversityError(
            "No scored customer has a valid profiling consent now; there is no base to compare."
        )
    if top_n is not None and top_n > base:
        raise AudienceDiversityError(
            f"The top {top_n:,} is larger than the scored base ({base:,} customers)."
        )
    if progress is not None:
        progress(60, f"Comparing the top with {base:,} scored customers")
    frame = pd.DataFrame.from_records(profiles, columns=chosen)
    for name in chosen:
        if fields[name].data_type == ProfileField.DataType.NUMBER:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    frame["score"] = scores
    config = AudienceConfig(
        top_n=top_n, top_share=top_share or DEFAULT_TOP_SHARE, attributes=chosen
    )
    result = spread_of(frame, config).to_dict()
    if result["audience_size"] < settings.MIN_GROUP_SIZE:
        # Group by group, the report would tell the attributes of the few in the top.
        raise AudienceDiversityError(
            f"The top holds {result['audience_size']:,} customer(s); it must hold at least "
            f"{settings.MIN_GROUP_SIZE} customers so that the report singles no one out."
        )
    top_label = f"top {top_n:,}" if top_n is not None else f"top {percent_text(top_share or 0)}"
    out = _reportable(result, fields, top_label)
    out.update(
        top_label=top_label,
        top_n=top_n,
        top_share=None if top_n is not None else top_share,
        seconds=round(time.perf_counter() - started, 3),
        min_group_size=settings.MIN_GROUP_SIZE,
    )
    return out


def audience_diversity_settings(
    *,
    scoring_run: ScoringRun,
    top_share: float | None = None,
    top_n: int | None = None,
    attributes: list[str] | None = None,
) -> dict[str, Any]:
    """The settings of an audience diversity as a job's params (the default top share filled
    in), after the checks that need no score: a clear error before any job starts."""
    top_n, top_share, _, _ = _checked(
        scoring_run=scoring_run, top_share=top_share, top_n=top_n, attributes=attributes
    )
    return {
        "top_n": top_n,
        "top_share": None if top_n is not None else top_share,
        "attributes": attributes or None,
    }


def _checked(
    *,
    scoring_run: ScoringRun,
    top_share: float | None,
    top_n: int | None,
    attributes: list[str] | None,
) -> tuple[int | None, float | None, list[str], dict[str, ProfileField]]:
    """(top_n, top_share, attribute names, fields by name) once the run and the settings are
    known to be comparable; AudienceDiversityError saying why not otherwise."""
    if scoring_run.training_run.offer_id is None:
        raise AudienceDiversityError(
            "This scoring run scores every offer; audience diversity compares the audience of "
            "one offer. Use “Recommendations” to see how offers spread over customers."
        )
    if scoring_run.job.status != Job.Status.SUCCEEDED:
        raise AudienceDiversityError("The scoring run has not finished.")
    if top_n is not None and top_n < 1:
        raise AudienceDiversityError(f"The top must hold at least 1 customer, not {top_n}.")
    if top_n is None:
        top_share = DEFAULT_TOP_SHARE if top_share is None else top_share
        if not 0 < top_share <= 1:
            raise AudienceDiversityError(
                f"The top share must be above 0 % and at most 100 %, not {top_share:.0%}."
            )
    fields = {f.name: f for f in audience_attributes()}
    chosen = list(fields) if not attributes else attributes
    unknown = [name for name in chosen if name not in fields]
    if unknown:
        raise AudienceDiversityError(
            f"Unknown attribute(s) {', '.join(unknown)}; known: {', '.join(fields) or 'none'}."
        )
    if not chosen:
        raise AudienceDiversityError("The customers have no profile attributes to compare.")

    return top_n, top_share, chosen, fields


def _reportable(
    result: dict[str, Any], fields: dict[str, ProfileField], top_label: str
) -> dict[str, Any]:
    """Groups too small to show dropped; labels and sentences for the flagged groups."""
    smallest = settings.MIN_GROUP_SIZE
    attributes, findings = [], []
    for spread in result["attributes"]:
        label = fields[spread["attribute"]].label or spread["attribute"]
        shown = [g for g in spread["groups"] if g["base_count"] >= smallest]
        hidden = len(spread["groups"]) - len(shown)
        attributes.append({**spread, "label": label, "groups": shown, "hidden_groups": hidden})
        for group in shown:
            if group["flag"] in ("left out", "under-represented"):
                findings.append(
                    {
                        "attribute": spread["attribute"],
                        "label": label,
                        "group": group["group"],
                        "flag": group["flag"],
                        "ratio": group["ratio"],
                        "text": _finding(label, group, top_label),
                    }
                )
    findings.sort(key=lambda row: row["ratio"])
    return {
        "base_size": result["base_size"],
        "audience_size": result["audience_size"],
        "score_cutoff": result["score_cutoff"],
        "attributes": attributes,
        "under_represented": findings,
    }


def _finding(label: str, group: dict[str, Any], top_label: str) -> str:
    who = f"Customers with {label.lower()} “{group['group']}”"
    if group["audience_count"] == 0:
        share = percent_text(group["base_share"])
        return f"{who} are {share} of the base but none of the {top_label}."
    return (
        f"{who} are {percent_text(group['base_share'])} of the base but "
        f"{percent_text(group['audience_share'])} of the {top_label}."
    )
