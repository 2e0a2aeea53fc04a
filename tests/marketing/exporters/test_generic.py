import csv
import io
import json

from marketing.exporters import generic
from marketing.exporters.base import Member


def test_it_writes_pseudonyms_and_scores_as_csv():
    out = io.StringIO()

    generic.write_csv([Member("p1", 0.1234567), Member("p2", None)], out)

    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["pseudonym", "score"],
        ["p1", "0.123457"],
        ["p2", ""],
    ]


def test_it_writes_pseudonyms_and_scores_as_a_json_array():
    out = io.StringIO()

    result = generic.write_json([Member("p1", 0.5), Member("p2", None)], out)

    assert json.loads(out.getvalue()) == [
        {"pseudonym": "p1", "score": 0.5},
        {"pseudonym": "p2", "score": None},
    ]
    assert result.rows == 2


def test_it_writes_an_empty_json_array_for_no_members():
    out = io.StringIO()
    generic.write_json([], out)
    assert json.loads(out.getvalue()) == []
