"""The deployment files say what the app does: docker/.env.example names every setting the
settings read, and docker/compose.yml migrates once before anything starts, checks each
long-running service's health and does not force HTTPS on a plain local run. (Their syntax:
hadolint and the compose schema, in ./dev lint.)"""

import os
import re
import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [ROOT / "marketing" / "settings.py", ROOT / "marketing" / "settings_production.py"]
SETTING_READ = re.compile(r'(?:env\.\w+|_retention_days)\(\s*"([A-Z][A-Z0-9_]+)"')


def _settings_read() -> set[str]:
    return {name for path in SETTINGS for name in SETTING_READ.findall(path.read_text())}


def _example_names() -> set[str]:
    text = (ROOT / "docker" / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())


def test_the_env_example_names_every_setting():
    read = _settings_read()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "RETENTION_DAYS_UPLOADS"} <= read
    assert read - _example_names() == set()


def test_compose_migrates_once_before_the_app_and_workers_start():
    services = _compose()["services"]
    assert "manage.py migrate" in services["migrate"]["command"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat", "gpu-worker"):
        waits = services[name]["depends_on"]
        assert waits["migrate"] == {"condition": "service_completed_successfully"}, name
        assert waits["bucket"] == {"condition": "service_completed_successfully"}, name
        assert waits["db"] == {"condition": "service_healthy"}, name
        assert "migrate" not in str(services[name].get("command", "")), name


def test_compose_checks_the_health_of_every_long_running_service():
    services = _compose()["services"]
    for name in ("db", "redis", "minio", "web", "worker", "gpu-worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_compose_does_not_force_https_on_a_plain_local_run():
    environment = _compose()["x-app"]["environment"]
    assert environment["SECURE_SSL_REDIRECT"].endswith(":-false}")
    assert environment["SECURE_COOKIES"].endswith(":-false}")
    assert "TLS proxy" in (ROOT / "docker" / "compose.yml").read_text()


def test_compose_keeps_the_apps_files_in_its_object_store():
    compose = _compose()
    environment = compose["x-app"]["environment"]
    assert environment["FILE_STORE_URL"].startswith("${FILE_STORE_URL:-s3://campaign-studio/")
    assert "minio" in environment["S3_ENDPOINT_URL"]
    assert "store/campaign-studio" in " ".join(compose["services"]["bucket"]["entrypoint"])


def test_the_web_server_runs_with_its_config_file(monkeypatch):
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY docker/gunicorn.conf.py ./" in dockerfile
    assert 'CMD ["gunicorn", "marketing.wsgi", "--config", "gunicorn.conf.py"]' in dockerfile
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    # The config sets the master's environment: a copy here, this process's left alone.
    monkeypatch.setattr(
        os,
        "environ",
        {k: v for k, v in os.environ.items() if k not in {*names, "WEB_CONCURRENCY"}},
    )

    config = runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))

    # The access log names the path, never the query string (it can hold an e-mail address).
    assert "%(U)s" in config["access_log_format"]
    assert not {"%(q)s", "%(r)s", "%(f)s", "%(a)s"} & set(
        re.findall(r"%\(\w+\)s", config["access_log_format"])
    )
    # Numeric libraries compute on the request's thread only, in every worker it forks.
    assert [os.environ[name] for name in names] == ["1", "1", "1"]
    # A worker per core the server may use, unless WEB_CONCURRENCY says otherwise.
    assert config["workers"] == len(os.sched_getaffinity(0))
    os.environ["WEB_CONCURRENCY"] = "5"
    assert runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))["workers"] == 5
    # Where the system cannot tell which cores the process may use (macOS): all of them.
    del os.environ["WEB_CONCURRENCY"]
    monkeypatch.delattr(os, "sched_getaffinity")
    assert runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))["workers"] == os.cpu_count()


class _Log:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, text, *args):
        self.lines.append(("info", text % args))

    def exception(self, text, *args):
        self.lines.append(("exception", text % args))


def test_a_web_worker_loads_the_next_best_offers_model_and_freezes_what_it_loaded(monkeypatch):
    import gc
    from types import SimpleNamespace

    from marketing.services import next_best_offers

    config = runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))
    worker = SimpleNamespace(log=_Log())
    monkeypatch.setattr(next_best_offers, "warm_up", lambda: ["conversion"])
    try:
        config["post_worker_init"](worker)
        assert worker.log.lines == [("info", "Next best offers ready for: conversion")]
        assert gc.get_freeze_count() > 0

        # A database not up yet: said in the log, and the worker starts all the same.
        def down():
            raise ConnectionError("database down")

        monkeypatch.setattr(next_best_offers, "warm_up", down)
        config["post_worker_init"](worker)
        assert worker.log.lines[-1][0] == "exception"
    finally:
        gc.unfreeze()
