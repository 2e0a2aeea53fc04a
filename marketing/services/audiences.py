"""Building audiences: a draft from a segment and a score cut, then frozen into members.

Freezing copies the members in one ``INSERT ... SELECT`` so that a million-member audience
never passes through Python, and records the consent state of the members at that moment.
"""

import math
import secrets
from typing import Any

import numpy as np
from django.db import connection, models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from marketing.dbstats import analyze
from marketing.models import (
    Audience,
    AudienceMember,
    AuditEvent,
    Customer,
    Job,
    Offer,
    ScoringRun,
    Segment,
    Suppression,
)
from marketing.models.base import db_column
from marketing.segments import compile_rules
from marketing.selectors.audiences import (
    EVERYONE,
    AudienceCut,
    AudienceDefinitionError,
    audience_candidates,
    audience_customers,
    audience_readiness,
)
from marketing.selectors.figures import unfinished_job
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.figures import audience_figures_save
from marketing.services.jobs import Progress, job_create, register_runner

# A control group holds back at most half of the audience: it cannot outnumber the contacted.
CONTROL_PERCENT_MAX = 50.0
# The largest seed the database keeps (a PostgreSQL integer).
CONTROL_SEED_MAX = 2**31 - 1
# Scored members are drawn in blocks of at most this many consecutive ranks (see
# ``_hold_back_control``). Keep it fixed: it is part of how a seed draws a large audience.
CONTROL_BLOCK = 10_000

MESSAGES = (gettext_noop("Drawing the control group"),)


def insert_select(
    model: type[models.Model],
    columns: list[str],
    source: models.QuerySet,
    constants: dict[str, Any] | None = None,
) -> int:
    """Insert the rows ``source`` selects into ``model`` in one statement; returns the count.

    ``source`` is a ``values_list`` whose columns match ``columns`` in order; ``constants``
    (field name -> value) fill the same value into every row.
    """
    constants = constants or {}
    quote = connection.ops.quote_name
    names = [*constants, *columns]
    target = ", ".join(quote(db_column(model, name)) for name in names)
    select, params = source.query.sql_with_params()
    placeholders = "".join("%s, " for _ in constants)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({target}) "
        f"SELECT {placeholders}source.* FROM ({select}) source"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants.values(), *params])
        return cursor.rowcount


def _check_scores(scoring_run: ScoringRun | None, offer: Offer | None) -> None:
    if scoring_run is None:
        if offer is not None:
            raise AudienceDefinitionError(_("An offer only chooses among a scoring run's scores."))
        return
    if scoring_run.job.status != Job.Status.SUCCEEDED:
        raise AudienceDefinitionError(_("Only a finished scoring run can rank an audience."))
    trained_for = scoring_run.training_run.offer_id
    if offer is not None and trained_for is not None and offer.pk != trained_for:
        raise AudienceDefinitionError(_("This scoring run has no scores for that offer."))


def _log(audience: Audience, change: str, by: Actor, **details: Any) -> None:
    audit_log(
        actor=by,
        action=AuditEvent.Action.SEGMENT_CHANGE,
        target_type="audience",
        target_ref=audience.pk,
        details={"change": change, "name": audience.name, **details},
    )


def control_group(*, percent: float | None, seed: int | None) -> tuple[float | None, int | None]:
    """The share (a fraction) and seed kept for a control group of ``percent`` % of the
    members: (None, None) for none (empty or 0). Without a seed one is drawn at random and
    kept, so that the same definition and seed hold back the same members again. Raises
    ``AudienceDefinitionError`` naming the field (``control_percent``, ``control_seed``)."""
    if percent is None or percent == 0:
        if seed is not None:
            raise AudienceDefinitionError(
                errors={
                    "control_seed": _(
                        "A seed draws a control group: give the control group's share too, "
                        "or leave the seed empty."
                    )
                }
            )
        return None, None
    if not (math.isfinite(percent) and 0 < percent <= CONTROL_PERCENT_MAX):
        raise AudienceDefinitionError(
            errors={
                "control_percent": _(
                    "The control group is a share of the audience above 0 %% and at most "
                    "%(max)s %% (it cannot outnumber the contacted members); empty or 0 for "
                    "none."
                )
                % {"max": f"{CONTROL_PERCENT_MAX:g}"}
            }
        )
    if seed is not None and not 0 <= seed <= CONTROL_SEED_MAX:
        raise AudienceDefinitionError(
            errors={
                "control_seed": _("The seed is a whole number from 0 to %(max)s.")
                % {"max": f"{CONTROL_SEED_MAX:,}"}
            }
        )
    return percent / 100, secrets.randbelow(CONTROL_SEED_MAX + 1) if seed is None else seed


