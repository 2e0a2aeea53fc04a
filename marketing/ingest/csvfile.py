"""Reading uploaded CSV files: encoding, delimiter, header and shape checks, then a
streaming row reader that knows each row's number and line."""

import codecs
import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.utils.translation import gettext_noop

from marketing.ingest import IngestError
from marketing.ingest.wording import (
    CSV_HEADER,
    CSV_LINE,
    HEADER_BLANK,
    HEADER_NUL,
    HEADER_TWICE,
    NOT_ENCODED,
    NUL_ROW,
    NUL_ROW_COLUMN,
    RAGGED,
    RAGGED_MORE,
    RAGGED_ROW,
    TOO_MANY_COLUMNS,
    UNKNOWN_ENCODING,
    WHERE_BYTE,
    WHERE_LINE,
)

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {
    ",": gettext_noop("comma"),
    ";": gettext_noop("semicolon"),
    "\t": gettext_noop("tab"),
    "|": gettext_noop("pipe (|)"),
}
# Rows kept from the start of the file to guess column types and show a sample.
SAMPLE_ROWS = 1000
_SNIFF_BYTES = 64 * 1024
_RAGGED_SHOWN = 3

csv.field_size_limit(10 * 1024 * 1024)


@dataclass
class FileShape:
    encoding: str
    delimiter: str
    headers: list[str]
    row_count: int
    sample: list[list[str]] = field(default_factory=list)

    def column(self, header: str) -> list[str]:
        index = self.headers.index(header)
        return [row[index] for row in self.sample]


def clean_encoding(encoding: str | None) -> str:
    """The canonical codec name for an encoding the user chose (default UTF-8)."""
    if not encoding:
        return "utf-8"
    try:
        return codecs.lookup(encoding.strip()).name
    except LookupError:
        raise IngestError(UNKNOWN_ENCODING % {"encoding": encoding}) from None


def _python_codec(encoding: str) -> str:
    # A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first header.
    return "utf-8-sig" if encoding == "utf-8" else encoding


@contextmanager
def text_stream(binary: IO[bytes], encoding: str) -> Iterator[IO[str]]:
    """A text view of an open binary file that leaves the file open afterwards."""
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=_python_codec(encoding), newline="")
    try:
        yield text
    finally:
        text.detach()


def inspect_file(binary: IO[bytes], *, encoding: str, max_columns: int) -> FileShape:
    """Check a whole file before it is accepted; raises IngestError naming the problem."""
    binary.seek(0)
    head = binary.read(_SNIFF_BYTES)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and not encoding.startswith("utf-16"):
        raise IngestError(
            gettext_noop(
                "The file is saved as UTF-16 (Excel's 'Unicode text'). Save it as 'CSV UTF-8' "
                "or choose the encoding utf-16 when uploading."
            )
        )
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise IngestError(gettext_noop("The file is empty."))
    delimiter = detect_delimiter(head.decode(_python_codec(encoding), errors="replace"))
    try:
        return _read_shape(binary, encoding=encoding, delimiter=delimiter, max_columns=max_columns)
    except UnicodeDecodeError as exc:
        raise IngestError(_decode_error_message(binary, encoding, exc)) from None


def detect_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | that splits the first lines into the most columns
    consistently (a comma wins ties, so a one-column file reads as comma separated)."""
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off by the sample size
    best, best_score = ",", (False, 1)
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(lines[:50], delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        consistent = all(len(row) == width for row in rows)
        score = (consistent and width > 1, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_shape(binary: IO[bytes], *, encoding: str, delimiter: str, max_columns: int) -> FileShape:
    with text_stream(binary, encoding) as text:
        lines = _NulWatch(text)
        reader = csv.reader(lines, delimiter=delimiter)
        headers = _read_header(reader, max_columns)
        width = len(headers)
        rows = 0
        sample: list[list[str]] = []
        ragged: list[str] = []
        ragged_count = 0
        try:
            line = reader.line_num + 1
            for row_no, record in enumerate(reader, start=1):
                if lines.seen:
                    raise IngestError(nul_message(row_no, line, headers, record))
                if record:
                    rows += 1
                    if len(record) != width:
                        ragged_count += 1
                        if len(ragged) < _RAGGED_SHOWN:
                            ragged.append(
                                RAGGED_ROW % {"row": row_no, "line": line, "count": len(record)}
                            )
                    elif len(sample) < SAMPLE_ROWS:
                        sample.append(record)
                line = reader.line_num + 1
        except csv.Error as exc:
            raise IngestError(CSV_LINE % {"line": reader.line_num, "error": exc}) from None
    if rows == 0:
        raise IngestError(gettext_noop("The file has a header row but no data rows."))
    if ragged:
        raise IngestError(
            (RAGGED_MORE if ragged_count > len(ragged) else RAGGED)
            % {
                "width": width,
                "ragged": "; ".join(ragged),
                "more": ragged_count - len(ragged),
                "delimiter": DELIMITER_NAMES[delimiter],
            }
        )
    return FileShape(
        encoding=encoding, delimiter=delimiter, headers=headers, row_count=rows, sample=sample
    )


def _read_header(reader, max_columns: int) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise IngestError(CSV_HEADER % {"error": exc}) from None
    if header is None:
        raise IngestError(gettext_noop("The file is empty."))
    if not header:
        raise IngestError(
            gettext_noop("The first line of the file is blank; put the header on line 1.")
        )
    if len(header) > max_columns:
        raise IngestError(
            TOO_MANY_COLUMNS % {"count": f"{len(header):,}", "limit": f"{max_columns:,}"}
        )
    headers = [name.strip() for name in header]
    for position, name in enumerate(headers, start=1):
        if NUL in name:
            raise IngestError(HEADER_NUL % {"position": position})
    seen: dict[str, int] = {}
    for position, name in enumerate(headers, start=1):
        if not name:
            raise IngestError(HEADER_BLANK % {"position": position})
        key = name.casefold()
        if key in seen:
            raise IngestError(
                HEADER_TWICE % {"name": name, "position": seen[key], "second": position}
            )
        seen[key] = position
    return headers


def _decode_error_message(binary: IO[bytes], encoding: str, exc: UnicodeDecodeError) -> str:
    binary.seek(0)
    codec = _python_codec(encoding)
    for line_no, raw in enumerate(binary, start=1):
        try:
            raw.decode(codec)
        except UnicodeDecodeError as line_exc:
            bad = raw[line_exc.start : line_exc.end].hex(" ").upper()
            where = WHERE_LINE % {
                "line": line_no,
                "hex": bad,
                "position": line_exc.start + 1,
            }
            break
    else:
        where = WHERE_BYTE % {"position": exc.start + 1}
    return NOT_ENCODED % {"encoding": encoding.upper(), "where": where}


NUL = "\x00"


class _NulWatch:
    """The lines of a text file, noting whether one held a NUL character.

    A NUL is no text: PostgreSQL refuses it in a text column and other programs cut the
    value at it. One ``in`` per line costs little next to splitting the line into fields.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.seen = False

    def __iter__(self) -> "_NulWatch":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if NUL in line:
            self.seen = True
        return line


