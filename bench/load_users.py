"""Load benchmark: logged-in users clicking through the dashboard served by gunicorn with the
production settings, first on an idle server, then while a model trains.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/load_users.py [--users 50] [--duration 60]

Needs gunicorn (the ``prod`` extra). It creates its own database (``--database``, dropped at
the end unless ``--keep``), loads the demo data (41,188 customers) through the product's
service, makes ``--users`` users (marketers, data stewards and viewers in turn), collects the
static files and starts gunicorn on 127.0.0.1 with ``marketing.settings_production`` and fresh
random keys. The server thinks it sits behind a TLS proxy (``X-Forwarded-Proto: https``, as
the production settings expect), so secure cookies, HSTS and the CSRF referer check are on.

Each user logs in through the login form (CSRF token from the form); once every user has,
they all browse until the phase ends: a page their role may see, then 0.5-1.5 s of thought.
A page is an error unless it answers 200 (a redirect to the login form included) or it fails
to answer within 30 s.

The two phases, ``--duration`` seconds each: ``idle``, then ``training``, during which a
separate process (standing in for the Celery worker) trains click models back to back through
the product's ``training_run_create`` on a tiny BERT base (``--train-base packaged`` takes the
configured default). It prints one JSON document with p50/p95/p99 and errors per page and
phase, and the targets: no error in either phase, p95 under 300 ms on the idle server.
"""

import argparse
import json
import os
import random
import re
import runpy
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    drop_database,
    fresh_database,
    load_average,
    log,
    postgres_server_url,
)

P95_IDLE_TARGET_S = 0.3
REQUEST_TIMEOUT_S = 30
THINK_S = (0.5, 1.5)
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STOP_FILE = "stop-training"


# ---- one user ----------------------------------------------------------------------------------


@dataclass
class Samples:
    """Requests, latencies (s) and error notes per page, shared by a phase's user threads."""

    requests: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, page: str, seconds: float | None, error: str | None) -> None:
        with self.lock:
            self.requests[page] = self.requests.get(page, 0) + 1
            self.seconds.setdefault(page, [])
            self.errors.setdefault(page, [])
            if seconds is not None:
                self.seconds[page].append(seconds)
            if error is not None:
                self.errors[page].append(error)


class User:
    """One browser: its own cookies (kept by hand: the secure cookies of a server behind a
    TLS proxy would not be sent over plain HTTP by a cookie jar)."""

    def __init__(self, base: str, username: str, password: str, pages: list[tuple[str, str]]):
        self.base, self.username, self.password, self.pages = base, username, password, pages
        self.http = requests.Session()
        self.cookies: dict[str, str] = {}
        self.rng = random.Random(username)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            "X-Forwarded-Proto": "https",
            "Referer": f"https://{self.base.split('//', 1)[1]}{path}",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        response = self.http.request(
            method,
            self.base + path,
            headers=headers,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
            **kwargs,
        )
        for cookie in response.cookies:
            self.cookies[cookie.name] = cookie.value or ""
        return response

    def log_in(self, samples: Samples) -> bool:
        path = "/accounts/login/"
        try:
            started = time.perf_counter()
            form = self.request("GET", path)
            token = CSRF_FIELD.search(form.text)
            if form.status_code != 200 or token is None:
                samples.add("login", None, f"login form: HTTP {form.status_code}")
                return False
            answer = self.request(
                "POST",
                path,
                data={
                    "username": self.username,
                    "password": self.password,
                    "csrfmiddlewaretoken": token.group(1),
                },
            )
            seconds = time.perf_counter() - started
        except requests.RequestException as exc:
            samples.add("login", None, type(exc).__name__)
            return False
        if answer.status_code != 302 or "sessionid" not in self.cookies:
            samples.add("login", seconds, f"login: HTTP {answer.status_code}")
            return False
        samples.add("login", seconds, None)
        return True

    def browse(self, until: float, samples: Samples) -> None:
        while time.monotonic() < until:
            name, path = self.rng.choice(self.pages)
            try:
                started = time.perf_counter()
                response = self.request("GET", path)
                seconds = time.perf_counter() - started
            except requests.RequestException as exc:
                samples.add(name, None, type(exc).__name__)
            else:
                error = None
                if response.status_code != 200:
                    where = response.headers.get("Location", "")
                    error = f"HTTP {response.status_code} {where}".strip()
                samples.add(name, seconds, error)
            time.sleep(self.rng.uniform(*THINK_S))


