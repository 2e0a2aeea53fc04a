"""The product's default training, as a Train click runs it: JSON on stdout.

    .venv/bin/python bench/train_default.py                  # 10-minute default budget
    .venv/bin/python bench/train_default.py --time-budget 300

The bank demo data is loaded by the product's loader into a fresh SQLite database in a
temporary folder (the embedded defaults). A marketer asks for a conversion model of the demo
offer with the training form's defaults (the time budget alone may be changed here), and the
job runs in this process as a worker would run it, on the machine's cores (2 here). It prints
the run's test AUCs (BERT, the LightGBM baseline of the same run on the same test rows, the
blend), which model is served, the settings the run picked for its budget, and the targets:
BERT >= 0.79 and the served model >= the baseline, within a budget of at most 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, log, quiet_torch  # noqa: E402

BERT_TARGET = 0.79
MAX_DEFAULT_BUDGET_S = 600


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="train-default-"))
    try:
        report = run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(report, indent=1))


def run(args: argparse.Namespace, folder: Path) -> dict:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DATABASE_URL=f"sqlite:///{folder / 'bench.sqlite3'}",
        DATA_DIR=str(folder),
        JOB_QUEUE="inline",
        CELERY_BROKER_URL="",
        FILE_STORE_URL="",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from marketing.models import Job, Offer, TrainingRun
    from marketing.roles import MARKETER
    from marketing.services.jobs import job_threads
    from marketing.services.training import training_run_create
    from marketing.services.training_params import TrainParams
    from marketing.views.models import TrainForm

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("load_demo", users=True, password="bench-password-123", verbosity=0)
    load_s = time.perf_counter() - started
    threads = job_threads()
    quiet_torch(threads)
    log(f"demo loaded in {load_s:.0f}s; training on {threads} threads")

    from django.contrib.auth.models import User

    marketer = User.objects.get(username="marketer")
    assert marketer.groups.filter(name=MARKETER).exists()
    # The form as a marketer first sees it: its initial values are what a click sends.
    form = TrainForm()
    initial = {name: form[name].initial for name in form.fields}
    data = {
        **{k: v for k, v in initial.items() if v is not None},
        "offer": Offer.objects.get().pk,
        "time_budget_minutes": (args.time_budget or TrainParams().time_budget_s) // 60,
    }
    form = TrainForm(data=data)
    if not form.is_valid():
        raise SystemExit(f"the default form does not validate: {form.errors.as_json()}")
    values = form.cleaned_data
    started = time.perf_counter()
    # JOB_QUEUE=inline: the job runs here, once the request's transaction commits.
    run = training_run_create(
        name="bench default",
        segment=values["segment"],
        offer=values["offer"],
        target=values["target"],
        base_model=values["base_model"],
        mode=values["mode"],
        params=form.params(),
        by=marketer,
    )
    job_s = time.perf_counter() - started
    run = TrainingRun.objects.select_related("job").get(pk=run.pk)
    if run.job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"training failed: {run.job.message} {run.job.error}")
    metrics = run.metrics
    bert = metrics["bert"]["roc_auc"]
    baseline = metrics["baseline"]["roc_auc"]
    blend = metrics["blend"]["roc_auc"]
    served = "blend" if metrics["blend"]["served"] else "bert"
    served_auc = blend if served == "blend" else bert
    budget = run.settings["time_budget_s"]
    return {
        "settings": {
            "time_budget_s": budget,
            "threads": threads,
            "teacher_weight": settings.CLICK_MODEL_TEACHER_WEIGHT,
        },
        "form_defaults": {
            "time_budget_s": TrainParams().time_budget_s,
            "mode": values["mode"],
            "base_model": values["base_model"],
        },
        "run_settings": run.settings,
        "rows": run.rows,
        "demo_load_s": round(load_s, 1),
        "job_s": round(job_s, 1),
        "bert": {
            "test_auc": bert,
            "log_loss": metrics["bert"]["log_loss"],
            "fit_seconds": metrics["bert"]["fit_seconds"],
            "steps": metrics["bert"]["steps"],
            "best_val_auc": metrics["bert"]["best_val_auc"],
            "stopped_early": metrics["bert"]["stopped_early"],
            "stop_reason": metrics["bert"].get("stop_reason"),
        },
        "baseline_lightgbm": {"test_auc": baseline, "log_loss": metrics["baseline"]["log_loss"]},
        "blend": {
            "test_auc": blend,
            "weights": metrics["blend"]["weights"],
            "val_auc_out_of_fold": metrics["blend"]["val_auc"],
            "bert_val_auc_standard_error": metrics["blend"].get("bert_val_auc_standard_error"),
        },
        "out_of_sample": metrics.get("out_of_sample"),
        "served": {"model": served, "test_auc": served_auc},
        "leakage": run.leakage,
        "load_avg": load_average(),
        "targets": {
            "default_budget_at_most_10_min": budget <= MAX_DEFAULT_BUDGET_S,
            f"bert_test_auc_at_least_{BERT_TARGET}": bert >= BERT_TARGET,
            "served_at_least_baseline": served_auc >= baseline,
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--time-budget", type=int, default=None, help="seconds (default: the form's default)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
