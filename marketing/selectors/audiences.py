"""Reading audiences: who a definition selects, who of them may go to a platform now, and how
many of those the platform can match.

Who may be exported is decided in the database, on the consent selector alone: a member needs
a valid ``ad_targeting`` consent at export time and must not be on the suppression list; for
Google, members in the EEA, the UK or Switzerland (or of unknown country) also need
``ad_user_data`` and ``ad_personalization``. The left-out counts come from the same
conditions, so they cannot disagree with what is exported.
"""

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, RowNumber, Upper
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from marketing.errors import ApplicationError
from marketing.exporters.base import Member
from marketing.exporters.countries import GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.formats import FORMATS, MATCH_KEYS, ExportFormat, platform_label
from marketing.models import (
    Audience,
    AudienceMember,
    AuditEvent,
    Customer,
    CustomerIdentity,
    CustomerScore,
    Export,
    Interaction,
    Job,
    Offer,
    Purpose,
    ScoringRun,
    Suppression,
)
from marketing.models.base import db_column
from marketing.pseudonyms import erasure_token
from marketing.segments import compile_rules
from marketing.selectors.consent import consent_q, profiling_use_q, scores_for_use
from marketing.selectors.segments import id_windows, shown_count, suppressed_count
from marketing.selectors.training import EXCLUSION_REASONS, consent_exclusions

# Why a member was left out of an export, in the order they are checked and shown. The
# first four are the state of the member's latest ad_targeting consent record.
LEFT_OUT_REASONS = {
    "no_record": gettext_lazy("Ad targeting: no consent record"),
    "denied": gettext_lazy("Ad targeting: consent denied"),
    "withdrawn": gettext_lazy("Ad targeting: consent withdrawn"),
    "expired": gettext_lazy("Ad targeting: consent expired"),
    "suppressed": gettext_lazy("On the suppression list"),
    "google_consent": gettext_lazy(
        "EEA, UK, Swiss or unknown country without ad_user_data and "
        "ad_personalization consent (Google only)"
    ),
    "no_identifier": gettext_lazy(
        "Nothing the platform can match (no valid email, phone or address)"
    ),
}
# Members whose identifiers are read for a readiness preview; larger audiences are sampled.
READINESS_SAMPLE = 20_000
# Identity columns in the order of ``Member`` after pseudonym and score (the digests stored in
# place of hashed identifiers last).
IDENTITY_FIELDS = ("email", "phone", "first_name", "last_name", "country", "postal_code", "digests")

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class AudienceDefinitionError(ApplicationError, ValueError):
    """The audience cannot be built as asked; the message says why."""


@dataclass(frozen=True)
class AudienceCut:
    """How the scores cut the segment: everyone, the top N, the top %, or a minimum score."""

    kind: str = Audience.Cut.ALL
    value: float | None = None

    def check(self, scoring_run: ScoringRun | None) -> None:
        kind, value = self.kind, self.value
        if kind not in Audience.Cut.values:
            raise AudienceDefinitionError(_("Unknown cut %(cut)s.") % {"cut": repr(kind)})
        if kind == Audience.Cut.ALL:
            return
        if scoring_run is None:
            raise AudienceDefinitionError(_("A cut by score needs a scoring run."))
        if value is None or not math.isfinite(value):
            raise AudienceDefinitionError(_("The cut needs a value."))
        if kind == Audience.Cut.TOP_N and (value < 1 or value != int(value)):
            raise AudienceDefinitionError(_("Top N needs a whole number of at least 1."))
        if kind == Audience.Cut.TOP_PERCENT and not 0 < value <= 100:
            raise AudienceDefinitionError(_("Top % needs a percentage above 0 and at most 100."))
        if kind == Audience.Cut.THRESHOLD and not 0 <= value <= 1:
            raise AudienceDefinitionError(_("The minimum score is between 0 and 1."))

    def describe(self, scoring_run: ScoringRun | None) -> str:
        """The cut in words, in the active language ("" for no cut)."""
        model = f"“{scoring_run.training_run.name}”" if scoring_run else ""
        match self.kind:
            case Audience.Cut.TOP_N:
                return _("top %(count)s by score of %(model)s") % {
                    "count": f"{int(self.value or 0):,}",
                    "model": model,
                }
            case Audience.Cut.TOP_PERCENT:
                return _("top %(percent)s%% by score of %(model)s") % {
                    "percent": f"{self.value:g}",
                    "model": model,
                }
            case Audience.Cut.THRESHOLD:
                return _("score of %(model)s at least %(value)s") % {
                    "model": model,
                    "value": f"{self.value:g}",
                }
        return ""


