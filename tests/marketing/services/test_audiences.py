import pytest

from marketing.models import Audience, AuditEvent, Job, ProfileField, Purpose, Suppression
from marketing.segments import SegmentRuleError
from marketing.selectors import audiences as audience_selectors
from marketing.selectors.audiences import (
    AudienceCut,
    AudienceDefinitionError,
    audience_candidates,
    audience_customers,
    audience_preview,
)
from marketing.services.audiences import (
    audience_create,
    audience_freeze,
    suppression_add,
    suppression_remove,
)
from tests.factories import make_offer
from tests.marketing.services.audience_helpers import (
    GOOGLE_PURPOSES,
    everyone_segment,
    frozen_audience,
    make_people,
)
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(marketer):
    """20 customers scored 0.045, 0.09, ... 0.9 (in the order they were made)."""
    people = make_people(20, purposes=(Purpose.AD_TARGETING, Purpose.PROFILING))
    run = finished_run(make_offer(), by=marketer)
    return people, finished_scoring(run, people, by=marketer)


def members_of(audience: Audience) -> list[int]:
    return list(
        audience.members.order_by("rank", "customer_id").values_list("customer_id", flat=True)
    )


def test_it_freezes_the_segment_members_with_why_and_a_consent_snapshot(marketer):
    consented = make_people(12, attributes={"plan": "gold"})
    withdrawn = make_people(3, withdrawn=True, attributes={"plan": "gold"})
    make_people(4, attributes={"plan": "basic"})
    segment = everyone_segment("Gold")
    segment.rules = {
        "op": "and",
        "rules": [{"field": "attr:plan", "operator": "eq", "value": "gold"}],
    }
    segment.save()
    ProfileField.objects.create(name="plan", data_type="text")

    audience = audience_create(name="Gold members", segment=segment, by=marketer)
    assert audience.status == Audience.Status.DRAFT and not audience.members.exists()
    frozen = audience_freeze(audience=audience, by=marketer)

    assert frozen.is_frozen and frozen.size == 15 and frozen.frozen_by == marketer
    assert set(members_of(frozen)) == {c.pk for c in consented + withdrawn}
    member = frozen.members.first()
    assert member.why == "In segment “Gold”" and member.score is None and member.rank is None
    assert member.pseudonym == member.customer.pseudonym
    assert frozen.consent_snapshot["members"] == 15
    assert frozen.consent_snapshot["may_be_exported"] == 12
    assert frozen.consent_snapshot["left_out"]["withdrawn"] == 3
    assert frozen.segment_rules == segment.rules
    changes = AuditEvent.objects.filter(target_type="audience", target_ref=str(frozen.pk))
    assert sorted(e.details["change"] for e in changes) == ["created", "frozen"]


def test_it_keeps_the_frozen_members_when_the_segment_changes_later(marketer):
    people = make_people(11)
    audience = frozen_audience(marketer)
    audience.segment.rules = {
        "op": "and",
        "rules": [{"field": "identity:country", "operator": "eq", "value": "FR"}],
    }
    audience.segment.save()

    assert set(members_of(audience)) == {c.pk for c in people}
    with pytest.raises(AudienceDefinitionError, match="frozen already"):
        audience_freeze(audience=audience, by=marketer)


def test_it_cuts_the_top_n_by_score_with_ranks(marketer, scored):
    people, scoring = scored

    audience = frozen_audience(marketer, scoring_run=scoring, cut=AudienceCut("top_n", 5))

    assert members_of(audience) == [c.pk for c in reversed(people[-5:])]
    assert list(audience.members.order_by("rank").values_list("rank", flat=True)) == [1, 2, 3, 4, 5]
    top = audience.members.get(rank=1)
    assert top.score == 0.9
    assert top.why == "In segment “Everyone”, top 5 by score of “Term deposit · conversion”"


@pytest.mark.parametrize("sample", [3, 20_000])
def test_a_rank_cut_counts_the_same_ranked_once_or_as_a_subquery(
    marketer, scored, monkeypatch, sample
):
    """A rank cut no larger than the sample is ranked once and counted by its ids; a larger
    one stays a subquery: the same counts either way."""
    people, scoring = scored
    monkeypatch.setattr(audience_selectors, "READINESS_SAMPLE", sample)

    raw = audience_selectors.audience_readiness(
        members=audience_candidates(rules={}, scoring_run=scoring, cut=AudienceCut("top_n", 5)),
        formats=["generic_csv"],
    )

    assert raw["size"] == 5


