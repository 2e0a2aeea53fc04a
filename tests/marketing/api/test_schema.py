import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_it_generates_a_valid_openapi_schema_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(tmp_path / "schema.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr
    schema = (tmp_path / "schema.yml").read_text()
    for path in ("/api/customers/{id}/erase/", "/api/customers/{id}/portability/",
                 "/api/segments/preview/", "/api/jobs/{id}/cancel/"):
        assert path in schema


@pytest.mark.django_db
def test_it_serves_the_schema_and_docs_to_logged_in_users_only(client, viewer):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(viewer)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