@transaction.atomic
def audience_create(
    *,
    name: str,
    segment: Segment,
    scoring_run: ScoringRun | None = None,
    cut: AudienceCut = EVERYONE,
    offer: Offer | None = None,
    control_percent: float | None = None,
    control_seed: int | None = None,
    by: Actor,
) -> Audience:
    """A draft audience, holding back ``control_percent`` % of its members as a control group
    when it is frozen (see ``control_group``); raises ``AudienceDefinitionError`` or
    ``SegmentRuleError``."""
    if segment is None:
        raise AudienceDefinitionError(_("An audience starts from a segment."))
    _check_scores(scoring_run, offer)
    cut.check(scoring_run)
    share, seed = control_group(percent=control_percent, seed=control_seed)
    compile_rules(segment.rules)
    audience = Audience.objects.create(
        name=name.strip() or segment.name,
        segment=segment,
        segment_name=segment.name,
        segment_rules=segment.rules,
        scoring_run=scoring_run,
        offer=offer,
        cut=cut.kind,
        cut_value=cut.value if cut.kind != Audience.Cut.ALL else None,
        control_share=share,
        control_seed=seed,
        created_by=stored_user(by),
    )
    _log(
        audience,
        "created",
        by,
        segment=segment.pk,
        scoring_run=scoring_run.pk if scoring_run else None,
        cut=cut.kind,
        value=cut.value,
        control_share=share,
        control_seed=seed,
    )
    return audience


def audience_why(audience: Audience) -> str:
    """Why every member of the audience is in it, in words of the active language (the
    members keep it in English: see ``audience_freeze``)."""
    cut = AudienceCut(audience.cut, audience.cut_value).describe(audience.scoring_run)
    words = {"segment": audience.segment_name, "cut": cut}
    if not cut:
        why = _("In segment “%(segment)s”") % words
    elif audience.offer:
        why = _("In segment “%(segment)s”, %(cut)s for “%(offer)s”") % {
            **words,
            "offer": audience.offer.title,
        }
    else:
        why = _("In segment “%(segment)s”, %(cut)s") % words
    return why[:255]


@transaction.atomic
def audience_freeze_start(*, audience: Audience, by: Actor) -> Job:
    """Start freezing the audience as a job (``audience_freeze``); returns the job, or the
    freeze already under way. Raises ``AudienceDefinitionError`` for a frozen audience and
    ``SegmentRuleError`` for rules that no longer compile, before any job starts."""
    locked = (
        Audience.objects.select_for_update(of=("self",))
        .select_related("segment")
        .get(pk=audience.pk)
    )
    if locked.is_frozen:
        raise AudienceDefinitionError(_("This audience is frozen already."))
    compile_rules(locked.segment.rules if locked.segment else locked.segment_rules)
    running = unfinished_job(Job.Kind.AUDIENCE_FREEZE, audience=locked.pk)
    if running is not None:
        return running
    return job_create(
        kind=Job.Kind.AUDIENCE_FREEZE,
        title=f"Freeze audience “{locked.name}”"[:200],
        params={"audience": locked.pk},
        by=by,
    )


@register_runner(Job.Kind.AUDIENCE_FREEZE)
def run_audience_freeze(job: Job, progress: Progress) -> dict[str, Any]:
    audience = Audience.objects.get(pk=job.params["audience"])
    frozen = audience_freeze(audience=audience, by=job.created_by, job=job, progress=progress)
    return {"audience": frozen.pk, "size": frozen.size}


