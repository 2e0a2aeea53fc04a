"""Production settings: clean under ``check --deploy`` and refusing to start without secrets."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # A production process starts without the test run's escape hatches.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {**inherited, "DJANGO_SETTINGS_MODULE": "marketing.settings_production", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def random_secret() -> str:
    return secrets.token_urlsafe(64)[:50]


def test_it_passes_the_deploy_check_with_real_secrets():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=random_secret(),
        PSEUDONYM_KEY=random_secret(),
        SUPPRESSION_KEY=random_secret(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "PSEUDONYM_KEY", "SUPPRESSION_KEY"])
def test_it_refuses_to_start_without_a_secret(missing):
    env = {
        "DJANGO_SECRET_KEY": random_secret(),
        "PSEUDONYM_KEY": random_secret(),
        "SUPPRESSION_KEY": random_secret(),
        missing: "",
    }
    result = manage("check", **env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_it_refuses_the_development_defaults():
    result = manage(
        "check",
        DJANGO_SECRET_KEY="dev-only-insecure-key-change-me" * 2,
        PSEUDONYM_KEY=random_secret(),
        SUPPRESSION_KEY=random_secret(),
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_it_refuses_a_key_of_one_repeated_character():
    result = manage(
        "check",
        DJANGO_SECRET_KEY=random_secret(),
        PSEUDONYM_KEY="x" * 40,
        SUPPRESSION_KEY=random_secret(),
    )
    assert result.returncode != 0
    assert "PSEUDONYM_KEY" in result.stderr


def test_it_refuses_the_secret_key_as_pseudonym_key():
    key = random_secret()
    result = manage(
        "check", DJANGO_SECRET_KEY=key, PSEUDONYM_KEY=key, SUPPRESSION_KEY=random_secret()
    )
    assert result.returncode != 0
    assert "must differ" in result.stderr


def test_it_refuses_a_suppression_key_equal_to_the_pseudonym_key():
    key = random_secret()
    result = manage(
        "check", DJANGO_SECRET_KEY=random_secret(), PSEUDONYM_KEY=key, SUPPRESSION_KEY=key
    )
    assert result.returncode != 0
    assert "PSEUDONYM_KEY and SUPPRESSION_KEY must differ" in result.stderr
