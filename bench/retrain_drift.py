"""Models over time on the bank data in date order: drift, and re-training that keeps up.

    .venv/bin/python bench/retrain_drift.py                      # 240 s budgets
    .venv/bin/python bench/retrain_drift.py --time-budget 120 --scratch-at 1,3

The product's own pieces do the work, with the settings a Train click and a re-training
use (marketing.services.training: the time budget's picks, the BERT settings, the
cross-fitted teacher, the incremental learning rates; recengine.drift for the checks):

1. The model in use (the champion) trains from scratch on the first 60 % of the calls, in
   date order (May to November 2008).
2. The rest is cut into monthly slices (months with fewer than --min-slice rows join the
   next). For each slice: the PSI of every field and of the score against the champion's
   training profile, as a drift check computes them; the champion's AUC on the slice (stale:
   never re-trained); and a challenger that has learned every earlier slice by continued
   fine-tuning, one slice at a time, from the champion's weights. The challenger's AUC on
   the slice is measured before it learns that slice.
3. At the slices named by --scratch-at, a model trained from scratch on everything before
   the slice (the same budget) is compared with the challenger on the slice: test AUC and
   training seconds (the incremental step that brought the challenger up to date).

JSON on stdout; the targets: drift detected on the economic fields (euribor3m,
nr_employed, emp_var_rate), the challenger's AUC above the stale champion's on the later
slices, and continued fine-tuning at most a third of the scratch training's time for an
AUC within 0.005 of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, log, quiet_torch  # noqa: E402

ECONOMIC = ("euribor3m", "nr_employed", "emp_var_rate")
FIRST_SHARE = 0.6


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
    import django

    django.setup()
    print(json.dumps(run(args), indent=1))


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from marketing.services.training import resolved_params
    from recengine.baseline import BaselineConfig, TabularBaseline
    from recengine.drift import drift_report, fit_reference
    from recengine.metrics import click_metrics

    threads = args.threads
    quiet_torch(threads)
    frame, y, months = bank_calls()
    first = int(len(y) * FIRST_SHARE)
    slices = monthly_slices(months, first, args.min_slice)
    params = resolved_params({"time_budget_s": args.time_budget, "threads": threads})
    log(f"{first:,} rows for the champion, {len(slices)} slices; settings {params}")

    started = time.perf_counter()
    champion = train(frame.iloc[:first], y[:first], params, seed=0)
    champion_s = time.perf_counter() - started
    val_scores = champion.model.predict_proba(champion.val_frame)
    reference = fit_reference(frame.iloc[:first][champion.fields], scores=val_scores)
    log(f"champion trained in {champion_s:.0f}s")

    def auc(model, rows) -> float:
        return click_metrics(y[rows], model.predict_proba(frame.iloc[rows])).roc_auc

    def lightgbm(rows):
        config = BaselineConfig(kind="lightgbm", threads=threads, seed=0)
        return TabularBaseline(config).fit(frame.iloc[rows], y[rows])

    # The baselines of the same run: LightGBM on the champion's rows (stale), and LightGBM
    # on the slice before each slice alone.
    stale_trees, previous_rows = lightgbm(np.arange(first)), None

    challenger, report = champion.model, []
    scratch_at = {int(i) for i in args.scratch_at.split(",") if i}
    for index, (label, rows) in enumerate(slices):
        stale_scores = champion.model.predict_proba(frame.iloc[rows])
        drift = drift_report(
            reference, frame.iloc[rows][champion.fields], score_recent=stale_scores
        )
        entry = {
            "slice": label,
            "rows": len(rows),
            "response_rate": round(float(y[rows].mean()), 4),
            "champion_auc": round(click_metrics(y[rows], stale_scores).roc_auc, 4),
            "challenger_auc": round(auc(challenger, rows), 4) if index else None,
            "psi": {d.field: round(d.psi, 3) for d in drift.fields},
            "score_psi": round(drift.score.psi, 3) if drift.score else None,
            "moved": drift.moved,
            "lightgbm_stale_auc": round(auc(stale_trees, rows), 4),
            "lightgbm_previous_slice_auc": round(auc(lightgbm(previous_rows), rows), 4)
            if previous_rows is not None
            else None,
        }
        previous_rows = rows
        if index in scratch_at:
            before = np.arange(0, rows[0])
            started = time.perf_counter()
            scratch = train(frame.iloc[before], y[before], params, seed=0)
            entry["scratch"] = {
                "rows": len(before),
                "fit_s": round(time.perf_counter() - started, 1),
                "auc": round(auc(scratch.model, rows), 4),
            }
            entry["scratch"]["continued_fit_s"] = report[-1]["continued_fit_s"]
        # The challenger learns this slice, by continued fine-tuning.
        started = time.perf_counter()
        challenger = train(
            frame.iloc[rows], y[rows], params, seed=index + 1, parent=challenger
        ).model
        entry["continued_fit_s"] = round(time.perf_counter() - started, 1)
        report.append(entry)
        log(json.dumps(entry))

    later = [e for e in report if e["challenger_auc"] is not None]
    scratch = [e for e in report if "scratch" in e]
    moved_economic = sorted({f for e in report for f in e["moved"] if f in ECONOMIC})
    return {
        "settings": {
            "time_budget_s": args.time_budget,
            "threads": threads,
            "champion_rows": first,
            "min_slice_rows": args.min_slice,
            "params": {k: getattr(params, k) for k in ("num_layers", "frozen_layers", "max_rows")},
        },
        "champion_fit_s": round(champion_s, 1),
        "slices": report,
        "summary": {
            "economic_fields_moved": moved_economic,
            "challenger_beats_champion": sum(
                e["challenger_auc"] > e["champion_auc"] for e in later
            ),
            "later_slices": len(later),
            "mean_champion_auc_later": round(float(np.mean([e["champion_auc"] for e in later])), 4),
            "mean_challenger_auc_later": round(
                float(np.mean([e["challenger_auc"] for e in later])), 4
            ),
            "mean_lightgbm_stale_auc_later": round(
                float(np.mean([e["lightgbm_stale_auc"] for e in later])), 4
            ),
            "mean_lightgbm_previous_slice_auc_later": round(
                float(np.mean([e["lightgbm_previous_slice_auc"] for e in later])), 4
            ),
            "scratch_comparisons": [
                {
                    "slice": e["slice"],
                    "challenger_auc": e["challenger_auc"],
                    "scratch_auc": e["scratch"]["auc"],
                    "continued_fit_s": e["scratch"]["continued_fit_s"],
                    "scratch_fit_s": e["scratch"]["fit_s"],
                }
                for e in scratch
            ],
        },
        "targets": {
            "drift_on_economic_fields": bool(moved_economic),
            "challenger_beats_stale_on_most_later_slices": sum(
                e["challenger_auc"] > e["champion_auc"] for e in later
            )
            > len(later) / 2,
            "continued_at_most_a_third_of_scratch_time_within_0_005_auc": bool(scratch)
            and all(
                e["scratch"]["continued_fit_s"] <= e["scratch"]["fit_s"] / 3
                and e["challenger_auc"] >= e["scratch"]["auc"] - 0.005
                for e in scratch
            ),
        },
        "load_avg": load_average(),
    }


def bank_calls():
    """The bank calls in date order as the demo loader reads them: the profile fields (typed
    as the loader types them), the outcome and each call's month."""
    import numpy as np
    import pandas as pd

    from marketing.ingest.demo import LEFT_OUT, read_bank_rows
    from marketing.ingest.fields import attribute_name
    from marketing.ingest.values import PROFILE_PARSERS, guess_type

    rows = read_bank_rows()
    columns = [c for c in rows[0].values if c not in LEFT_OUT]
    types = {c: guess_type(row.values[c] for row in rows) for c in columns}
    frame = pd.DataFrame.from_records(
        [
            {attribute_name(c): PROFILE_PARSERS[types[c]](row.values[c]) for c in columns}
            for row in rows
        ]
    )
    y = np.array([row.values["y"] == "yes" for row in rows], dtype=np.int64)
    months = [f"{row.called_at:%Y-%m}" for row in rows]
    return frame, y, months


