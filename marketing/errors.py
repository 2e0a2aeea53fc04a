"""The one base of the errors services raise for the person who asked.

A service raises a subclass of ``ApplicationError`` whose message is worded for the marketer;
pages show it next to the form and the API answers it with ``status_code`` (400 unless the
subclass says otherwise) through ``marketing.api.exceptions.exception_handler``.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """A request the application cannot carry out as asked; the message says why.

    ``errors`` maps a field name to what is wrong with it (``"__all__"`` for the request as a
    whole) where the error belongs to fields; otherwise it is empty and the message is all.
    """

    # HTTP status the API answers with.
    status_code: int = 400

    def __init__(self, message: str = "", *, errors: dict[str, str] | None = None) -> None:
        self.errors: dict[str, str] = dict(errors or {})
        super().__init__(message or " ".join(self.errors.values()))
