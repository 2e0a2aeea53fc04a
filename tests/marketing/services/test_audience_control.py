"""Control groups: a reproducible random share of a frozen audience, stratified by score,
held back from every export and compared with the contacted members afterwards."""

import csv
from datetime import date, timedelta

import numpy as np
import pytest
from django.utils import timezone

from marketing.models import (
    Audience,
    AudienceMember,
    Customer,
    ExportExclusion,
    Interaction,
    Job,
    Purpose,
)
from marketing.pseudonyms import pseudonym_for
from marketing.selectors.audiences import (
    audience_customers,
    audience_member_sample,
    customer_exports,
    exports_holding,
)
from marketing.services import audiences as audience_services
from marketing.services.audience_results import AudienceResultsError, audience_results_start
from marketing.services.audiences import control_group
from marketing.services.exports import export_file
from marketing.services.jobs import run_job
from recengine.control import assign_control
from tests.factories import make_offer
from tests.marketing.services.audience_helpers import (
    everyone_segment,
    exported,
    frozen_audience,
    make_people,
)
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db


def people(n: int, prefix: str = "CTRL") -> list[Customer]:
    """``n`` customers with fixed ids (so fixed pseudonyms and draws, whatever ran before)."""
    Customer.objects.bulk_create(
        [
            Customer(external_id=f"{prefix}{i:05d}", pseudonym=pseudonym_for(f"{prefix}{i:05d}"))
            for i in range(n)
        ]
    )
    return list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))


def held_back(audience: Audience) -> set[str]:
    return set(audience.members.filter(in_control=True).values_list("pseudonym", flat=True))


def scored_audience(by, n: int, *, percent: float = 20, seed: int = 7) -> Audience:
    """An audience of ``n`` customers ranked by distinct scores, with a control group."""
    customers = people(n, prefix="SCORED")
    add_consent(customers, Purpose.AD_TARGETING, Purpose.PROFILING)
    scoring = finished_scoring(finished_run(make_offer(price=40), by=by), customers, by=by)
    return frozen_audience(by, scoring_run=scoring, control_percent=percent, control_seed=seed)


# ---- who is held back -----------------------------------------------------------------------


def test_it_holds_back_the_same_members_for_the_same_seed_and_others_for_another(marketer):
    people(2000)
    segment = everyone_segment()

    first = frozen_audience(marketer, segment=segment, control_percent=20, control_seed=11)
    again = frozen_audience(marketer, segment=segment, control_percent=20, control_seed=11)
    other = frozen_audience(marketer, segment=segment, control_percent=20, control_seed=12)

    assert held_back(first) == held_back(again)
    assert held_back(first) != held_back(other)
    assert first.control_size == len(held_back(first))
    assert first.size == 2000 and first.control_share == 0.2 and first.control_seed == 11
    assert abs(first.control_size / first.size - 0.2) <= 0.01
    assert abs(other.control_size / other.size - 0.2) <= 0.01


def test_it_picks_and_keeps_a_seed_when_none_is_given(marketer):
    people(50)
    segment = everyone_segment()

    audience = frozen_audience(marketer, segment=segment, control_percent=10)

    assert audience.control_seed is not None
    again = frozen_audience(
        marketer, segment=segment, control_percent=10, control_seed=audience.control_seed
    )
    assert held_back(again) == held_back(audience)


def test_it_holds_back_the_share_in_every_score_decile(marketer):
    audience = scored_audience(marketer, 1000)

    ranks = audience.members.order_by("rank").values_list("in_control", flat=True)
    deciles = np.array(ranks).reshape(10, 100).sum(axis=1)

    assert audience.control_size == 200
    assert list(deciles) == [20] * 10


def test_an_audience_within_one_block_is_drawn_as_the_engine_draws_it(marketer):
    audience = scored_audience(marketer, 300, percent=15, seed=3)

    rows = list(audience.members.values_list("pseudonym", "score"))
    control = assign_control([p for p, _ in rows], np.array([s for _, s in rows]), 0.15, 3)

    assert held_back(audience) == {p for (p, _), held in zip(rows, control, strict=True) if held}


def test_a_large_audience_is_drawn_in_blocks_stratified_and_reproducible(marketer, monkeypatch):
    # Blocks of 64 stand for blocks of 10,000 in a freeze of millions.
    monkeypatch.setattr(audience_services, "CONTROL_BLOCK", 64)
    first = scored_audience(marketer, 1000)
    again = frozen_audience(
        marketer,
        segment=first.segment,
        scoring_run=first.scoring_run,
        control_percent=20,
        control_seed=7,
    )

    ranks = first.members.order_by("rank").values_list("in_control", flat=True)
    deciles = np.array(ranks).reshape(10, 100).sum(axis=1)

    assert held_back(first) == held_back(again)
    assert abs(first.control_size - 200) <= 5
    assert all(abs(held - 20) <= 4 for held in deciles), deciles


