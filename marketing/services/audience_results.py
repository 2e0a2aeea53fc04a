"""Measuring what a campaign did: the contacted members of a frozen audience against the
control group held back when it was frozen, as a job ("audience_results").

The job counts, in the database, each group's members and those who responded to the offer
after the freeze (``marketing.selectors.audiences.audience_responses``), then asks the engine
for the incremental lift with its interval (``recengine.control.incremental_lift``) and keeps
the figures on the audience (``Audience.results``); the page and the API read them there.
"""

import math
from datetime import date, datetime, time, timedelta
from statistics import NormalDist
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import Audience, Interaction, Job, Offer, TrainingRun
from marketing.selectors.audiences import audience_responses
from marketing.selectors.figures import unfinished_job
from marketing.services.audit import Actor
from marketing.services.jobs import Progress, job_create, register_runner
from recengine.control import incremental_lift, minimum_detectable_lift, wilson_interval

CONFIDENCE = 0.95
# Below these, in either group, the lift is "too small to tell" whatever its interval (the
# engine's rule, passed to it so that the page can say which one a campaign missed).
MIN_GROUP = 30
MIN_RESPONSES = 5

# Stored in English with the job; pages show them in the reader's language.
_TEXT = {
    "title": gettext_noop("Measure the results of “%(audience)s”"),
    "counting": gettext_noop("Counting the responses of the contacted and the control members"),
}
MESSAGES = tuple(_TEXT.values())


class AudienceResultsError(ApplicationError, ValueError):
    """The results cannot be measured as asked; the message says why."""


def results_offer(audience: Audience) -> Offer | None:
    """The offer whose responses count: the audience's, else the one its scores were trained
    for; None: a response to any offer counts."""
    if audience.offer is not None:
        return audience.offer
    if audience.scoring_run is not None:
        return audience.scoring_run.training_run.offer
    return None


def results_response(audience: Audience) -> str:
    """What counts as a response: what the audience's model learnt to predict ("click": a
    click or a conversion), else a conversion."""
    if audience.scoring_run is not None:
        return audience.scoring_run.training_run.target
    return TrainingRun.Target.CONVERSION


def _kinds(response: str) -> list[str]:
    if response == TrainingRun.Target.CLICK:
        return [Interaction.Kind.CLICK, Interaction.Kind.CONVERSION]
    return [Interaction.Kind.CONVERSION]


def default_value_per_conversion(audience: Audience) -> float | None:
    """The offer's price, when the results count one offer and it has a price."""
    offer = results_offer(audience)
    return float(offer.price) if offer is not None and offer.price is not None else None


@transaction.atomic
def audience_results_start(
    *,
    audience: Audience,
    value_per_conversion: float | None = None,
    cost_per_contact: float | None = None,
    until: date | None = None,
    by: Actor,
) -> Job:
    """Start measuring the results of a frozen audience with a control group; returns the job
    (the one under way, when there is one). ``value_per_conversion`` defaults to the offer's
    price; ``until`` (a day, included) ends the responses counted, else they run to now.
    Raises ``AudienceResultsError`` (naming the field where one is wrong) before any job."""
    if not audience.is_frozen or audience.frozen_at is None:
        raise AudienceResultsError(_("Freeze the audience before measuring its results."))
    if not audience.control_size:
        raise AudienceResultsError(
            _(
                "This audience has no control group, so there is nobody to compare the "
                "contacted members with. Hold back a control group when you build the next one."
            )
        )
    errors = {}
    for name, amount in (
        ("value_per_conversion", value_per_conversion),
        ("cost_per_contact", cost_per_contact),
    ):
        if amount is not None and not (math.isfinite(amount) and amount >= 0):
            errors[name] = _("Enter an amount of 0 or more, or leave it empty.")
    frozen_on = timezone.localdate(audience.frozen_at)
    if until is not None and until < frozen_on:
        errors["until"] = _("The end date is before the audience was frozen (%(date)s).") % {
            "date": frozen_on.isoformat()
        }
    if errors:
        raise AudienceResultsError(errors=errors)
    running = unfinished_job(Job.Kind.AUDIENCE_RESULTS, audience=audience.pk)
    if running is not None:
        return running
    if value_per_conversion is None:
        value_per_conversion = default_value_per_conversion(audience)
    return job_create(
        kind=Job.Kind.AUDIENCE_RESULTS,
        title=(_TEXT["title"] % {"audience": audience.name})[:200],
        params={
            "audience": audience.pk,
            "value_per_conversion": value_per_conversion,
            "cost_per_contact": cost_per_contact,
            "until": until.isoformat() if until else None,
        },
        by=by,
    )