def nul_message(row: int, line: int, headers: list[str], fields: list[str]) -> str:
    """Where the first NUL character of a row is, and what to do about it."""
    columns = [
        headers[i] if i < len(headers) else f"column {i + 1}"
        for i, cell in enumerate(fields)
        if NUL in cell
    ]
    params = {"row": row, "line": line, "column": columns[0] if columns else ""}
    return (NUL_ROW_COLUMN if columns else NUL_ROW) % params


Record = tuple[int, int, list[str]]


def iter_records(binary: IO[bytes], *, encoding: str, delimiter: str) -> Iterator[Record]:
    """(row number, line number, fields) for every non-blank data row, streaming.

    A row with a NUL character raises IngestError (files are checked for them at upload;
    this guards files stored before that check)."""
    with text_stream(binary, encoding) as text:
        lines = _NulWatch(text)
        reader = csv.reader(lines, delimiter=delimiter)
        headers = next(reader)
        line = reader.line_num + 1
        for row_no, record in enumerate(reader, start=1):
            if lines.seen:
                raise IngestError(nul_message(row_no, line, headers, record))
            if record:
                yield row_no, line, record
            line = reader.line_num + 1


def guess_foreign_delimiter(header: str) -> str | None:
    """A character that probably separates the columns of a header we could not split."""
    counts = {ch: header.count(ch) for ch in ":~^#/ " if header.count(ch)}
    return max(counts, key=counts.__getitem__) if counts else None


def rewrite_stored_rows(
    path: Path,
    *,
    encoding: str,
    delimiter: str,
    rewrite: Callable[[int, list[str]], list[str] | None],
) -> bool:
    """Rewrite a stored upload row by row: ``rewrite(row_no, cells)`` gives the new cells, or
    None for an empty line (the row keeps its number, which error files refer to); the header
    stays. The new file is written beside the old one and swapped in by a rename, so a failure
    leaves the old one whole. Returns False, and leaves the file untouched, when no row changed.

    The stored upload is the user's own input, read again by the importer and never offered for
    download, so its cells are written as they are: escaping formula characters (as the safe
    writer does for every file people open) would change the values a re-import reads.
    """
    codec = "utf-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else encoding
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    changed = False
    try:
        with (
            os.fdopen(fd, "w", encoding=codec, newline="") as out,
            path.open("rb") as binary,
            text_stream(binary, encoding) as text,
        ):
            reader = csv.reader(text, delimiter=delimiter)
            writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
            header = next(reader, None)
            if header is not None:
                writer.writerow(header)
            for row_no, record in enumerate(reader, start=1):
                cells = rewrite(row_no, record)
                changed = changed or cells != record
                if cells is None:
                    out.write("\r\n")
                else:
                    writer.writerow(cells)
    except BaseException:
        os.unlink(tmp)
        raise
    if changed:
        os.replace(tmp, path)
    else:
        os.unlink(tmp)
    return changed


def blank_columns(path: Path, *, encoding: str, delimiter: str, columns: set[int]) -> None:
    """Rewrite a stored CSV with the cells of ``columns`` empty in every data row; the
    header and every other cell, row and row number stay."""
    rewrite_stored_rows(
        path,
        encoding=encoding,
        delimiter=delimiter,
        rewrite=lambda _, record: ["" if i in columns else c for i, c in enumerate(record)],
    )