def test_unscored_members_of_a_scored_audience_are_drawn_too(marketer):
    customers = make_people(40, purposes=(Purpose.AD_TARGETING, Purpose.PROFILING))
    unscored = people(400, prefix="NOSCORE")
    scoring = finished_scoring(finished_run(make_offer(), by=marketer), customers, by=marketer)

    audience = frozen_audience(marketer, scoring_run=scoring, control_percent=25, control_seed=5)

    no_score = audience.members.filter(score__isnull=True)
    assert no_score.count() == len(unscored)
    assert 60 <= no_score.filter(in_control=True).count() <= 140
    assert audience.members.filter(score__isnull=False, in_control=True).count() == 10


@pytest.mark.parametrize(
    "percent, seed, field",
    [
        (60, None, "control_percent"),
        (-5, None, "control_percent"),
        (float("nan"), None, "control_percent"),
        (None, 4, "control_seed"),
        (10, -1, "control_seed"),
        (10, 2**31, "control_seed"),
    ],
)
def test_it_refuses_a_control_group_that_makes_no_sense(percent, seed, field):
    with pytest.raises(audience_services.AudienceDefinitionError) as refused:
        control_group(percent=percent, seed=seed)
    assert list(refused.value.errors) == [field]


def test_no_share_means_no_control_group(marketer):
    people(30)

    audience = frozen_audience(marketer, control_percent=0)

    assert audience.control_share is None and audience.control_size == 0
    assert not audience.members.filter(in_control=True).exists()


# ---- never exported -------------------------------------------------------------------------


def test_the_control_group_never_reaches_an_export(marketer):
    make_people(300)
    audience = frozen_audience(marketer, control_percent=30, control_seed=9)
    control = held_back(audience)

    export = exported(audience, "generic_csv", marketer)
    hashed = exported(audience, "meta_custom_audience_csv", marketer)
    with open(export_file(export), newline="") as file:
        written = {row["pseudonym"] for row in csv.DictReader(file)}

    assert control and not written & control
    assert written == set(
        audience.members.filter(in_control=False).values_list("pseudonym", flat=True)
    )
    assert export.row_count == audience.size - audience.control_size == 300 - len(control)
    assert hashed.row_count == export.row_count
    assert not ExportExclusion.objects.filter(pseudonym__in=control).exists()
    assert export.consent_snapshot["members"] == export.row_count
    assert audience.consent_snapshot["members"] == export.row_count
    assert audience.consent_snapshot["held_back"] == len(control)


def test_readers_of_the_members_leave_the_control_group_out(marketer):
    make_people(60)
    audience = frozen_audience(marketer, control_percent=50, control_seed=2)
    exported(audience, "generic_csv", marketer)
    member = audience.members.filter(in_control=True).select_related("customer").first()

    assert not audience_customers(audience).filter(pk=member.customer_id).exists()
    assert not customer_exports(member.customer).exists()
    assert not exports_holding(member.pseudonym).exists()
    assert not any(m.in_control for m in audience_member_sample(audience, limit=100))


def test_the_export_keeps_its_consent_gate_for_the_contacted(marketer):
    make_people(40)
    make_people(40, withdrawn=True)
    audience = frozen_audience(marketer, control_percent=25, control_seed=1)

    export = exported(audience, "generic_csv", marketer)

    contacted = audience.members.filter(in_control=False)
    withdrawn = contacted.filter(customer__external_id__in=_withdrawn_ids()).count()
    assert export.row_count == contacted.count() - withdrawn
    assert export.left_out["withdrawn"] == withdrawn


def _withdrawn_ids() -> list[str]:
    return list(
        Customer.objects.filter(consents__status="withdrawn").values_list("external_id", flat=True)
    )


# ---- results --------------------------------------------------------------------------------


def _respond(customers, offer, kind: str, at) -> None:
    Interaction.objects.bulk_create(
        [Interaction(customer_id=c, offer=offer, kind=kind, occurred_at=at) for c in customers]
    )


def _measure(audience: Audience, by, **inputs) -> Audience:
    job = audience_results_start(audience=audience, by=by, **inputs)
    run_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.message
    audience.refresh_from_db()
    return audience


