"""Schemathesis against the project's own OpenAPI schema, on the audience and export endpoints.

The app is called in-process through WSGI, authenticated as a marketer with an API token. The
checks: no server error and every response matches the schema. Examples are few per operation
so that it stays well under a minute.
"""

from contextlib import contextmanager

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error, response_schema_conformance

from marketing.services.audiences import audience_create
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12
JSON = "application/json"


@contextmanager
def connection_kept_between_requests():
    """Django closes the connection at the end of a request, which would end the test's
    transaction; its test client does the same as this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(cases, headers: dict[str, str], codes: set[int]) -> None:
    @given(case=cases)
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(headers=headers)
        codes.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()


def test_it_finds_no_server_error_and_no_response_outside_the_schema(marketer):
    cache.clear()  # throttle counts
    make_people(12)
    audience = frozen_audience(marketer)
    export = exported(audience, "generic_csv", marketer)
    draft = audience_create(name="draft", segment=audience.segment, by=marketer)
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=marketer)[1]}"}
    # Besides random values, cases that reach existing objects.
    existing = {
        "/api/audiences/{id}/": {"path_parameters": {"id": audience.pk}},
        "/api/audiences/{id}/preview/": {"path_parameters": {"id": audience.pk}},
        "/api/audiences/{id}/freeze/": {"path_parameters": {"id": draft.pk}},
        "/api/exports/{id}/": {"path_parameters": {"id": export.pk}},
        "/api/exports/{id}/download/": {"path_parameters": {"id": export.pk}},
        "/api/exports/": {"body": {"audience": audience.pk, "platform": "generic_json"},
                          "media_type": JSON},
        "/api/audiences/": {"body": {"segment": audience.segment_id, "name": "x"},
                            "media_type": JSON},
        "/api/audiences/preview/": {"body": {"segment": audience.segment_id},
                                    "media_type": JSON},
    }
    statuses: dict[str, set[int]] = {}

    with connection_kept_between_requests():
        schema = schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json", get_wsgi_application(), headers=headers
        ).include(path_regex=r"^/api/(audiences|exports)/")
        for result in schema.get_all_operations():
            operation = result.ok()

            strategies = [operation.as_strategy()]
            if operation.path in existing:
                strategies.append(operation.as_strategy(**existing[operation.path]))
            codes = statuses.setdefault(operation.label, set())
            fuzz(st.one_of(strategies), headers, codes)

    assert {"POST /api/exports/", "GET /api/exports/{id}/download/",
            "POST /api/audiences/preview/", "POST /api/audiences/{id}/freeze/"} <= set(statuses)
    succeeded = {label for label, codes in statuses.items() if any(c < 300 for c in codes)}
    assert len(succeeded) >= 10, statuses