@register_runner(Job.Kind.AUDIENCE_RESULTS, restartable=True)
def run_audience_results(job: Job, progress: Progress) -> dict[str, Any]:
    audience = Audience.objects.select_related("offer", "scoring_run__training_run__offer").get(
        pk=job.params["audience"]
    )
    progress(5, _TEXT["counting"])
    until = job.params.get("until")
    results = audience_results(
        audience=audience,
        value_per_conversion=job.params.get("value_per_conversion"),
        cost_per_contact=job.params.get("cost_per_contact"),
        until=date.fromisoformat(until) if until else None,
    )
    results["job"] = job.pk
    Audience.objects.filter(pk=audience.pk).update(results=results)
    lift = results["lift"]
    return {"audience": audience.pk, "conclusive": bool(lift and lift["conclusive"])}


def audience_results(
    *,
    audience: Audience,
    value_per_conversion: float | None = None,
    cost_per_contact: float | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """The results of a frozen audience, as ``Audience.results`` keeps them: when, what was
    counted (offer, response, period), the amounts, each group's members, responses, erased
    members, response rate and its interval, the engine's ``Lift`` (None when a group is
    empty), whether a group is too small to tell, and the minimum detectable lift."""
    assert audience.frozen_at is not None
    offer = results_offer(audience)
    response = results_response(audience)
    end = (
        timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
        if until
        else None
    )
    counts = audience_responses(
        audience, kinds=_kinds(response), offer=offer, since=audience.frozen_at, until=end
    )
    treated, control = counts["contacted"], counts["control"]
    lift = None
    if treated["members"] and control["members"]:
        lift = incremental_lift(
            treated["members"],
            treated["responded"],
            control["members"],
            control["responded"],
            value_per_conversion=value_per_conversion,
            cost_per_contact=cost_per_contact,
            confidence=CONFIDENCE,
            min_group=MIN_GROUP,
            min_conversions=MIN_RESPONSES,
        ).as_dict()
    return {
        "at": timezone.now().isoformat(),
        "offer": offer.pk if offer else None,
        "offer_title": offer.title if offer else "",
        "response": response,
        "since": audience.frozen_at.isoformat(),
        "until": until.isoformat() if until else None,
        "value_per_conversion": value_per_conversion,
        "cost_per_contact": cost_per_contact,
        "confidence": CONFIDENCE,
        "treated": _with_rate(treated),
        "control": _with_rate(control),
        "lift": lift,
        "too_few": any(
            group["members"] < MIN_GROUP or group["responded"] < MIN_RESPONSES
            for group in (treated, control)
        ),
        "min_group": MIN_GROUP,
        "min_responses": MIN_RESPONSES,
        "minimum_detectable_lift": _minimum_detectable_lift(treated, control),
    }


def _with_rate(group: dict[str, int]) -> dict[str, Any]:
    """A group's counts with its response rate and the rate's Wilson interval (None for an
    empty group)."""
    n, responded = group["members"], group["responded"]
    z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
    return {
        **group,
        "rate": responded / n if n else None,
        "interval": list(wilson_interval(responded, n, z=z)) if n else None,
    }


def _minimum_detectable_lift(treated: dict[str, int], control: dict[str, int]) -> float | None:
    """The smallest lift groups of these sizes would show (at the pooled response rate);
    None when a group is empty or nobody, or everybody, responded."""
    n = treated["members"] + control["members"]
    if not treated["members"] or not control["members"]:
        return None
    base_rate = (treated["responded"] + control["responded"]) / n
    if not 0 < base_rate < 1:
        return None
    return minimum_detectable_lift(control["members"], treated["members"], base_rate)
