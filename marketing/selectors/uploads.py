"""What an upload shows to a user: previews and error files with identifiers masked.

Uploaded rows may hold contact data. Pages and the API both read previews and error files
through here, so a user without the ``view_pii`` permission never sees a raw identifier.
"""

import csv
import io
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

from marketing.exporters.csvsafe import SafeCSVWriter, escape_cell, unescape_cell
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


def errors_for_user(errors: list[dict[str, Any]], upload: Upload, user) -> list[dict[str, Any]]:
    """Row problems with identifier values masked unless ``user`` may see PII.

    An import stores its problems masked already ("masked": true); for a user who may see
    PII their values are read back from the error file. A dry run's problems are never
    stored and come here with the values as read.
    """
    if can_view_pii(user):
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
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        filed = {
            (row["row"], row["column"]): unescape_cell(row["value"])
            for row in islice(reader, len(errors))
        }
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


def preview_for_user(preview: dict[str, Any], upload: Upload, user) -> dict[str, Any]:
    """The dry-run preview with identifier values masked unless ``user`` may see PII."""
    if can_view_pii(user):
        return preview
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
        column_at, value_at = header.index("column"), header.index("value")
        for row in reader:
            target = columns.get(row[column_at])
            if target:
                row[value_at] = mask_value(target, row[value_at])
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def error_file_for_user(upload: Upload, user) -> IO[bytes] | Iterator[str]:
    """The upload's error CSV: the stored file, or its rows with identifier values masked
    when ``user`` may not see PII."""
    columns = identifier_columns(upload)
    if can_view_pii(user) or not columns:
        return upload.error_file.open("rb")
    return _masked_error_rows(upload.error_file.open("rb"), columns)
