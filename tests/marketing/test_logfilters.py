"""The server log never gets query strings: searches and API filters carry external ids."""

import io
import logging

from marketing.logfilters import DropQueryStrings


def request_line(args) -> logging.LogRecord:
    return logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', args, None)


def test_it_drops_the_query_string_from_a_request_line():
    record = request_line(("GET /customers/?q=C-0042&consent=profiling HTTP/1.1", "200", "512"))

    assert DropQueryStrings().filter(record)
    assert record.getMessage() == '"GET /customers/ HTTP/1.1" 200 512'


def test_it_keeps_a_request_line_without_a_query_string():
    record = request_line(("POST /api/customers/7/erase/ HTTP/1.1", "200", "80"))

    DropQueryStrings().filter(record)
    assert record.getMessage() == '"POST /api/customers/7/erase/ HTTP/1.1" 200 80'


def test_it_drops_query_strings_from_named_arguments():
    record = logging.LogRecord("access", logging.INFO, __file__, 1, "%(r)s from %(f)s", None, None)
    record.args = {
        "r": "GET /api/customers/?external_id=C-0042 HTTP/1.1",
        "f": "https://studio.example/customers/?q=C-0042",
    }

    DropQueryStrings().filter(record)
    assert record.getMessage() == (
        "GET /api/customers/ HTTP/1.1 from https://studio.example/customers/"
    )


def test_runserver_request_lines_reach_the_log_without_query_strings():
    logger = logging.getLogger("django.server")
    buffer = io.StringIO()
    handlers = [h for h in logger.handlers if h.get_name() == "django.server"]
    assert handlers, "runserver's handler is configured in settings.LOGGING"
    previous = handlers[0].setStream(buffer)
    try:
        logger.info('"%s" %s %s', "GET /customers/?q=C-0042 HTTP/1.1", "200", "512")
    finally:
        handlers[0].setStream(previous)

    assert '"GET /customers/ HTTP/1.1" 200 512' in buffer.getvalue()
    assert "C-0042" not in buffer.getvalue()
