import pytest

from marketing.selectors.training import top_percent_estimate

# 100 scores: 10 in [0, 0.1), 20 in [0.1, 0.2), 30 in [0.2, 0.3), 40 in [0.3, 0.4].
DISTRIBUTION = {"count": 100, "edges": [0.0, 0.1, 0.2, 0.3, 0.4], "counts": [10, 20, 30, 40]}


@pytest.mark.parametrize(
    ("score", "top"),
    [
        (0.35, 20),  # half of the top bar (40) lies above: 20 of 100
        (0.36125, 16),  # 15.5 of 100 lie above: the score is within the top 16 %
        (0.2, 70),  # the two top bars lie wholly above
        (0.25, 55),  # half of the 30 and all of the 40
        (0.05, 95),  # half of the lowest bar and the 90 above it
        (0.0, 100),
    ],
)
def test_it_estimates_the_top_percent_from_the_histogram(score, top):
    assert top_percent_estimate(DISTRIBUTION, score) == top


def test_it_puts_the_highest_score_in_the_top_percent_not_the_top_zero():
    assert top_percent_estimate(DISTRIBUTION, 0.4) == 1
    assert top_percent_estimate(DISTRIBUTION, 0.9) == 1


def test_it_gives_no_rank_for_a_run_that_scored_nobody():
    assert top_percent_estimate({"count": 0}, 0.5) is None
    assert top_percent_estimate({}, 0.5) is None


def test_it_refuses_a_histogram_whose_edges_do_not_fit_its_bars():
    with pytest.raises(ValueError, match="4 bars but 4 edges"):
        top_percent_estimate({**DISTRIBUTION, "edges": [0.0, 0.1, 0.2, 0.3]}, 0.1)