def test_it_measures_a_known_lift_from_responses_after_the_freeze(marketer):
    audience = scored_audience(marketer, 2000)
    offer = audience.scoring_run.training_run.offer
    other_offer = make_offer()
    contacted = list(
        audience.members.filter(in_control=False)
        .order_by("pk")
        .values_list("customer_id", flat=True)
    )
    control = list(
        audience.members.filter(in_control=True)
        .order_by("pk")
        .values_list("customer_id", flat=True)
    )
    after = audience.frozen_at + timedelta(days=2)
    before = audience.frozen_at - timedelta(days=3)
    converted_contacted = contacted[: round(0.10 * len(contacted))]
    converted_control = control[: round(0.05 * len(control))]
    _respond(converted_contacted + converted_control, offer, "conversion", after)
    # None of these count: before the freeze, another offer, or only a click.
    _respond(contacted[-300:] + control[-100:], offer, "conversion", before)
    _respond(contacted[-300:] + control[-100:], other_offer, "conversion", after)
    _respond(contacted[-300:] + control[-100:], offer, "click", after)

    audience = _measure(audience, marketer, cost_per_contact=1.0)

    results = audience.results
    treated, held = results["treated"], results["control"]
    assert (treated["members"], treated["responded"]) == (len(contacted), len(converted_contacted))
    assert (held["members"], held["responded"]) == (len(control), len(converted_control))
    lift = results["lift"]
    low, high = lift["lift_interval"]
    assert low < 0.05 < high and abs(lift["lift"] - 0.05) < 0.005
    assert lift["conclusive"] and not results["too_few"]
    assert lift["incremental_conversions"] == pytest.approx(lift["lift"] * len(contacted))
    # The offer's price is the value per conversion unless one is given.
    assert results["value_per_conversion"] == 40 and results["cost_per_contact"] == 1.0
    assert lift["incremental_profit"] == pytest.approx(
        40 * lift["incremental_conversions"] - len(contacted)
    )
    assert results["offer"] == offer.pk and results["response"] == "conversion"
    assert results["minimum_detectable_lift"] > 0 and results["job"]


def test_it_counts_clicks_too_for_a_click_model_and_stops_at_the_end_date(marketer):
    customers = make_people(200, purposes=(Purpose.AD_TARGETING, Purpose.PROFILING))
    offer = make_offer()
    run = finished_run(offer, by=marketer, target="click")
    scoring = finished_scoring(run, customers, by=marketer)
    audience = frozen_audience(marketer, scoring_run=scoring, control_percent=20, control_seed=4)
    ids = list(audience.members.filter(in_control=False).values_list("customer_id", flat=True))
    soon = audience.frozen_at + timedelta(hours=1)
    _respond(ids[:10], offer, "click", soon)
    _respond(ids[10:20], offer, "click", audience.frozen_at + timedelta(days=30))

    # Ends on the day of the first responses (the freeze's day, or the next one when it was
    # frozen in the last hour of a day).
    audience = _measure(audience, marketer, until=timezone.localdate(soon))

    assert audience.results["response"] == "click"
    assert audience.results["treated"]["responded"] == 10


def test_erased_members_are_left_out_of_both_groups(marketer):
    people(200)
    audience = frozen_audience(marketer, control_percent=20, control_seed=6)
    erased = audience.members.filter(in_control=True).first()
    Customer.objects.filter(pk=erased.customer_id).delete()

    audience = _measure(audience, marketer)

    assert audience.results["control"]["erased"] == 1
    assert audience.results["control"]["members"] == audience.control_size - 1
    assert audience.results["treated"]["erased"] == 0


def test_a_small_campaign_is_too_small_to_tell(marketer):
    people(40)
    audience = frozen_audience(marketer, control_percent=25, control_seed=8)
    ids = list(audience.members.values_list("customer_id", flat=True))
    _respond(ids[:3], make_offer(), "conversion", audience.frozen_at + timedelta(days=1))

    audience = _measure(audience, marketer)

    assert audience.results["too_few"] and not audience.results["lift"]["conclusive"]


def test_it_refuses_to_measure_without_a_control_group_or_with_bad_inputs(marketer):
    people(30)
    without = frozen_audience(marketer, name="Without")
    audience = frozen_audience(
        marketer, segment=without.segment, control_percent=20, control_seed=1
    )

    with pytest.raises(AudienceResultsError):
        audience_results_start(audience=without, by=marketer)
    with pytest.raises(AudienceResultsError) as refused:
        audience_results_start(
            audience=audience, value_per_conversion=-1, until=date(2000, 1, 1), by=marketer
        )
    assert set(refused.value.errors) == {"value_per_conversion", "until"}
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_RESULTS).exists()


def test_a_second_measure_while_one_runs_returns_it(marketer):
    people(30)
    audience = frozen_audience(marketer, control_percent=20, control_seed=1)

    first = audience_results_start(audience=audience, by=marketer)
    second = audience_results_start(audience=audience, by=marketer)

    assert first.pk == second.pk


def test_it_draws_the_control_group_in_bounded_blocks(marketer, monkeypatch):
    import recengine.control as engine

    blocks = []

    def counted(keys, scores, share, seed):
        blocks.append(len(keys))
        return engine_draw(keys, scores, share, seed)

    engine_draw = engine.assign_control
    monkeypatch.setattr(engine, "assign_control", counted)
    monkeypatch.setattr(audience_services, "CONTROL_BLOCK", 50)
    people(230)

    audience = frozen_audience(marketer, control_percent=20, control_seed=1)

    assert max(blocks) <= 50 and sum(blocks) == 230
    assert audience.control_size == AudienceMember.objects.filter(in_control=True).count() > 0
