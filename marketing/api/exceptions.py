"""The API's answer to an ``ApplicationError``: its status and message, like DRF's own errors."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from marketing.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ``ApplicationError``: ``{"detail": message}`` with the error's
    status, or ``{field: [message]}`` (``"detail"`` for ``"__all__"``) when it names fields."""
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(application_error_data(exc), status=exc.status_code)
    return drf_exception_handler(exc, context)


def application_error_data(exc: ApplicationError) -> dict[str, Any]:
    if not exc.errors:
        return {"detail": str(exc)}
    return {
        ("detail" if field == "__all__" else field): [message]
        for field, message in exc.errors.items()
    }