EVERYONE = AudienceCut()


class AudienceScores(TypedDict):
    audience_score: float | None
    audience_rank: int | None


def audience_candidates(
    *,
    rules: dict[str, Any] | None,
    scoring_run: ScoringRun | None = None,
    offer: Offer | None = None,
    cut: AudienceCut = EVERYONE,
    within: Q | None = None,
) -> "QuerySet[WithAnnotations[Customer, AudienceScores]]":
    """The customers a definition selects now, annotated with ``audience_score`` and
    ``audience_rank`` (1 = highest score; both None without a scoring run).

    Without a score cut every segment member is in, scored or not; a cut keeps only scored
    members. Only scores that may be used now count: a member without a valid profiling
    consent has no score here, so a cut leaves them out. Raises ``SegmentRuleError`` for bad
    rules, ``AudienceDefinitionError`` for a bad cut. ``within`` limits the customers looked
    at (a sample for a live preview), before the cut.
    """
    cut.check(scoring_run)
    members = Customer.objects.filter(compile_rules(rules)).order_by()
    if within is not None:
        members = members.filter(within)
    if scoring_run is None:
        # Typed NULLs, so that the rows can be inserted as they are on PostgreSQL.
        return members.annotate(
            audience_score=Cast(Value(None), FloatField()),
            audience_rank=Cast(Value(None), IntegerField()),
        )
    scores = scores_for_use(CustomerScore.objects.filter(scoring_run=scoring_run)).filter(
        customer=OuterRef("pk")
    )
    if offer is not None:
        scores = scores.filter(offer=offer)
    best = scores.order_by().values("customer").annotate(best=Max("score")).values("best")
    ranked = members.annotate(audience_score=Subquery(best, output_field=FloatField()))
    if cut.kind != Audience.Cut.ALL:
        ranked = ranked.filter(audience_score__isnull=False)
    if cut.kind == Audience.Cut.THRESHOLD:
        ranked = ranked.filter(audience_score__gte=cut.value)
    ranked = ranked.annotate(
        audience_rank=Window(
            RowNumber(), order_by=[F("audience_score").desc(nulls_last=True), F("pk").asc()]
        )
    )
    if cut.kind == Audience.Cut.TOP_N:
        return ranked.order_by("audience_rank")[: int(cut.value or 0)]
    if cut.kind == Audience.Cut.TOP_PERCENT:
        keep = math.ceil(ranked.count() * (cut.value or 0) / 100)
        return ranked.order_by("audience_rank")[:keep]
    return ranked


# ---- who of a frozen audience is contacted ----------------------------------------------------
#
# A frozen audience with a control group holds back some members (``in_control``): they are
# counted in its results and never contacted. So every reader of the members that sends,
# shows or counts them for contact (exports, readiness, the page's sample, which exports held
# a customer) goes through ``contacted_q``; only the results read the control group, through
# ``audience_members(audience, control=True)``.


def contacted_q(*, path: str = "") -> Q:
    """Members who are contacted (not held back as control), as a Q on ``AudienceMember`` or,
    through ``path`` (e.g. ``"audience_memberships"``), on a model that reaches it. Put it in
    the same ``filter()`` as the other conditions on that path, so that they share one join."""
    prefix = f"{path}__" if path else ""
    return Q(**{f"{prefix}in_control": False})


def audience_members(audience: Audience, *, control: bool = False) -> QuerySet[AudienceMember]:
    """The frozen members of an audience who are contacted; ``control``: those held back."""
    held_back = Q(in_control=True) if control else contacted_q()
    return AudienceMember.objects.filter(held_back, audience=audience)


def audience_customers(audience: Audience) -> QuerySet[Customer]:
    """The customers an audience contacts: its frozen members less its control group."""
    return Customer.objects.filter(
        Exists(audience_members(audience).filter(customer=OuterRef("pk")))
    )