def run_phase(base: str, users: list[tuple[str, str, list]], duration: float) -> dict[str, Any]:
    """All users log in (spread over two seconds; timed as "login"), then browse together for
    ``duration`` seconds: the pages are timed with every user logged in, not beside a burst of
    password checks, which hold a synchronous worker each for the hashing."""
    samples = Samples()
    start: dict[str, float] = {}
    logged_in = threading.Barrier(len(users), action=lambda: start.update(at=time.monotonic()))

    def one(username: str, password: str, pages: list) -> None:
        user = User(base, username, password, pages)
        time.sleep(user.rng.uniform(0, 2))
        ok = user.log_in(samples)
        try:
            logged_in.wait(timeout=len(users) * REQUEST_TIMEOUT_S)
        except threading.BrokenBarrierError:
            return
        if ok:
            user.browse(start["at"] + duration, samples)

    threads = [threading.Thread(target=one, args=user, daemon=True) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(len(users) * REQUEST_TIMEOUT_S + duration + 2 * REQUEST_TIMEOUT_S)
    return summarise(samples)


def summarise(samples: Samples) -> dict[str, Any]:
    pages = {}
    for name in sorted(samples.requests):
        seconds = sorted(samples.seconds[name])
        errors = samples.errors[name]
        pages[name] = {
            "requests": samples.requests[name],
            "errors": len(errors),
            "error_kinds": dict(sorted({e: errors.count(e) for e in set(errors)}.items())[:5]),
            "p50_ms": _percentile_ms(seconds, 50),
            "p95_ms": _percentile_ms(seconds, 95),
            "p99_ms": _percentile_ms(seconds, 99),
        }
    every = sorted(s for name, values in samples.seconds.items() if name != "login" for s in values)
    return {
        "pages": pages,
        "all_pages": {
            "requests": sum(n for name, n in samples.requests.items() if name != "login"),
            "p50_ms": _percentile_ms(every, 50),
            "p95_ms": _percentile_ms(every, 95),
            "p99_ms": _percentile_ms(every, 99),
        },
        "errors": sum(len(errors) for errors in samples.errors.values()),
    }


def _percentile_ms(sorted_seconds: list[float], percent: int) -> float | None:
    if not sorted_seconds:
        return None
    if len(sorted_seconds) == 1:
        return round(1000 * sorted_seconds[0], 1)
    cut = statistics.quantiles(sorted_seconds, n=100, method="inclusive")[percent - 1]
    return round(1000 * cut, 1)


# ---- the server and its data ------------------------------------------------------------------


def prepare(users: int) -> tuple[list[tuple[str, str, list]], dict[str, Any]]:
    """Migrate, collect static files, load the demo data, make the users; returns each user
    (name, password, pages) and what was loaded."""
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.contrib.auth.models import User as DjangoUser
    from django.core.management import call_command

    from marketing.models import Customer, Offer
    from marketing.roles import ALL_ROLES, DATA_STEWARD, MARKETER, VIEWER
    from marketing.services.demo import demo_data_load
    from marketing.services.segments import segment_create

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    owner = DjangoUser.objects.create_user("bench-owner")
    owner.groups.add(Group.objects.get(name=MARKETER))
    started = time.perf_counter()
    counts = demo_data_load(by=owner)
    loaded = {"customers": counts["customers"], "seconds": round(time.perf_counter() - started, 1)}
    segment = segment_create(
        name="Email consent",
        rules={
            "op": "and",
            "rules": [{"field": "consent:email_marketing", "operator": "has_consent"}],
        },
        by=owner,
    )
    customer = Customer.objects.order_by("pk").values_list("pk", flat=True)[100]
    common = [
        ("overview", "/"),
        ("customer_list", "/customers/"),
        ("customer_list_consent", "/customers/?consent=email_marketing"),
        ("customer_detail", f"/customers/{customer}/"),
        ("segment_list", "/segments/"),
        ("segment_detail", f"/segments/{segment.pk}/"),
        ("model_list", "/models/"),
        ("audience_list", "/audiences/"),
        ("export_list", "/exports/"),
        ("job_list", "/jobs/"),
    ]
    extra = {
        MARKETER: [("segment_builder", "/segments/new/"), ("audience_builder", "/audiences/new/")],
        DATA_STEWARD: [("upload_list", "/uploads/")],
        VIEWER: [],
    }
    made = []
    for i in range(users):
        role = ALL_ROLES[i % len(ALL_ROLES)]
        password = secrets.token_urlsafe(16)
        user = DjangoUser.objects.create_user(f"bench-user-{i:02d}", password=password)
        user.groups.add(Group.objects.get(name=role))
        made.append((user.username, password, common + extra[role]))
    loaded["offers"] = Offer.objects.count()
    return made, loaded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workers: int | None, threads: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        raise SystemExit("gunicorn is missing: install the prod extra (pip install -e '.[prod]')")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "marketing.wsgi",
            # The Dockerfile's settings, with this run's address and workers.
            "--config",
            str(ROOT / "docker" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            *(["--workers", str(workers)] if workers else []),
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                f"gunicorn stopped: {server.stderr.read()[-3000:] if server.stderr else ''}"
            )
        try:
            answer = requests.get(
                f"http://127.0.0.1:{port}/accounts/login/",
                headers={"X-Forwarded-Proto": "https"},
                timeout=5,
            )
            if answer.status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


# ---- the training worker ----------------------------------------------------------------------


def train_worker(folder: Path, base: str) -> None:
    """Train click models one after another, each as the product's job (inline in this
    process, as a Celery worker runs it), until the stop file appears; each run's figures go
    to runs.jsonl."""
    os.environ["JOB_QUEUE"] = "inline"
    if base == "tiny":
        from recengine.models_base import build_tiny_bert

        words = ["job admin. technician student retired services || term deposit savings"]
        os.environ["CLICK_MODEL_BASE"] = str(build_tiny_bert(folder / "tiny-bert", words))
    import django

    django.setup()
    from django.contrib.auth.models import User as DjangoUser

    from marketing.models import Offer, TrainingRun
    from marketing.services.training import training_run_create

    owner = DjangoUser.objects.get(username="bench-owner")
    offer = Offer.objects.order_by("pk").first()
    with (folder / "runs.jsonl").open("a") as out:
        while not (folder / STOP_FILE).exists():
            started = time.perf_counter()
            run = training_run_create(
                name="Load benchmark",
                segment=None,
                offer=offer,
                target=TrainingRun.Target.CONVERSION,
                base_model="",
                mode=TrainingRun.Mode.LORA,
                params={"epochs": 1, "max_rows": 6000},
                by=owner,
            )
            run = TrainingRun.objects.select_related("job").get(pk=run.pk)
            out.write(
                json.dumps(
                    {
                        "status": run.job.status,
                        "seconds": round(time.perf_counter() - started, 1),
                        "error": run.job.error[:300],
                    }
                )
                + "\n"
            )
            out.flush()


def start_training(folder: Path, base: str) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, __file__, "--train-worker", str(folder), "--train-base", base],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    from marketing.models import Job

    deadline = time.monotonic() + 300
    while not Job.objects.filter(kind=Job.Kind.TRAIN, status=Job.Status.RUNNING).exists():
        if worker.poll() is not None:
            raise SystemExit(
                f"training worker stopped: {worker.stderr.read()[-3000:] if worker.stderr else ''}"
            )
        if time.monotonic() > deadline:
            worker.kill()
            raise SystemExit("no training job was running 300 s after the worker started")
        time.sleep(0.5)
    return worker


