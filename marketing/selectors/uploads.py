"""What an upload shows to a user: previews and error files with identifiers masked.

Uploaded rows may hold contact data. Pages and the API both read previews and error files
through here, so a user without the ``view_pii`` permission never sees a raw identifier of
someone else's upload (the person who uploaded a file sees what they uploaded, so they can
recognise and correct a bad value).
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import IO, Any

from marketing.exporters.csvsafe import SafeCSVWriter, escape_cell, unescape_cell
from marketing.ingest.fields import ERROR_FILE_LEAD
from marketing.ingest.rows import problem_message
from marketing.models import Upload
from marketing.pii import MASKED_FIELDS, mask_value
from marketing.roles import can_view_pii


def identifier_columns(upload: Upload) -> dict[str, str]:
    """Source header -> identity field, for the columns mapped to personal identifiers."""
    return {
        header: target
        for target, header in upload.mapping.items()
        if header and target in MASKED_FIELDS
    }


def sees_values(upload: Upload, user) -> bool:
    """Whether ``user`` sees the upload's identifiers as uploaded: with the PII permission,
    or as the person who uploaded the file."""
    return can_view_pii(user) or (
        upload.created_by_id is not None and upload.created_by_id == getattr(user, "pk", None)
    )


def errors_for_user(errors: list[dict[str, Any]], upload: Upload, user) -> list[dict[str, Any]]:
    """Row problems with identifier values masked unless ``user`` may see them.

    Imports and dry runs keep their problems masked ("masked": true); for a user who may
    see the values they are read back from the error file.
    """
    if sees_values(upload, user):
        return _with_filed_values(errors, upload)
    columns = identifier_columns(upload)
    shown = []
    for error in errors:
        target = columns.get(error.get("column", ""))
        if target and error.get("value") and not error.get("masked"):
            value = mask_value(target, error["value"])
            error = {
                **error,
                "value": value,
                "masked": True,
                "message": problem_message(
                    error["row"], error["line"], error["column"], value, error["reason"]
                ),
            }
        shown.append(error)
    return shown


def _with_filed_values(errors: list[dict[str, Any]], upload: Upload) -> list[dict[str, Any]]:
    """Masked problems with their values from the error file, whose first rows they are."""
    if not upload.error_file or not any(error.get("masked") for error in errors):
        return errors
    with upload.error_file.open("rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        header = next(reader, [])
        filed = _filed_values(header, islice(reader, len(errors)))
    shown = []
    for error in errors:
        value = filed.get((str(error["row"]), escape_cell(error["column"])))
        if error.get("masked") and value is not None:
            error = {
                **error,
                "value": value,
                "masked": False,
                "message": problem_message(
                    error["row"], error["line"], error["column"], value, error["reason"]
                ),
            }
        shown.append(error)
    return shown


def _filed_values(header: list[str], rows: Iterable[list[str]]) -> dict[tuple[str, str], str]:
    """(row number, column as filed) -> value as uploaded, from an error file's rows: one
    line per row with its cells after ERROR_FILE_LEAD, or (files of earlier versions) one
    line per problem with its column and value."""
    if tuple(header[: len(ERROR_FILE_LEAD)]) == ERROR_FILE_LEAD:
        lead = len(ERROR_FILE_LEAD)
        columns = header[lead:]
        return {
            (row[0], column): unescape_cell(cell)
            for row in rows
            for column, cell in zip(columns, row[lead:], strict=False)
        }
    column_at, value_at = header.index("column"), header.index("value")
    return {(row[0], row[column_at]): unescape_cell(row[value_at]) for row in rows}


def preview_for_user(preview: dict[str, Any], upload: Upload, user) -> dict[str, Any]:
    """The dry-run preview with identifier values masked unless ``user`` may see them."""
    if sees_values(upload, user):
        return {**preview, "errors": _with_filed_values(preview["errors"], upload)}
    sample = [
        {field: mask_value(field, value) for field, value in row.items()}
        for row in preview["sample"]
    ]
    return {**preview, "errors": errors_for_user(preview["errors"], upload, user), "sample": sample}


def _masked_error_rows(raw: IO[bytes], columns: dict[str, str]) -> Iterator[str]:
    # The file holds column names as written to it: escaped where they look like formulas.
    columns = {escape_cell(header): target for header, target in columns.items()}
    buffer = io.StringIO()
    writer = SafeCSVWriter(buffer)
    with raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        header = next(reader, [])
        writer.writerow(header)
        mask = _row_masker(header, columns)
        for row in reader:
            writer.writerow(mask(row))
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _row_masker(header: list[str], columns: dict[str, str]) -> Callable[[list[str]], list[str]]:
    """Masks an error file row's identifiers: the cells under identifier columns (one line
    per row), or the value of a problem in an identifier column (earlier versions)."""
    if tuple(header[: len(ERROR_FILE_LEAD)]) == ERROR_FILE_LEAD:
        cells = [(i, columns[h]) for i, h in enumerate(header) if h in columns]

        def mask_cells(row: list[str]) -> list[str]:
            for index, target in cells:
                if index < len(row) and row[index]:
                    row[index] = mask_value(target, unescape_cell(row[index]))
            return row

        return mask_cells
    column_at, value_at = header.index("column"), header.index("value")

    def mask_problem(row: list[str]) -> list[str]:
        target = columns.get(row[column_at])
        if target:
            row[value_at] = mask_value(target, row[value_at])
        return row

    return mask_problem


def error_file_for_user(upload: Upload, user) -> IO[bytes] | Iterator[str]:
    """The upload's error CSV: the stored file, or its rows with identifier values masked
    when ``user`` may not see PII."""
    columns = identifier_columns(upload)
    if sees_values(upload, user) or not columns:
        return upload.error_file.open("rb")
    return _masked_error_rows(upload.error_file.open("rb"), columns)