def audience_responses(
    audience: Audience,
    *,
    kinds: list[str],
    offer: Offer | None,
    since: datetime,
    until: datetime | None = None,
) -> dict[str, dict[str, int]]:
    """For the contacted members of a frozen audience and for its control group: how many
    there are (``members``), how many of them responded (an interaction of one of ``kinds``,
    on ``offer`` or, None, any offer, after ``since`` and before ``until``) and how many were
    erased since (``erased``).

    An erased member is in neither ``members`` nor ``responded``: their responses went with
    them, so counting them would add people who could not have responded, to each group in
    its own proportion. One aggregate per group; the responses are an EXISTS per member.
    """
    responses = Interaction.objects.filter(
        customer=OuterRef("customer_id"), kind__in=kinds, occurred_at__gt=since
    )
    if until is not None:
        responses = responses.filter(occurred_at__lt=until)
    if offer is not None:
        responses = responses.filter(offer=offer)
    living = Q(customer__isnull=False)
    counts = {}
    for group, control in (("contacted", False), ("control", True)):
        counts[group] = audience_members(audience, control=control).aggregate(
            members=Count("pk", filter=living),
            responded=Count("pk", filter=living & Q(Exists(responses))),
            erased=Count("pk", filter=~living),
        )
    return counts


def audience_members_now(audience: Audience) -> QuerySet[Customer]:
    """The contacted members of a frozen audience; the customers its definition selects now
    while it is a draft (raising as ``audience_candidates`` does; its control group is drawn
    only when it is frozen)."""
    if audience.is_frozen:
        return audience_customers(audience)
    return audience_candidates(
        rules=audience.segment.rules if audience.segment else audience.segment_rules,
        scoring_run=audience.scoring_run,
        offer=audience.offer,
        cut=AudienceCut(audience.cut, audience.cut_value),
    )


# ---- the export gate --------------------------------------------------------------------------


def suppressed_q() -> Q:
    return Q(Exists(Suppression.objects.filter(customer=OuterRef("pk"))))


def google_consent_q(*, at: datetime | None = None) -> Q:
    """Google's EU user consent policy, as a Q on Customer: a customer known to live outside
    the EEA, the UK and Switzerland, or one with both Google consents."""
    outside = (
        CustomerIdentity.objects.filter(customer=OuterRef("pk"))
        .annotate(code=Upper("country"))
        .exclude(code="")
        .exclude(code__in=GOOGLE_CONSENT_COUNTRIES)
    )
    return Q(Exists(outside)) | (
        consent_q(Purpose.AD_USER_DATA, at=at) & consent_q(Purpose.AD_PERSONALIZATION, at=at)
    )


def export_gate_q(fmt: ExportFormat, *, at: datetime | None = None) -> Q:
    """Who may be in an export in ``fmt`` at ``at``, as a Q on Customer."""
    gate = consent_q(Purpose.AD_TARGETING, at=at) & ~suppressed_q()
    if fmt.needs_google_consents:
        gate &= google_consent_q(at=at)
    return gate


def left_out_counts(
    members: QuerySet[Customer], *, fmt: ExportFormat | None, at: datetime | None = None
) -> dict[str, int]:
    """How many of ``members`` the gate refuses, by the first reason that applies (see
    ``LEFT_OUT_REASONS``); ``fmt`` None: the reasons every platform shares."""
    counts = consent_exclusions(Purpose.AD_TARGETING, queryset=members, at=at)
    consented = members.filter(consent_q(Purpose.AD_TARGETING, at=at))
    counts["suppressed"] = consented.filter(suppressed_q()).count()
    if fmt is not None and fmt.needs_google_consents:
        counts["google_consent"] = google_refused_count(members, at=at)
    return counts


def google_refused_count(members: QuerySet[Customer], *, at: datetime | None = None) -> int:
    """Members who pass every other check but not Google's EU user consent policy."""
    return (
        members.filter(consent_q(Purpose.AD_TARGETING, at=at))
        .exclude(suppressed_q())
        .exclude(google_consent_q(at=at))
        .count()
    )


