import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_customer, record_consent

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_it_generates_a_valid_openapi_schema_without_warnings(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr
    schema = (tmp_path / "schema.yml").read_text()
    for path in (
        "/api/customers/{id}/erase/",
        "/api/customers/{id}/portability/",
        "/api/segments/preview/",
        "/api/jobs/{id}/cancel/",
    ):
        assert path in schema


@pytest.mark.django_db
def test_it_serves_the_schema_and_docs_to_logged_in_users_only(client, viewer):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(viewer)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_it_documents_who_did_it_as_nullable(steward_client):
    """Rows made by an import or a deleted user name nobody; the schema says so."""
    record_consent(make_customer(), "profiling")
    assert steward_client.get("/api/consents/").json()["results"][0]["recorded_by"] is None
    schemas = steward_client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    for name, field in (
        ("ConsentRecord", "recorded_by"),
        ("Segment", "created_by"),
        ("Job", "created_by"),
        ("Upload", "created_by"),
    ):
        assert schemas[name]["properties"][field]["nullable"] is True, name
