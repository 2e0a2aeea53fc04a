"""Log filters that keep personal data out of the server log."""

import logging
import re
from typing import Any

# A query string in a request line or URL: from "?" to the next space or quote.
_QUERY = re.compile(r"\?[^\s\"']*")


def without_query_strings(text: str) -> str:
    """``GET /customers/?q=C-123 HTTP/1.1`` -> ``GET /customers/ HTTP/1.1``."""
    return _QUERY.sub("", text)


class DropQueryStrings(logging.Filter):
    """Removes query strings from a record's message and arguments (runserver's request
    lines, gunicorn's access atoms, ``django.request`` warnings). Searches and API filters
    put external ids and e-mail addresses there, and a log cannot be erased afterwards."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = without_query_strings(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _clean(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(value) for value in record.args)
        return True


def _clean(value: Any) -> Any:
    return without_query_strings(value) if isinstance(value, str) else value
