import numpy as np
import pandas as pd

from recengine.serialize import SerializeConfig, TextSerializer


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [41, 25, 60, np.nan],
            "job": ["technician", "admin.", None, "student"],
            "marital": ["married", "single", "married", "single"],
            "click": [1, 0, 0, 1],
        }
    )


def test_it_writes_marketer_field_names_in_the_configured_order():
    config = SerializeConfig(fields=["job", "age"], numeric_text="round")
    texts = TextSerializer(config).fit(_frame()).texts(_frame())
    assert texts[0] == "job technician | age 41"


def test_it_skips_missing_values_and_excluded_columns():
    config = SerializeConfig(exclude=["click"], numeric_text="round")
    texts = TextSerializer(config).fit(_frame()).texts(_frame())
    assert texts[2] == "age 60 | marital married"
    assert texts[3] == "job student | marital single"


def test_it_shows_a_value_alone_when_its_label_is_empty():
    config = SerializeConfig(fields=["marital", "job"], labels={"marital": "", "job": "work"})
    texts = TextSerializer(config).fit(_frame()).texts(_frame())
    assert texts[0] == "married | work technician"


def test_it_bins_numbers_into_quantile_words():
    frame = pd.DataFrame({"age": np.arange(100)})
    serializer = TextSerializer(SerializeConfig(n_bins=5)).fit(frame)
    assert serializer.texts(frame.iloc[[0, 50, 99]]) == ["age lowest", "age mid", "age highest"]


def test_it_rounds_numbers_to_significant_digits_without_exponents():
    frame = pd.DataFrame({"euribor": [4.857], "employed": [5191.0], "calls": [3]})
    texts = TextSerializer(SerializeConfig(numeric_text="round")).fit(frame).texts(frame)
    assert texts == ["euribor 4.9 | employed 5200 | calls 3"]


def test_it_leaves_omitted_numbers_to_the_standardised_numeric_tower():
    serializer = TextSerializer(SerializeConfig(exclude=["click"], numeric_text="omit"))
    serializer.fit(_frame())
    assert serializer.texts(_frame())[0] == "job technician | marital married"
    matrix = serializer.numeric_matrix(_frame())
    assert matrix.shape == (4, 1) and matrix.dtype == np.float32
    assert abs(matrix[:3, 0].mean()) < 0.5 and matrix[3, 0] == 0.0  # missing -> mean


def test_it_appends_the_offer_and_recent_interactions():
    frame = pd.DataFrame(
        {
            "job": ["student"],
            "title": ["Toy Story"],
            "genres": ["animation comedy"],
            "recent": [["Heat", "Fargo", "Alien", "Up"]],
        }
    )
    config = SerializeConfig(
        fields=["job"],
        offer_fields=["title", "genres"],
        history_field="recent",
        history_items=2,
        labels={"title": "movie"},
    )
    text = TextSerializer(config).fit(frame).texts(frame)[0]
    assert text == "job student | recent Alien, Up || movie Toy Story | genres animation comedy"


def test_it_restores_a_fitted_serializer_from_its_state():
    serializer = TextSerializer(SerializeConfig(exclude=["click"])).fit(_frame())
    restored = TextSerializer.from_state(serializer.config, serializer.state())
    assert restored.texts(_frame()) == serializer.texts(_frame())


def test_it_encodes_numbers_piecewise_linearly_over_quantile_bins():
    frame = pd.DataFrame({"calls": np.arange(101, dtype=float)})
    config = SerializeConfig(numeric_text="omit", numeric_encoding="piecewise", piecewise_bins=4)
    serializer = TextSerializer(config).fit(frame)
    matrix = serializer.numeric_matrix(pd.DataFrame({"calls": [0.0, 30.0, 100.0, np.nan]}))
    assert serializer.n_numeric == matrix.shape[1] == 1 + 4
    np.testing.assert_allclose(matrix[0, 1:], [0, 0, 0, 0])
    np.testing.assert_allclose(matrix[1, 1:], [1, 0.2, 0, 0])  # 30 is 5 into the 25-50 bin
    np.testing.assert_allclose(matrix[2, 1:], [1, 1, 1, 1])
    np.testing.assert_allclose(matrix[3, 1:], [0.5] * 4)  # missing: no information


def test_it_flags_sentinel_values_and_keeps_them_out_of_the_scale():
    frame = pd.DataFrame({"pdays": [3.0, 6.0, 999.0, 999.0]})
    config = SerializeConfig(numeric_text="omit", sentinels={"pdays": 999})
    serializer = TextSerializer(config).fit(frame)
    matrix = serializer.numeric_matrix(frame)
    assert serializer.means_["pdays"] == 4.5
    np.testing.assert_allclose(matrix[:, -1], [0, 0, 1, 1])
    assert matrix[2, 0] == 0.0  # the sentinel counts as missing: the mean, standardised


def test_it_restores_the_piecewise_encoding_from_its_saved_state():
    frame = pd.DataFrame({"calls": np.arange(50, dtype=float), "pdays": [999.0] * 25 + [2.0] * 25})
    config = SerializeConfig(
        numeric_text="omit", numeric_encoding="piecewise", sentinels={"pdays": 999}
    )
    serializer = TextSerializer(config).fit(frame)
    restored = TextSerializer.from_state(config, serializer.state())
    np.testing.assert_array_equal(restored.numeric_matrix(frame), serializer.numeric_matrix(frame))


def test_it_finds_a_not_applicable_code_and_flags_it_instead_of_binning_it():
    import numpy as np
    import pandas as pd

    from recengine.serialize import SerializeConfig, TextSerializer, find_sentinel

    rng = np.random.default_rng(0)
    days = np.where(rng.random(500) < 0.9, 999, rng.integers(0, 28, 500)).astype(float)
    assert find_sentinel(days) == 999.0
    # An amount whose most common value is ordinary is left alone.
    assert find_sentinel(rng.integers(0, 50, 500).astype(float)) is None
    frame = pd.DataFrame({"pdays": days, "job": ["admin"] * 500})
    serializer = TextSerializer(
        SerializeConfig(numeric_text="omit", numeric_encoding="piecewise", detect_sentinels=True)
    ).fit(frame)
    assert serializer.config.sentinels == {"pdays": 999.0}
    matrix = serializer.numeric_matrix(frame)
    # The flag column says "never contacted" exactly where the code was.
    assert (matrix[:, -1] == (days == 999)).all()
