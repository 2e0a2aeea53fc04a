"""Pseudonym and score, for any other system: no personal identifier leaves in these files."""

import json
from collections.abc import Iterable
from typing import TextIO

from marketing.exporters.base import Member, WriteResult
from marketing.exporters.csvsafe import SafeCSVWriter

CSV_HEADERS = ["pseudonym", "score"]


def _score(score: float | None) -> float | None:
    return None if score is None else round(score, 6)


def write_csv(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(CSV_HEADERS)
    for pseudonym, score, *_identity in members:
        score = _score(score)
        writer.writerow([pseudonym, "" if score is None else f"{score:.6f}"])
        result.rows += 1
    return result


def write_json(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    """A JSON array of ``{"pseudonym", "score"}``, written one member at a time."""
    result = result if result is not None else WriteResult()
    out.write("[")
    for written, (pseudonym, score, *_identity) in enumerate(members):
        out.write(",\n" if written else "\n")
        out.write(json.dumps({"pseudonym": pseudonym, "score": _score(score)}))
        result.rows += 1
    out.write("\n]\n")
    return result