def test_it_cuts_the_top_percent_rounding_up(marketer, scored):
    people, scoring = scored

    audience = frozen_audience(
        marketer, scoring_run=scoring, cut=AudienceCut("top_percent", 12)
    )  # 12% of 20 = 2.4

    assert members_of(audience) == [people[-1].pk, people[-2].pk, people[-3].pk]


def test_it_cuts_at_a_score_threshold(marketer, scored):
    people, scoring = scored

    audience = frozen_audience(marketer, scoring_run=scoring, cut=AudienceCut("threshold", 0.8))

    assert set(members_of(audience)) == {c.pk for c in people[-3:]}  # 0.81, 0.855, 0.9
    assert min(audience.members.values_list("score", flat=True)) >= 0.8


def test_it_keeps_unscored_members_when_there_is_no_cut(marketer, scored):
    people, scoring = scored
    unscored = make_people(2)

    audience = frozen_audience(marketer, scoring_run=scoring)

    assert audience.size == 22
    assert audience.members.get(customer=unscored[0]).score is None
    assert audience.members.get(customer=people[-1]).rank == 1


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (AudienceCut("top_n", 0), "whole number"),
        (AudienceCut("top_n", 2.5), "whole number"),
        (AudienceCut("top_percent", 150), "percentage"),
        (AudienceCut("threshold", 1.5), "between 0 and 1"),
        (AudienceCut("threshold", None), "needs a value"),
        (AudienceCut("sideways", 1), "Unknown cut"),
    ],
)
def test_it_refuses_cuts_that_make_no_sense(marketer, scored, cut, message):
    _, scoring = scored
    with pytest.raises(AudienceDefinitionError, match=message):
        audience_create(
            name="x", segment=everyone_segment(), scoring_run=scoring, cut=cut, by=marketer
        )
    assert not Audience.objects.exists()


def test_it_needs_a_finished_scoring_run_for_a_score_cut(marketer, scored):
    _, scoring = scored
    segment = everyone_segment()
    with pytest.raises(AudienceDefinitionError, match="needs a scoring run"):
        audience_create(name="x", segment=segment, cut=AudienceCut("top_n", 3), by=marketer)
    Job.objects.filter(pk=scoring.job_id).update(status=Job.Status.RUNNING)
    scoring.job.refresh_from_db()
    with pytest.raises(AudienceDefinitionError, match="finished scoring run"):
        audience_create(name="x", segment=segment, scoring_run=scoring, by=marketer)


def test_it_refuses_a_segment_whose_rules_no_longer_compile(marketer):
    segment = everyone_segment()
    segment.rules = {"op": "and", "rules": [{"field": "attr:gone", "operator": "eq", "value": 1}]}
    with pytest.raises(SegmentRuleError):
        audience_create(name="x", segment=segment, by=marketer)


def test_it_previews_consent_and_match_readiness_for_each_platform(marketer, settings):
    settings.MIN_GROUP_SIZE = 1  # exact counts (only zero is hidden), to check each of them
    make_people(10, country="US")  # email, phone and full address
    make_people(4, country="DE", purposes=GOOGLE_PURPOSES)  # no phone (helper: US only)
    make_people(3, country="FR")  # no Google consents
    make_people(2, withdrawn=True)
    make_people(1, suppressed=True)
    make_people(2, identity=False)  # nothing to match on

    preview = audience_preview(members=audience_candidates(rules={}))

    assert preview["size"] == 22 and not preview["suppressed"]
    by_format = {row["format"]: row for row in preview["formats"]}
    google = by_format["google_customer_match"]
    assert google["exportable"] == 22 - 2 - 1 - 5
    assert google["left_out"] == {
        "no_record": None,
        "denied": None,
        "withdrawn": 2,
        "expired": None,
        "suppressed": 1,
        "google_consent": 3 + 2,
    }
    assert (google["email"], google["phone"], google["address"], google["matchable"]) == (
        14,
        10,
        14,
        14,
    )
    tiktok = by_format["tiktok_customer_file"]
    assert tiktok["exportable"] == 19 and tiktok["address"] is None
    assert (tiktok["email"], tiktok["phone"], tiktok["matchable"]) == (17, 10, 17)
    generic = by_format["generic_csv"]
    assert generic["email"] is None and generic["matchable"] == generic["exportable"] == 19
    assert not any(row["estimated"] for row in preview["formats"])


def test_it_estimates_readiness_from_a_sample_of_large_audiences(marketer, monkeypatch):
    make_people(30)
    monkeypatch.setattr(audience_selectors, "READINESS_SAMPLE", 10)

    preview = audience_preview(
        members=audience_candidates(rules={}), formats=["meta_custom_audience"]
    )

    row = preview["formats"][0]
    assert row["estimated"] and row["email"] == row["matchable"] == 30