def export_rows(
    audience: Audience, fmt: ExportFormat, *, at: datetime | None = None, chunk_size: int = 10_000
) -> Iterator[list[tuple]]:
    """Every contacted member of a frozen audience (never its control group), streamed in one
    pass in chunks of rows
    ``(customer id, passes, pseudonym, score, email, phone, first name, last name, country,
    postal code, digests)``.

    ``passes`` is the export gate, evaluated in the database; identifiers are read only for
    members who pass it (None for the others). The frozen score goes out only while the member
    may still be profiled (None otherwise).
    """
    members = (
        Customer.objects.filter(
            contacted_q(path="audience_memberships"), audience_memberships__audience=audience
        )
        .annotate(
            passes=ExpressionWrapper(export_gate_q(fmt, at=at), output_field=BooleanField()),
            usable_score=_usable_score("audience_memberships__score", customer="pk", at=at),
        )
        .order_by()
        .values_list("pk", "passes", "pseudonym", "usable_score")
    )
    inner, params = members.query.sql_with_params()
    quote = connection.ops.quote_name
    identity = CustomerIdentity._meta
    columns = ", ".join(f"i.{quote(db_column(CustomerIdentity, f))}" for f in IDENTITY_FIELDS)
    # The fence keeps the database from copying the gate into the join condition, where it
    # would be evaluated a second time. No ORDER BY: sorting a million wide rows costs more
    # than it is worth, so the order of the rows in a file is not defined.
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    sql = (
        f"SELECT m.*, {columns} FROM ({inner} {fence}) m "
        f"LEFT JOIN {quote(identity.db_table)} i "
        f"ON i.{quote(identity.get_field('customer').column)} = m.{quote('pk')} "
        f"AND m.{quote('passes')}"
    )
    with _streaming_connection() as reader, reader.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield rows


def _usable_score(field: str, *, customer: str, at: datetime | None = None) -> Case:
    """A stored score, or None when its customer may not be profiled at ``at``."""
    return Case(
        When(profiling_use_q(at=at, customer=customer), then=F(field)),
        default=None,
        output_field=FloatField(),
    )


def audience_member_sample(audience: Audience, limit: int = 10) -> QuerySet[AudienceMember]:
    """The first contacted members of a frozen audience by rank, each with ``usable_score``:
    the frozen score while the member may still be profiled, None otherwise."""
    return (
        audience_members(audience)
        .select_related("customer")
        .annotate(usable_score=_usable_score("score", customer="customer_id"))
        .order_by("rank", "id")[:limit]
    )


