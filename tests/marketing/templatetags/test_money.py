import math

import pytest

from marketing.templatetags.money import percent, percent_text


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (0.123, "12%"),
        (0.2, "20%"),
        (0.0, "0%"),
        (0.01, "1%"),
        (0.0031, "0.31%"),
        (0.005, "0.5%"),
        (-0.5, "-50%"),
        (12.5, "1,250%"),
    ],
)
def test_it_writes_shares_as_whole_percentages_and_small_ones_with_two_digits(share, text):
    assert percent_text(share) == text


@pytest.mark.parametrize("share", [None, math.nan, math.inf, -math.inf])
def test_it_shows_a_dash_for_a_missing_or_undefined_share(share):
    assert percent_text(share) == "—"


def test_it_is_the_percent_filter_of_the_pages():
    assert percent(0.0031) == percent_text(0.0031)