def stop_training(worker: subprocess.Popen, folder: Path) -> list[dict[str, Any]]:
    """Ask the worker to stop after its current run; cut it short after 120 s."""
    (folder / STOP_FILE).touch()
    try:
        worker.wait(timeout=120)
    except subprocess.TimeoutExpired:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    runs_file = folder / "runs.jsonl"
    if not runs_file.exists():
        return []
    return [json.loads(line) for line in runs_file.read_text().splitlines()]


# ---- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="seconds per phase")
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (default: as the Dockerfile runs it)"
    )
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--phases", default="idle,training")
    parser.add_argument("--train-base", choices=["tiny", "packaged"], default="tiny")
    parser.add_argument("--database", default="bench_scale_load")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--train-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_worker:
        train_worker(args.train_worker, args.train_base)
        return
    phases = [phase.strip() for phase in args.phases.split(",")]
    if not set(phases) <= {"idle", "training"}:
        raise SystemExit("--phases: idle and/or training")

    server_url = postgres_server_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.environ.update(
        DATABASE_URL=fresh_database(server_url, args.database),
        DATA_DIR=str(workdir),
        DJANGO_SETTINGS_MODULE="marketing.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        PSEUDONYM_KEY=secrets.token_urlsafe(48),
        SUPPRESSION_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        JOB_QUEUE="inline",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
    )
    server = None
    report: dict[str, Any] = {}
    try:
        log("loading the demo data and the users")
        users, loaded = prepare(args.users)
        from django.db import connections

        connections.close_all()
        port = free_port()
        server = start_server(port, args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        results: dict[str, Any] = {}
        for phase in phases:
            worker = start_training(workdir, args.train_base) if phase == "training" else None
            log(f"phase {phase}: {args.users} users for {args.duration:.0f} s")
            load_before = load_average()
            results[phase] = run_phase(base, users, args.duration)
            results[phase]["load_average_before"] = load_before
            results[phase]["load_average_after"] = load_average()
            if worker is not None:
                results[phase]["training_runs"] = stop_training(worker, workdir)
        idle = results.get("idle")
        checks = {
            f"{phase}_no_errors": figures["errors"] == 0 for phase, figures in results.items()
        }
        if idle:
            slow = {
                name: page["p95_ms"]
                for name, page in idle["pages"].items()
                if name != "login" and (page["p95_ms"] or 0) > 1000 * P95_IDLE_TARGET_S
            }
            checks["idle_p95_under_300_ms"] = not slow
            checks["idle_pages_over_300_ms_p95"] = slow
        workers = (
            args.workers or runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))["workers"]
        )
        report = {
            "benchmark": "load_users",
            "database": "postgresql",
            "server": f"gunicorn, {workers} workers x {args.threads} threads, "
            "marketing.settings_production, behind a simulated TLS proxy",
            "users": args.users,
            "duration_s": args.duration,
            "think_s": list(THINK_S),
            "data": loaded,
            "train_base": args.train_base,
            "cpu_count": os.cpu_count(),
            "phases": results,
            "targets": {"errors": 0, "idle_p95_ms": 1000 * P95_IDLE_TARGET_S},
            "checks": checks,
            "pass": all(value is True for value in checks.values() if isinstance(value, bool)),
        }
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if not args.keep:
            drop_database(server_url, args.database)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