@contextmanager
def _streaming_connection() -> Iterator[BaseDatabaseWrapper]:
    """A connection whose server-side cursor streams a large result.

    Outside a transaction, PostgreSQL's server-side cursors are WITH HOLD: the whole result
    is computed and stored before the first row comes back. So on PostgreSQL the rows are
    read over a connection of their own, inside a transaction (which writes nothing), and the
    planner is told that every row will be read. Inside a transaction (tests) the current
    connection streams already, and only it sees the transaction's data.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield connection
        return
    reader = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        reader.set_autocommit(False)
        with reader.cursor() as cursor:
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        yield reader
    finally:
        reader.rollback()
        reader.close()


# ---- identifiers and match readiness ----------------------------------------------------------


def member_rows(customers: QuerySet[Customer], chunk_size: int = 5000) -> Iterator[Member]:
    """(pseudonym, None, identifiers...) per customer, streamed."""
    rows = customers.order_by("pk").values_list(
        "pseudonym", *(f"identity__{name}" for name in IDENTITY_FIELDS)
    )
    for pseudonym, *identity in rows.iterator(chunk_size=chunk_size):
        yield Member(pseudonym, None, *identity)


def audience_readiness(
    *,
    members: QuerySet[Customer],
    formats: list[str] | None = None,
    at: datetime | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Raw counts of an audience's consent gate and match readiness, for a job to store.

    The gate is counted in the database, set-based: one GROUP BY for the ad-targeting consent
    reasons and one aggregate with a FILTER per remaining reason (suppressed, refused by
    Google's policy), whatever the audience's size. The identifier counts read at most
    ``READINESS_SAMPLE`` members who pass the gate (a random sample above that). The result is
    JSON: store it, and show it only through ``shown_readiness``.
    """
    at = at or timezone.now()
    if members.query.is_sliced:  # a rank cut (top N, top %): filter on its members instead
        # Ranked once: every count below would rank the segment again. A cut too large to
        # hold stays a subquery.
        ids = list(members.values_list("pk", flat=True)[: READINESS_SAMPLE + 1])
        if len(ids) <= READINESS_SAMPLE:
            members = Customer.objects.filter(pk__in=ids)
        else:
            members = Customer.objects.filter(pk__in=members.values("pk"))
    keys = formats or list(FORMATS)
    consented = consent_q(Purpose.AD_TARGETING, at=at)
    gate = _gate_tally(members, at=at)
    size = gate["size"]
    if progress:
        progress(40, gettext_noop("Counting the reasons members are left out"))
    base = consent_exclusions(Purpose.AD_TARGETING, queryset=members, at=at) if size else {}
    base = {**dict.fromkeys(EXCLUSION_REASONS, 0), **base, "suppressed": gate["suppressed"]}
    passed = members.filter(consented & ~suppressed_q()).annotate(
        google_ok=ExpressionWrapper(google_consent_q(at=at), output_field=BooleanField())
    )
    exportable_base = size - sum(base.values())
    if progress:
        progress(70, gettext_noop("Checking the members' identifiers"))
    tallies, sampled = (
        _readiness_tallies(
            passed, [FORMATS[key] for key in keys], exportable_base, gate["google_consent"]
        )
        if exportable_base
        else ({key: Counter() for key in keys}, False)
    )
    return {
        "at": at.isoformat(),
        "size": size,
        "left_out": base,
        "google_consent": gate["google_consent"],
        "sampled": sampled,
        "formats": {key: dict(tallies[key]) for key in keys},
    }


def audience_preview_estimate(
    *,
    rules: dict[str, Any] | None,
    scoring_run: ScoringRun | None = None,
    offer: Offer | None = None,
    cut: AudienceCut = EVERYONE,
    formats: list[str] | None = None,
) -> dict[str, Any]:
    """The builder's live preview of an unsaved definition, as ``shown_readiness`` shows it,
    from a bounded sample of the base (``id_windows``); counted exactly on a small base.

    The sample's counts are scaled to the base and marked ``estimated``. A cut by rank (top N,
    top %) is applied to the sample as the share of the scored members it keeps: top N of an
    estimated S scored customers is the top N/S of the sampled ones. The audience's exact
    figures are counted by a job once it is saved (``marketing.services.figures``).
    """
    cut.check(scoring_run)
    definition: dict[str, Any] = {"rules": rules, "scoring_run": scoring_run, "offer": offer}
    windows, scale = id_windows()
    if windows is None:
        return audience_preview(members=audience_candidates(**definition, cut=cut), formats=formats)
    sample_cut = cut
    if cut.kind in (Audience.Cut.TOP_N, Audience.Cut.TOP_PERCENT):
        share = cut.value or 0
        if cut.kind == Audience.Cut.TOP_N:
            everyone_scored = AudienceCut(Audience.Cut.THRESHOLD, 0.0)
            scored = audience_candidates(**definition, cut=everyone_scored, within=windows).count()
            share = min(100.0, 100 * share / max(scored * scale, 1))
        sample_cut = AudienceCut(Audience.Cut.TOP_PERCENT, share)
    members = audience_candidates(**definition, cut=sample_cut, within=windows)
    raw = audience_readiness(members=members, formats=formats)
    return shown_readiness(_scaled(raw, scale))


def _scaled(raw: dict[str, Any], scale: float) -> dict[str, Any]:
    """Counts of a sample scaled to the whole base, marked as estimated."""
    return {
        **raw,
        "size": round(raw["size"] * scale),
        "left_out": {key: round(n * scale) for key, n in raw["left_out"].items()},
        "google_consent": round(raw["google_consent"] * scale),
        "formats": {
            key: {name: round(n * scale) for name, n in tally.items()}
            for key, tally in raw["formats"].items()
        },
        "sampled": True,
    }


