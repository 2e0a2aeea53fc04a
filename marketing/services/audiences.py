"""Building audiences: a draft from a segment and a score cut, then frozen into members.

Freezing copies the members in one ``INSERT ... SELECT`` so that a million-member audience
never passes through Python, and records the consent state of the members at that moment.
"""

from typing import Any

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


@transaction.atomic
def audience_create(
    *,
    name: str,
    segment: Segment,
    scoring_run: ScoringRun | None = None,
    cut: AudienceCut = EVERYONE,
    offer: Offer | None = None,
    by: Actor,
) -> Audience:
    """A draft audience; raises ``AudienceDefinitionError`` or ``SegmentRuleError``."""
    if segment is None:
        raise AudienceDefinitionError(_("An audience starts from a segment."))
    _check_scores(scoring_run, offer)
    cut.check(scoring_run)
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
        constants={"audience": locked.pk, "why": why},
    )
    at = timezone.now()
    progress(30, gettext_noop("Counting the members' consent"))
    figures = audience_readiness(members=audience_customers(locked), progress=progress)
    left_out = figures["left_out"]
    locked.consent_snapshot = {
        "at": at.isoformat(),
        "purpose": "ad_targeting",
        "members": size,
        "may_be_exported": size - sum(left_out.values()),
        "left_out": left_out,
    }
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
        ]
    )
    audience_figures_save(audience=locked, job=job, figures=figures)
    _log(locked, "frozen", by, size=size, consent=locked.consent_snapshot)
    analyze(AudienceMember)
    return locked


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
