"""CSV writing that cannot smuggle formulas into a spreadsheet (CWE-1236).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by spreadsheet programs; such a cell gets a leading ``'`` so it stays text. Every CSV
the exporters write goes through ``SafeCSVWriter``.
"""

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeCSVWriter:
    """``csv.writer`` with every cell escaped; lines end with ``\\r\\n`` (RFC 4180)."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([escape_cell(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows([escape_cell(cell) for cell in row] for row in rows)