def _gate_tally(members: QuerySet[Customer], *, at: datetime | None = None) -> dict[str, int]:
    """Members, those suppressed among the consented, and those of them refused by Google's
    policy, in one pass over the members: each condition evaluated once per member in a
    subquery, summed by a plain aggregate around it (no GROUP BY, so no sort to spill)."""
    flag = {"output_field": BooleanField()}
    flags = (
        members.order_by()
        .annotate(
            consented=ExpressionWrapper(consent_q(Purpose.AD_TARGETING, at=at), **flag),
            suppressed=ExpressionWrapper(suppressed_q(), **flag),
            google_ok=ExpressionWrapper(google_consent_q(at=at), **flag),
        )
        .values_list("consented", "suppressed", "google_ok")
    )
    inner, params = flags.query.sql_with_params()
    # The fence keeps the database from merging the subquery into the sums, where each
    # condition would be evaluated again for every sum that uses it.
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    sql = (
        "SELECT COUNT(*), "
        "COALESCE(SUM(CASE WHEN f.consented AND f.suppressed THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN f.consented AND NOT f.suppressed AND NOT f.google_ok "
        "THEN 1 ELSE 0 END), 0) "
        f"FROM ({inner} {fence}) f"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        size, suppressed, google_refused = cursor.fetchone()
    return {"size": size, "suppressed": suppressed, "google_consent": google_refused}


def shown_readiness(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The counts of ``audience_readiness`` as pages and the API show them: size, and for each
    format how many members the consent gate lets through (``exportable``), how many it leaves
    out by reason, and how many of the exportable have an email, a phone and a full address
    that survive the platform's normalisation (``matchable``: at least one of them).

    Every count is shown by the one rule of ``shown_count`` (hidden below the minimum group
    size, rounded otherwise), so that no count, nor the difference of two, reveals a small
    group; an audience too small to show shows no format's counts either.
    """
    size = raw["size"]
    shown = suppressed_count(size)
    at = datetime.fromisoformat(raw["at"]) if isinstance(raw["at"], str) else raw["at"]
    preview: dict[str, Any] = {**shown, "size": shown["count"], "at": at, "formats": []}
    del preview["count"]
    keys = [key for key in raw["formats"] if key in FORMATS]
    if shown["suppressed"]:
        preview["formats"] = [_hidden(FORMATS[key]) for key in keys]
        return preview
    sampled = raw["sampled"]
    for key in keys:
        fmt = FORMATS[key]
        left_out = dict(raw["left_out"])
        if fmt.needs_google_consents:
            left_out["google_consent"] = raw["google_consent"]
        exportable = size - sum(left_out.values())
        tally = raw["formats"][key]
        seen = tally.get("seen", 0)
        scale = exportable / seen if sampled and seen else 1

        preview["formats"].append(
            {
                "format": key,
                "label": fmt.label,
                "platform": fmt.platform,
                "exportable": shown_count(exportable),
                "left_out": {reason: shown_count(n) for reason, n in left_out.items()},
                "left_out_total": shown_count(size - exportable),
                **{
                    name: shown_count(round(tally.get(name, 0) * scale))
                    if name in fmt.match_keys
                    else None
                    for name in MATCH_KEYS
                },
                "matchable": shown_count(
                    round(tally.get("matchable", 0) * scale) if fmt.match_keys else exportable
                ),
                "estimated": sampled,
            }
        )
        row = preview["formats"][-1]
        row["warnings"] = readiness_warnings(fmt, row["exportable"], row["matchable"])
    return preview


# The identifiers a platform matches on, in words, by its ``match_keys``.
MATCH_KEY_WORDS = {
    ("email", "phone", "address"): gettext_lazy("email, phone or full address"),
    ("email", "phone"): gettext_lazy("email or phone"),
}


def _match_key_words(match_keys: tuple[str, ...]) -> str:
    known = MATCH_KEY_WORDS.get(tuple(match_keys))
    if known is not None:
        return str(known)
    names = [{"email": "email", "phone": "phone", "address": "full address"}[k] for k in match_keys]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def readiness_warnings(
    fmt: ExportFormat, exportable: int | None, matchable: int | None
) -> list[str]:
    """Why an export of these members may not work on the platform: fewer matchable members
    than it needs to serve an audience (PLATFORM_MIN_MATCHED, at the low end of match rates),
    or many who may go with nothing it can match on. Counts as shown (None: too few to
    show). In the active language."""
    minimum = settings.PLATFORM_MIN_MATCHED.get(fmt.platform)
    if minimum is None or not fmt.match_keys:
        return []
    words = {
        "platform": platform_label(fmt.platform),
        "minimum": f"{minimum:,}",
        "keys": _match_key_words(fmt.match_keys),
        "exportable": f"{exportable:,}" if exportable is not None else "",
        "matchable": f"{matchable:,}" if matchable is not None else "",
    }
    rate = settings.LOW_MATCH_RATE
    if matchable is None or matchable < minimum:
        if exportable is None:
            warning = _(
                "Below %(platform)s's minimum: %(platform)s serves an uploaded audience once "
                "about %(minimum)s people match, and this audience is too small to show. The "
                "file uploads, but the audience will not deliver."
            )
        elif matchable is None:
            warning = _(
                "Below %(platform)s's minimum: %(platform)s serves an uploaded audience once "
                "about %(minimum)s people match, and of the %(exportable)s members who may go, "
                "too few to show (perhaps none) have an %(keys)s it can match. The file "
                "uploads, but the audience will not deliver."
            )
        else:
            warning = _(
                "Below %(platform)s's minimum: %(platform)s serves an uploaded audience once "
                "about %(minimum)s people match, and only %(matchable)s of the %(exportable)s "
                "who may go have an %(keys)s it can match. The file uploads, but the audience "
                "will not deliver."
            )
        return [warning % words]
    warnings = []
    if matchable * rate < minimum:
        warnings.append(
            _(
                "May fall short of %(platform)s's minimum: %(platform)s serves an uploaded "
                "audience once about %(minimum)s people match; at a %(rate)s match rate "
                "%(matchable)s matchable members give about %(expected)s. Aim for %(aim)s or "
                "more."
            )
            % {
                **words,
                "rate": f"{rate:.0%}",
                "expected": f"{int(matchable * rate):,}",
                "aim": f"{math.ceil(minimum / rate):,}",
            }
        )
    if exportable and matchable < exportable / 2:
        warnings.append(
            _(
                "%(missing)s of the %(exportable)s members who may go have no %(keys)s that "
                "%(platform)s can match, so they will not be reached."
            )
            % {**words, "missing": f"{exportable - matchable:,}"}
        )
    return warnings


def audience_preview(
    *, members: QuerySet[Customer], formats: list[str] | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """``audience_readiness`` as ``shown_readiness`` shows it, counted now (for jobs and for
    bounded sets of members; a page reads the stored figures instead)."""
    return shown_readiness(audience_readiness(members=members, formats=formats, at=at))


def _hidden(fmt: ExportFormat) -> dict[str, Any]:
    return {
        "format": fmt.key,
        "label": fmt.label,
        "platform": fmt.platform,
        "exportable": None,
        "left_out": {},
        "left_out_total": None,
        **dict.fromkeys(MATCH_KEYS),
        "matchable": None,
        "estimated": False,
        "warnings": readiness_warnings(fmt, None, None),
    }


def _readiness_tallies(
    passed: QuerySet[Customer], formats: list[ExportFormat], exportable: int, google_refused: int
) -> tuple[dict[str, Counter], bool]:
    """Per format, the members who pass its gate (``seen``) and how many of them have an
    email, a phone or an address the platform can match.

    Every member who passes is seen (``exportable``, less ``google_refused`` for a format
    that needs Google's consents: both counted by the gate already). A member without an
    identity row can match nothing and is not read. The identity holders are read, all of
    them or a random sample of ``READINESS_SAMPLE`` (their tallies then scaled to all
    holders, marked sampled)."""
    holders = passed.filter(identity__isnull=False)
    held = holders.count() if exportable > READINESS_SAMPLE else None
    sampled = held is not None and held > READINESS_SAMPLE
    rows = holders.order_by("?")[:READINESS_SAMPLE] if sampled else holders.order_by("pk")
    tallies: dict[str, Counter] = {fmt.key: Counter() for fmt in formats}
    values = rows.values_list(
        "pseudonym", "google_ok", *(f"identity__{name}" for name in IDENTITY_FIELDS)
    )
    read = 0
    for pseudonym, google_ok, *identity in values.iterator(chunk_size=5000):
        read += 1
        member = Member(pseudonym, None, *identity)
        for fmt in formats:
            if fmt.readiness is None or (fmt.needs_google_consents and not google_ok):
                continue
            ready = fmt.readiness(member)
            tally = tallies[fmt.key]
            tally["email"] += bool(ready.email)
            tally["phone"] += bool(ready.phone)
            tally["address"] += bool(ready.address)
            tally["matchable"] += ready.matchable
    scale = held / read if sampled and read and held else 1
    for fmt in formats:
        tally = tallies[fmt.key]
        for name in ("email", "phone", "address", "matchable"):
            tally[name] = round(tally[name] * scale)
        tally["seen"] = exportable - google_refused if fmt.needs_google_consents else exportable
    return tallies, sampled


# ---- lists ------------------------------------------------------------------------------------


def export_size_warning(platform: str, rows: int) -> str:
    """A warning for an export file with fewer rows than the platform needs matched people
    to serve the audience ("" when none applies), in the active language."""
    fmt = FORMATS.get(platform)
    minimum = settings.PLATFORM_MIN_MATCHED.get(fmt.platform) if fmt else None
    if fmt is None or minimum is None or rows >= minimum:
        return ""
    return ngettext(
        "Only %(rows)s person in this file: %(platform)s serves an uploaded audience once "
        "about %(minimum)s people match, so this one will upload but not deliver.",
        "Only %(rows)s people in this file: %(platform)s serves an uploaded audience once "
        "about %(minimum)s people match, so this one will upload but not deliver.",
        rows,
    ) % {"rows": f"{rows:,}", "platform": platform_label(fmt.platform), "minimum": f"{minimum:,}"}


def finished_export_warning(export: Export) -> str:
    """``export_size_warning`` of an export whose file was written ("" until then)."""
    if export.job_id is None or export.job.status != Job.Status.SUCCEEDED:
        return ""
    return export_size_warning(export.platform, export.row_count)


def left_out_in_words(counts: Mapping[str, int | None]) -> list[dict[str, Any]]:
    """Left-out counts that may be shown (see ``shown_count``), in the order and words of
    ``LEFT_OUT_REASONS``; a reason with too few members to show is left out of the list."""
    rows = []
    for key, label in LEFT_OUT_REASONS.items():
        shown = shown_count(counts.get(key) or 0)
        if shown is not None:
            rows.append({"key": key, "label": label, "count": shown})
    return rows


def audiences() -> QuerySet[Audience]:
    return (
        Audience.objects.select_related(
            "segment", "scoring_run__training_run", "offer", "created_by", "frozen_by"
        )
        .annotate(export_count=Count("exports", distinct=True))
        .order_by("-created_at", "-id")
    )


def exports() -> QuerySet[Export]:
    return Export.objects.select_related("job", "audience", "created_by")


def customer_exports(customer: Customer) -> QuerySet[Export]:
    """Finished exports whose file held this customer: exports of audiences the customer is
    a contacted member of (not held back as control) that did not leave them out."""
    return (
        exports()
        .filter(
            contacted_q(path="audience__members"),
            job__status=Job.Status.SUCCEEDED,
            audience__members__customer=customer,
        )
        .exclude(exclusions__customer=customer)
        .distinct()
    )


def exports_holding(pseudonym: str) -> QuerySet[Export]:
    """Finished exports whose file held the customer with this pseudonym, also after the
    customer was erased (only exports made before the erasure can have held them); the
    erasure left their erasure token in place of the pseudonym."""
    handles = [pseudonym, erasure_token(pseudonym)]
    held = (
        exports()
        .filter(
            contacted_q(path="audience__members"),
            job__status=Job.Status.SUCCEEDED,
            audience__members__pseudonym__in=handles,
        )
        .exclude(exclusions__pseudonym__in=handles)
        .distinct()
    )
    erased_at = AuditEvent.objects.filter(
        action=AuditEvent.Action.ERASURE, target_type="customer", target_ref__in=handles
    ).aggregate(at=Min("at"))["at"]
    return held if erased_at is None else held.filter(job__started_at__lt=erased_at)