def _no_progress(percent: float, message: str) -> None:
    """Progress of a freeze that runs outside a job."""


@transaction.atomic
def audience_freeze(
    *, audience: Audience, by: Actor, job: Job | None = None, progress: Progress = _no_progress
) -> Audience:
    """Write the members as the definition selects them now, in one ``INSERT ... SELECT``,
    with the consent snapshot; the counts of the frozen members are kept as the audience's
    figures. Runs in the freeze job (``audience_freeze_start``): it grows with the members."""
    locked = (
        Audience.objects.select_for_update(of=("self",))
        .select_related("segment", "scoring_run__training_run", "offer")
        .get(pk=audience.pk)
    )
    if locked.is_frozen:
        raise AudienceDefinitionError(_("This audience is frozen already."))
    if locked.segment is not None:
        locked.segment_name, locked.segment_rules = locked.segment.name, locked.segment.rules
    candidates = audience_candidates(
        rules=locked.segment_rules,
        scoring_run=locked.scoring_run,
        offer=locked.offer,
        cut=AudienceCut(locked.cut, locked.cut_value),
    )
    progress(5, gettext_noop("Writing the members"))
    with translation.override("en"):
        why = audience_why(locked)
    size = insert_select(
        AudienceMember,
        ["customer", "pseudonym", "score", "rank"],
        candidates.values_list("pk", "pseudonym", "audience_score", "audience_rank"),
        constants={"audience": locked.pk, "why": why, "in_control": False},
    )
    if locked.control_share:
        if locked.control_seed is None:
            locked.control_seed = control_group(percent=100 * locked.control_share, seed=None)[1]
        progress(10, gettext_noop("Drawing the control group"))
        locked.control_size = _hold_back_control(locked, progress)
    # Statistics of the members just written before they are counted: planned for an empty
    # table, the consent count of a large audience takes a plan that never ends.
    analyze(AudienceMember)
    at = timezone.now()
    progress(30, gettext_noop("Counting the members' consent"))
    # The consent gate of the contacted members: the control group is never exported.
    figures = audience_readiness(members=audience_customers(locked), progress=progress)
    left_out = figures["left_out"]
    contacted = size - locked.control_size
    locked.consent_snapshot = {
        "at": at.isoformat(),
        "purpose": "ad_targeting",
        "members": contacted,
        "may_be_exported": contacted - sum(left_out.values()),
        "left_out": left_out,
    }
    if locked.control_share:
        locked.consent_snapshot["held_back"] = locked.control_size
    locked.size = size
    locked.status = Audience.Status.FROZEN
    locked.frozen_at = at
    locked.frozen_by = stored_user(by)
    locked.save(
        update_fields=[
            "segment_name",
            "segment_rules",
            "consent_snapshot",
            "size",
            "status",
            "frozen_at",
            "frozen_by",
            "control_seed",
            "control_size",
        ]
    )
    audience_figures_save(audience=locked, job=job, figures=figures)
    _log(locked, "frozen", by, size=size, consent=locked.consent_snapshot)
    return locked


