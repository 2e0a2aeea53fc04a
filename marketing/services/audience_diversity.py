"""Audience diversity of a single-offer scoring run: how its top customers spread over
profile attributes compared with every scored customer, in sentences for the marketer.

Audiences come from scores, which is profiling: only customers whose ``profiling`` consent is
valid now are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import CustomerScore, Job, ProfileField, ScoringRun
from marketing.selectors.consent import scores_for_use
from marketing.selectors.recommendations import audience_attributes
from marketing.services.jobs import Progress
from marketing.templatetags.money import percent_text

DEFAULT_TOP_SHARE = 0.1
_REPORT_WORDS = ("top", "none_of_top", "share_of_top")

# What the service says, in English: errors (pages and the API), progress (stored with the
# job), the top's label and the findings (stored with the figures). Pages show them in the
# reader's language: ``marketing.stored_texts`` for the messages, ``report_in_words`` for
# the report's words.
_TEXT = {
    "reading": gettext_noop("Reading the scores of customers with a valid profiling consent"),
    "no_base": gettext_noop(
        "No scored customer has a valid profiling consent now; there is no base to compare."
    ),
    "top_too_large": gettext_noop(
        "The top %(top)s is larger than the scored base (%(base)s customers)."
    ),
    "comparing": gettext_noop("Comparing the top with %(count)s scored customers"),
    "top_too_small": gettext_noop(
        "The top holds %(size)s customer(s); it must hold at least %(smallest)s customers so "
        "that the report singles no one out."
    ),
    "every_offer": gettext_noop(
        "This scoring run scores every offer; audience diversity compares the audience of "
        "one offer. Use “Recommendations” to see how offers spread over customers."
    ),
    "unfinished": gettext_noop("The scoring run has not finished."),
    "top_n_below_one": gettext_noop("The top must hold at least 1 customer, not %(top)s."),
    "bad_share": gettext_noop(
        "The top share must be above 0 %% and at most 100 %%, not %(share)s."
    ),
    "unknown_attributes": gettext_noop("Unknown attribute(s) %(unknown)s; known: %(known)s."),
    "no_attributes": gettext_noop("The customers have no profile attributes to compare."),
    "top": gettext_noop("top %(top)s"),
    "none_of_top": gettext_noop(
        "Customers with %(attribute)s “%(group)s” are %(base)s of the base but none of the %(top)s."
    ),
    "share_of_top": gettext_noop(
        "Customers with %(attribute)s “%(group)s” are %(base)s of the base but %(share)s of "
        "the %(top)s."
    ),
}
# The messages: the report's own words are not among them (``report_in_words``).
MESSAGES = tuple(text for key, text in _TEXT.items() if key not in _REPORT_WORDS)


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
        progress(5, _TEXT["reading"])

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
        raise AudienceDiversityError(_TEXT["no_base"])
    if top_n is not None and top_n > base:
        raise AudienceDiversityError(
            _TEXT["top_too_large"] % {"top": f"{top_n:,}", "base": f"{base:,}"}
        )
    if progress is not None:
        progress(60, _TEXT["comparing"] % {"count": f"{base:,}"})
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
            _TEXT["top_too_small"]
            % {"size": f"{result['audience_size']:,}", "smallest": settings.MIN_GROUP_SIZE}
        )
    top_label = top_label_text(top_n, top_share)
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
        raise AudienceDiversityError(_TEXT["every_offer"])
    if scoring_run.job.status != Job.Status.SUCCEEDED:
        raise AudienceDiversityError(_TEXT["unfinished"])
    if top_n is not None and top_n < 1:
        raise AudienceDiversityError(_TEXT["top_n_below_one"] % {"top": top_n})
    if top_n is None:
        top_share = DEFAULT_TOP_SHARE if top_share is None else top_share
        if not 0 < top_share <= 1:
            raise AudienceDiversityError(_TEXT["bad_share"] % {"share": f"{top_share:.0%}"})
    fields = {f.name: f for f in audience_attributes()}
    chosen = list(fields) if not attributes else attributes
    unknown = [name for name in chosen if name not in fields]
    if unknown:
        raise AudienceDiversityError(
            _TEXT["unknown_attributes"]
            % {"unknown": ", ".join(unknown), "known": ", ".join(fields) or "none"}
        )
    if not chosen:
        raise AudienceDiversityError(_TEXT["no_attributes"])

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


def _english(msgid: str) -> str:
    return msgid


def top_label_text(
    top_n: int | None, top_share: float | None, say: Callable[[str], str] = _english
) -> str:
    """The top as the report names it ("top 10%", "top 1,000"); ``say`` translates (English,
    as stored, by default)."""
    top = f"{top_n:,}" if top_n is not None else percent_text(top_share or 0)
    return say(_TEXT["top"]) % {"top": top}


def _finding(
    label: str, group: dict[str, Any], top_label: str, say: Callable[[str], str] = _english
) -> str:
    """The sentence for one under-represented or left-out group."""
    words = {
        "attribute": label.lower(),
        "group": group["group"],
        "base": percent_text(group["base_share"]),
        "share": percent_text(group["audience_share"]),
        "top": top_label,
    }
    if group["audience_count"] == 0:
        return say(_TEXT["none_of_top"]) % words
    return say(_TEXT["share_of_top"]) % words


def report_in_words(report: dict[str, Any], say: Callable[[str], str]) -> dict[str, Any]:
    """The stored report's top label and findings worded anew by ``say`` (a page's gettext):
    the report keeps them in English."""
    top_label = top_label_text(report.get("top_n"), report.get("top_share"), say)
    groups = {
        (spread["attribute"], group["group"]): group
        for spread in report["attributes"]
        for group in spread["groups"]
    }
    findings = []
    for row in report["under_represented"]:
        group = groups.get((row["attribute"], row["group"]))
        text = row["text"] if group is None else _finding(row["label"], group, top_label, say)
        findings.append({**row, "text": text})
    return {"top_label": top_label, "under_represented": findings}
