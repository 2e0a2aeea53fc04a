import csv
import io

import pytest

from marketing.exporters import generic, google, meta, tiktok
from marketing.exporters.base import Member
from marketing.exporters.csvsafe import SafeCSVWriter, csv_lines, escape_cell, unescape_cell


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_it_escapes_cells_that_a_spreadsheet_would_run(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "1=1", "", None, 0.5, "a-b"])
def test_it_leaves_other_cells_alone(value):
    assert escape_cell(value) == ("" if value is None else str(value))


@pytest.mark.parametrize("value", ["=1+1", "-2", "@x", "plain", "'quoted", ""])
def test_it_gives_back_the_value_it_escaped(value):
    assert unescape_cell(escape_cell(value)) == value
    assert escape_cell(escape_cell(value)) == escape_cell(value)


def test_it_streams_escaped_lines():
    assert list(csv_lines([["id", "=HYPERLINK(1)"], ["a,b", "-3"]])) == [
        "id,'=HYPERLINK(1)\r\n",
        '"a,b",\'-3\r\n',
    ]


def test_it_escapes_every_cell_the_csv_writer_writes():
    out = io.StringIO()
    SafeCSVWriter(out).writerow(["=cmd|' /C calc'!A0", "ok"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=cmd|' /C calc'!A0", "ok"]


def test_it_escapes_plain_cells_in_the_google_file():
    hostile = Member("p", None, "a@example.com", None, "Jane", "Doe", "DE", "=HYPERLINK(1)")
    out = io.StringIO()
    google.write([hostile], out)
    assert list(csv.reader(io.StringIO(out.getvalue())))[1][-1] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("write", [generic.write_csv, meta.write_csv, tiktok.write])
def test_it_never_lets_a_cell_start_a_formula_in_any_csv(write):
    hostile = Member("=1+1", 0.5, "a@example.com", "+1 202 555 0100", "-x", "@y", "US", "+1")
    out = io.StringIO()
    write([hostile], out)
    cells = [cell for row in csv.reader(io.StringIO(out.getvalue())) for cell in row]
    assert cells and not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