def _hold_back_control(audience: Audience, progress: Progress) -> int:
    """Mark the frozen members ``recengine.control.assign_control`` holds back (from the
    audience's share and seed, by pseudonym) as ``in_control``; returns how many.

    ``assign_control`` stratifies by score decile over the whole audience, which would hold
    every member in memory. A freeze of millions reads them in blocks instead:

    * The members have been ranked by the database already (``rank``: score descending, then
      customer id), so a run of consecutive ranks is a narrow band of scores: the decile
      edges need no pass of their own. The scored members are cut, in rank order, into equal
      blocks of at most ``CONTROL_BLOCK``, and each block goes to ``assign_control`` with its
      scores: it holds back round(share x block) of them, spread evenly over the block's own
      ten score bands. Every decile of the audience is whole blocks plus parts of at most
      two, so it holds the share give or take a member per band it cuts: strata at least as
      fine as the deciles, in the memory of one block. An audience of up to
      ``CONTROL_BLOCK`` scored members is one block: exactly ``assign_control`` over all of it.
    * A member without a score (no scoring run, or no usable score in a cut of everyone) is
      held back when their own draw says so (``assign_control`` without scores), which does
      not depend on who else is in the block.

    The draws hash the seed with the pseudonym, and the ranks and blocks follow from the
    frozen members alone, so the same definition and seed hold back the same members.
    """
    from recengine.control import assign_control

    share, seed = audience.control_share, audience.control_seed
    assert share is not None and seed is not None
    members = AudienceMember.objects.filter(audience=audience)
    ranked, unranked = members.filter(rank__isnull=False), members.filter(rank__isnull=True)
    scored = ranked.filter(score__isnull=False)
    # Scored members hold ranks 1..n, those without a score (in a cut of everyone) the ranks
    # after them; members of an audience without scores have no rank and contiguous ids.
    last_scored = scored.aggregate(last=models.Max("rank"))["last"] or 0
    last_ranked = ranked.aggregate(last=models.Max("rank"))["last"] or 0
    ids = unranked.aggregate(first=models.Min("id"), last=models.Max("id"))
    first_id, last_id = (ids["first"] or 1) - 1, ids["last"] or 0
    block = CONTROL_BLOCK
    passes = (
        (True, scored, "rank", _ranges(0, last_scored, block)),
        (
            False,
            ranked.filter(score__isnull=True),
            "rank",
            _ranges(last_scored, last_ranked, block),
        ),
        (False, unranked, "id", _ranges(first_id, last_id, block)),
    )
    total = members.count() or 1
    held = seen = reported = 0
    for stratified, rows_of, key, ranges in passes:
        for low, high in ranges:
            # A range of the (audience, rank, id) index, read as it is: no sort, no scan of
            # the members after it, whatever the planner knows of the fresh rows.
            rows = list(
                rows_of.filter(**{f"{key}__gt": low, f"{key}__lte": high}).values_list(
                    "id", "pseudonym", "score"
                )
            )
            if not rows:
                continue
            scores = np.array([row[2] for row in rows], dtype=float) if stratified else None
            control = assign_control([row[1] for row in rows], scores, share, seed)
            chosen = [row[0] for row, held_back in zip(rows, control, strict=True) if held_back]
            held += AudienceMember.objects.filter(pk__in=chosen).update(in_control=True)
            seen += len(rows)
            percent = 10 + 20 * seen // total
            if percent != reported:
                reported = percent
                progress(percent, gettext_noop("Drawing the control group"))
    return held


def _ranges(low: int, high: int, largest: int) -> list[tuple[int, int]]:
    """``(low, high]`` cut into the fewest near-equal ranges ``(start, end]`` of at most
    ``largest`` values."""
    n = max(high - low, 0)
    count = math.ceil(n / largest)
    ranges, start = [], low
    for i in range(count):
        end = start + n // count + (i < n % count)
        ranges.append((start, end))
        start = end
    return ranges


@transaction.atomic
def suppression_add(*, customer: Customer, reason: str = "", by: Actor) -> Suppression:
    """Put a customer on the suppression list (no export will hold them from now on)."""
    suppression, created = Suppression.objects.get_or_create(
        customer=customer,
        defaults={
            "reason": reason,
            "created_by": stored_user(by),
        },
    )
    if created:
        audit_log(
            actor=by,
            action=AuditEvent.Action.CONSENT_CHANGE,
            target_type="customer",
            target_ref=customer.pseudonym,
            details={"change": "suppressed", "reason": reason},
        )
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, by: Actor) -> None:
    audit_log(
        actor=by,
        action=AuditEvent.Action.CONSENT_CHANGE,
        target_type="customer",
        target_ref=suppression.customer.pseudonym,
        details={"change": "unsuppressed"},
    )
    suppression.delete()
