"""Masks what imports stored before identifier values were masked there.

Problems kept on uploads and import jobs quoted the refused cell as it was, also from columns
of personal identifiers, and so did the messages built from them (job message and error, the
upload's failure). Those values are masked as new imports mask them. A failed job's error
held a traceback: it becomes the kind of error with the job's message, as new jobs keep it.
Masking cannot be undone: going back leaves the rows as they are.
"""

import re
from typing import Any

from django.db import migrations

from marketing.ingest.rows import problem_message
from marketing.pii import MASKED_FIELDS, mask_value

TRACEBACK = "Traceback (most recent call last)"
# The line naming the exception after the frames: "ValueError: ..." or "pkg.Error: ...".
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _identifiers(mapping: dict[str, str]) -> dict[str, str]:
    return {header: target for target, header in (mapping or {}).items()
            if header and target in MASKED_FIELDS}


def _masked_problems(problems: list[dict[str, Any]], identifiers: dict[str, str],
                     quoted: dict[str, str]) -> list[dict[str, Any]]:
    """The problems with identifier values masked; ``quoted`` collects raw -> masked."""
    kept = []
    for problem in problems:
        if "masked" in problem:
            kept.append(problem)
            continue
        field = identifiers.get(problem.get("column", ""))
        value = problem.get("value", "")
        if field and value:
            masked = mask_value(field, value)
            quoted[value] = masked
            problem = {**problem, "value": masked, "masked": True, "message": problem_message(
                problem["row"], problem["line"], problem["column"], masked, problem["reason"])}
        else:
            problem = {**problem, "masked": False}
        kept.append(problem)
    return kept


def _unquoted(text: str, quoted: dict[str, str]) -> str:
    """Messages quote a value as '<value>'."""
    for raw, masked in quoted.items():
        text = text.replace(f"'{raw}'", f"'{masked}'")
    return text


def _readable_error(error: str, message: str) -> str:
    if not error.startswith(TRACEBACK):
        return error
    kind = "Error"
    for line in error.splitlines():
        if line and not line.startswith((" ", TRACEBACK, "During handling", "The above")):
            if match := _EXCEPTION_LINE.match(line):
                kind = match.group(1).rsplit(".", 1)[-1]
    return f"{kind}: {message}"


def scrub(apps, schema_editor) -> None:
    Job = apps.get_model("marketing", "Job")
    Upload = apps.get_model("marketing", "Upload")
    for upload in Upload.objects.select_related("job").iterator(chunk_size=500):
        quoted: dict[str, str] = {}
        identifiers = _identifiers(upload.mapping)
        summary = dict(upload.summary or {})
        if summary.get("errors"):
            summary["errors"] = _masked_problems(summary["errors"], identifiers, quoted)
        job = upload.job
        result = dict(job.result or {}) if job is not None else {}
        if result.get("errors"):
            result["errors"] = _masked_problems(result["errors"], identifiers, quoted)
        if summary.get("error"):
            summary["error"] = _unquoted(summary["error"], quoted)
        Upload.objects.filter(pk=upload.pk).update(summary=summary)
        if job is not None:
            message = _unquoted(job.message, quoted)
            Job.objects.filter(pk=job.pk).update(
                message=message, result=result,
                error=_readable_error(_unquoted(job.error, quoted), message),
            )
    for job in Job.objects.filter(error__startswith=TRACEBACK).iterator(chunk_size=500):
        Job.objects.filter(pk=job.pk).update(error=_readable_error(job.error, job.message))


class Migration(migrations.Migration):

    dependencies = [
        ("marketing", "0007_consent_filter_index_without_grants"),
    ]

    operations = [
        migrations.RunPython(scrub, migrations.RunPython.noop, elidable=True),
    ]
