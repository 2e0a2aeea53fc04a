"""The one CSV writer of the product: no cell can smuggle a formula into a spreadsheet
(CWE-1236).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by spreadsheet programs; such a cell gets a leading ``'`` so it stays text. Every CSV
the product writes for people to download (platform exports, error files, score downloads)
goes through ``SafeCSVWriter`` or ``csv_lines``. Escaping is idempotent: an escaped cell starts
with ``'`` and passes through again unchanged, so a file can be read and rewritten.
"""

import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unescape_cell(text: str) -> str:
    """The value ``escape_cell`` was given, from the cell it wrote."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


class SafeCSVWriter:
    """``csv.writer`` with every cell escaped; lines end with ``\\r\\n`` (RFC 4180)."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, cells: Iterable[Any]) -> Any:
        """Write one row; returns what ``out.write`` returned."""
        return self._writer.writerow([escape_cell(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows([escape_cell(cell) for cell in row] for row in rows)


class _LineSink:
    """A file whose ``write`` hands the text back, so each row comes out as a string."""

    def write(self, text: str) -> str:
        return text


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one escaped CSV line, for a streamed response."""
    writer = SafeCSVWriter(_LineSink())  # type: ignore[arg-type]
    for row in rows:
        yield writer.writerow(row)