def monthly_slices(months: list[str], start: int, min_rows: int) -> list[tuple[str, list[int]]]:
    """Rows from ``start`` on, by month; a month with fewer than ``min_rows`` rows joins the
    next (a short last slice joins the one before). Labels "2009-06" or "2009-06..2009-08"."""
    groups: list[list[int]] = []
    for i in range(start, len(months)):
        new_month = i == start or months[i] != months[i - 1]
        if new_month and (not groups or len(groups[-1]) >= min_rows):
            groups.append([])
        groups[-1].append(i)
    if len(groups) > 1 and len(groups[-1]) < min_rows:
        groups[-2].extend(groups.pop())

    def label(rows: list[int]) -> str:
        first, last = months[rows[0]], months[rows[-1]]
        return first if first == last else f"{first}..{last}"

    return [(label(rows), rows) for rows in groups]


def train(frame, y, params, *, seed: int, parent=None):
    """A BERT click model as a training run trains it: the budget's settings, a stratified
    validation share, the cross-fitted baselines' out-of-fold probabilities as the teacher;
    with ``parent``, by continued fine-tuning from its weights."""
    import numpy as np

    from marketing.services.training import (
        CROSSFIT_FOLDS,
        VALIDATION_SHARE,
        bert_config,
        continued_model,
        new_serializer,
    )
    from recengine.baseline import BaselineConfig
    from recengine.crossfit import CrossFitConfig, CrossFitted
    from recengine.train import ClickModel

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(len(y) * VALIDATION_SHARE))
    val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
    if len(fit) > params.max_rows:
        fit = np.sort(rng.choice(fit, params.max_rows, replace=False))
    fields = list(frame.columns)
    crossfit = CrossFitted(
        CrossFitConfig(
            folds=CROSSFIT_FOLDS,
            seed=seed,
            baseline=BaselineConfig(kind="lightgbm", threads=params.threads, seed=seed),
        )
    ).fit(frame.iloc[fit], y[fit], list(fit))
    p = replace(params, seed=seed)
    config = bert_config(p, mode="lora", base_model=base_model(), train_rows=len(fit))
    if parent is None:
        examples = SimpleNamespace(customer_fields=fields, offer_fields=[])
        model = ClickModel(config, new_serializer(examples, frame.iloc[fit]))
    else:
        model = continued_model(parent, config)
    model.fit(frame.iloc[fit], y[fit], frame.iloc[val], y[val], teacher=crossfit.out_of_fold_)
    return SimpleNamespace(model=model, val_frame=frame.iloc[val], fields=fields)


def base_model() -> str:
    from django.conf import settings

    return settings.CLICK_MODEL_BASE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-budget", type=int, default=240, help="seconds per training")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-slice", type=int, default=1000, help="rows a slice needs")
    parser.add_argument(
        "--scratch-at", default="1,3", help="slice numbers (0 = first) to train from scratch at"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