def test_members_without_an_identity_are_counted_not_read(marketer, monkeypatch):
    """They can match nothing: only the identity holders are read (here fewer than the
    sample), so the counts stay exact however many members have no identity."""
    make_people(22, identity=False)
    make_people(15)
    monkeypatch.setattr(audience_selectors, "READINESS_SAMPLE", 20)

    raw = audience_selectors.audience_readiness(
        members=audience_candidates(rules={}), formats=["meta_custom_audience", "generic_csv"]
    )

    assert not raw["sampled"] and raw["size"] == 37
    meta = raw["formats"]["meta_custom_audience"]
    assert (meta["seen"], meta["email"], meta["matchable"]) == (37, 15, 15)
    assert raw["formats"]["generic_csv"]["seen"] == 37


def test_it_hides_every_count_of_a_small_audience(marketer, settings):
    settings.MIN_GROUP_SIZE = 10
    make_people(4)

    preview = audience_preview(members=audience_candidates(rules={}))

    assert preview["suppressed"] and preview["size"] is None
    assert all(row["exportable"] is None and row["email"] is None for row in preview["formats"])


def test_it_previews_the_frozen_members_not_the_current_segment(marketer):
    make_people(10)
    audience = frozen_audience(marketer)
    make_people(5)

    preview = audience_preview(members=audience_customers(audience), formats=["generic_csv"])

    assert preview["size"] == 10


def test_it_keeps_a_suppression_list_with_an_audit_trail(steward):
    customer = make_people(1)[0]

    suppression = suppression_add(customer=customer, reason="complaint", by=steward)
    again = suppression_add(customer=customer, reason="twice", by=steward)
    assert again.pk == suppression.pk and again.reason == "complaint"
    suppression_remove(suppression=suppression, by=steward)

    assert not Suppression.objects.exists()
    changes = AuditEvent.objects.filter(
        target_ref=customer.pseudonym, action=AuditEvent.Action.CONSENT_CHANGE
    )
    assert sorted(e.details["change"] for e in changes) == ["suppressed", "unsuppressed"]


def _warnings(preview) -> dict[str, list[str]]:
    return {row["format"]: row["warnings"] for row in preview["formats"]}


def test_it_warns_when_an_audience_is_under_a_platforms_minimum(marketer, settings):
    settings.MIN_GROUP_SIZE = 1
    settings.PLATFORM_MIN_MATCHED = {"Google Ads": 1000, "Meta": 10, "TikTok": 1000}
    make_people(12, country="US")

    warnings = _warnings(audience_preview(members=audience_candidates(rules={})))

    [tiktok] = warnings["tiktok_customer_file"]
    assert tiktok.startswith("Below TikTok's minimum: TikTok serves an uploaded audience once")
    assert (
        "about 1,000 people match, and only 12 of the 12 who may go have an email or phone "
        "it can match" in tiktok
    )
    # Meta's minimum is met, but not at the low end of match rates (12 x 30 % < 10).
    [meta] = warnings["meta_custom_audience"]
    assert meta.startswith("May fall short of Meta's minimum")
    assert "Aim for 34 or more" in meta
    assert warnings["generic_csv"] == []  # no platform to match on


def test_it_warns_when_many_who_may_go_have_nothing_to_match(marketer, settings):
    settings.MIN_GROUP_SIZE = 1
    settings.PLATFORM_MIN_MATCHED = {"Meta": 1}
    settings.LOW_MATCH_RATE = 1.0
    make_people(3, country="US")
    make_people(5, identity=False)

    warnings = _warnings(audience_preview(members=audience_candidates(rules={})))

    assert warnings["meta_custom_audience"] == [
        "5 of the 8 members who may go have no email, phone or full address that Meta can "
        "match, so they will not be reached."
    ]
    assert warnings["tiktok_customer_file"] == []  # no minimum set for it here


def test_it_warns_about_an_audience_too_small_to_show(marketer, settings):
    settings.MIN_GROUP_SIZE = 10
    make_people(4)

    warnings = _warnings(audience_preview(members=audience_candidates(rules={})))

    assert "this audience is too small to show" in warnings["meta_custom_audience"][0]


def test_it_says_why_members_who_may_go_cannot_be_matched(marketer, settings):
    settings.MIN_GROUP_SIZE = 10
    make_people(12, identity=False)  # consented, but no email or phone

    warnings = _warnings(audience_preview(members=audience_candidates(rules={})))

    [meta] = warnings["meta_custom_audience"]
    # 12 shown as 10: counts are rounded to the minimum group size.
    assert "of the 10 members who may go, too few to show (perhaps none) have an email, " in meta
