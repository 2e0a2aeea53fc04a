"""Click-model benchmark: baseline vs BERT (full, LoRA) on one fixed split, JSON on stdout.

    .venv/bin/python bench/click_model.py                      # full run, both data sets
    .venv/bin/python bench/click_model.py --datasets bank --time-budget-full 300 \
        --time-budget-lora 300                                 # a shorter bank run

The BERT model reads the categorical fields as a short text (no separators, short labels);
the numbers go through a numeric tower with a piecewise-linear encoding (bank: pdays 999 =
"never contacted" as its own flag). The lowest `--frozen-layers` of the `--num-layers` kept
are computed once per distinct text and cached, so each step trains only the top layers.
"blend" is the product's stacked model: BERT and LightGBM combined by a logistic regression
fitted on the validation rows. "targets" checks the issue's figures from the measured values.

(a) UCI Bank Marketing without `duration`; test = train_test_split(test_size=0.2, stratify=y,
    random_state=0), validation carved from the training part.
(b) MovieLens 100K as a multi-offer task (rating >= 4 = click, sampled unrated movies =
    non-clicks); each customer's latest 20 % of interactions are the test rows, plus 10 % of
    customers and 10 % of movies held out entirely (cold start, reported separately).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, log, quiet_torch  # noqa: E402
from recengine.baseline import BaselineConfig, TabularBaseline  # noqa: E402
from recengine.data import Split, SplitConfig, split_by_user, split_rows  # noqa: E402
from recengine.datasets import DatasetMissing, load_bank, load_movielens  # noqa: E402
from recengine.ensemble import StackedModel  # noqa: E402
from recengine.metrics import click_metrics  # noqa: E402
from recengine.score import (  # noqa: E402
    DistilledScorer,
    ScoreConfig,
    StudentConfig,
    quantized_for_cpu,
    score_in_chunks,
)
from recengine.serialize import SerializeConfig, TextSerializer  # noqa: E402
from recengine.train import ClickModel, TrainConfig  # noqa: E402


def main() -> None:
    args = parse_args()
    quiet_torch(args.threads)
    report: dict = {"settings": vars(args), "load_before": load_average()}
    for name in args.datasets.split(","):
        loader = {"bank": bank_task, "movielens": movielens_task}[name]
        try:
            report[name] = run_task(task_args(args, name), *loader(args))
        except DatasetMissing as missing:
            report[name] = {"skipped": str(missing)}
        log(f"{name}: done")
    if "models" in report.get("bank", {}):
        report["targets"] = targets(report["bank"])
    report["load_after"] = load_average()
    print(json.dumps(report, indent=1))


def task_args(args: argparse.Namespace, name: str) -> argparse.Namespace:
    """MovieLens runs on a sample with a shorter budget (its own --movielens-* settings)."""
    if name != "movielens":
        return args
    return argparse.Namespace(
        **{
            **vars(args),
            "train_rows": args.movielens_train_rows,
            **{f"time_budget_{m}": args.movielens_time_budget for m in ("full", "lora", "frozen")},
        }
    )


def targets(bank: dict) -> dict:
    """The issue's targets on the bank data, computed from this run's figures."""
    models = bank["models"]
    bert = {m: models[m] for m in ("full", "lora") if m in models}
    checks: dict = {}
    if "lightgbm" in models and "blend" in models:
        checks["best_product_model_auc_gt_lightgbm"] = (
            max(e["test_auc"] for e in (*bert.values(), models["blend"]))
            > models["lightgbm"]["test_auc"]
        )
    if bert:
        checks["bert_auc_ge_0.795"] = max(e["test_auc"] for e in bert.values()) >= 0.795
        checks["bert_scoring_rows_per_s_ge_300"] = (
            max(
                max(e["scoring_rows_per_s"], e["int8"]["scoring_rows_per_s"])
                if e["test_auc"] - e["int8"]["test_auc"] <= 0.005
                else e["scoring_rows_per_s"]
                for e in bert.values()
            )
            >= 300
        )
    if "lora" in models:
        checks["lora_training_rows_per_s_ge_60"] = models["lora"]["training_rows_per_s"] >= 60
    if "fast_path" in bank:
        fast = bank["fast_path"]
        checks["fast_path_rows_per_s_ge_20000"] = fast["scoring_rows_per_s"] >= 20_000
        checks["fast_path_auc_loss_le_0.005"] = fast["auc_loss"] <= 0.005
    return checks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="bank,movielens")
    parser.add_argument(
        "--models",
        default="lightgbm,logistic,full,lora",
        help="comma list of lightgbm, logistic, full, lora, frozen",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--time-budget-full",
        type=float,
        default=1500,
        help="training seconds of the full fine-tuning (caching included)",
    )
    parser.add_argument(
        "--time-budget-lora",
        type=float,
        default=720,
        help="training seconds of the LoRA fine-tuning (caching included)",
    )
    parser.add_argument(
        "--time-budget-frozen",
        type=float,
        default=600,
        help="training seconds of the frozen encoder + head",
    )
    parser.add_argument("--train-rows", type=int, default=None, help="sample of training rows")
    parser.add_argument("--test-rows", type=int, default=None, help="sample of test rows")
    parser.add_argument(
        "--movielens-train-rows", type=int, default=20000, help="MovieLens: sample of training rows"
    )
    parser.add_argument(
        "--movielens-time-budget",
        type=float,
        default=300,
        help="MovieLens: training seconds per BERT model",
    )
    parser.add_argument("--epochs", type=int, default=20, help="most passes (time decides)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--evals-per-epoch", type=int, default=4)
    parser.add_argument(
        "--patience", type=int, default=12, help="validations without a better AUC before stopping"
    )
    parser.add_argument(
        "--frozen-layers",
        type=int,
        default=2,
        help="lowest encoder layers frozen and cached (speed)",
    )
    parser.add_argument("--num-layers", type=int, default=3, help="keep only N layers")
    parser.add_argument("--head-hidden", type=int, default=64, help="hidden layer of the head")
    parser.add_argument(
        "--piecewise-bins",
        type=int,
        default=16,
        help="quantile bins of the numeric encoding (0 = standardised only)",
    )
    parser.add_argument("--separator", default=" ", help="between fields in the text")
    parser.add_argument(
        "--student-rows",
        type=int,
        default=5000,
        help="training rows the fast student learns the served model from",
    )
    parser.add_argument("--base-model", default="packaged:all-MiniLM-L6-v2")
    return parser.parse_args()


# ---- tasks ------------------------------------------------------------------------------------
def bank_task(args) -> tuple[pd.DataFrame, np.ndarray, Split, SerializeConfig, list[str], dict]:
    data = load_bank()
    split = split_rows(data.y, SplitConfig(test_size=0.2, val_size=0.1, seed=0))
    config = SerializeConfig(
        fields=data.customer_fields,
        labels={**data.labels, **SHORT_BANK_LABELS},
        numeric_text="omit",
        separator=args.separator,
        sentinels={"pdays": 999},
        **numeric_encoding(args),
    )
    return data.frame, data.y, split, config, data.customer_fields, {}


# One word per yes/no field: with no separators the label still says what "no" refers to.
SHORT_BANK_LABELS = {
    "default": "default",
    "housing": "housing",
    "loan": "loan",
    "poutcome": "previous",
}


def numeric_encoding(args) -> dict:
    if not args.piecewise_bins:
        return {"numeric_encoding": "standard"}
    return {"numeric_encoding": "piecewise", "piecewise_bins": args.piecewise_bins}


def movielens_task(args):
    data = load_movielens()
    frame, y = data.frame, data.y
    split = split_by_user(
        frame["user"].to_numpy(),
        frame["time"].to_numpy(),
        test_size=0.2,
        val_size=0.1,
        cold_users=0.1,
        seed=0,
    )
    rng = np.random.default_rng(0)
    items = frame["item"].unique()
    cold_items = set(rng.choice(items, size=len(items) // 10, replace=False).tolist())
    is_cold_item = frame["item"].isin(cold_items).to_numpy()
    split = Split(
        split.train[~is_cold_item[split.train]],
        split.val[~is_cold_item[split.val]],
        np.sort(
            np.concatenate(
                [
                    split.test,
                    split.train[is_cold_item[split.train]],
                    split.val[is_cold_item[split.val]],
                ]
            )
        ),
    )
    frame = add_click_rates(frame, y, split.train)
    trained_users = set(frame["user"].iloc[split.train])
    segments = {
        "cold_customer": ~frame["user"].iloc[split.test].isin(trained_users).to_numpy(),
        "cold_offer": frame["item"].iloc[split.test].isin(cold_items).to_numpy(),
    }
    segments["warm"] = ~(segments["cold_customer"] | segments["cold_offer"])
    history = ["customer_click_rate", "customer_ratings"]
    offer_stats = ["offer_click_rate", "offer_ratings"]
    config = SerializeConfig(
        fields=data.customer_fields + history,
        offer_fields=data.offer_fields + offer_stats,
        labels=data.labels,
        numeric_text="omit",
        separator=args.separator,
        **numeric_encoding(args),
    )
    tabular = data.customer_fields + ["genres"] + history + offer_stats
    return frame, y, split, config, tabular, segments


def add_click_rates(frame: pd.DataFrame, y: np.ndarray, train: np.ndarray) -> pd.DataFrame:
    """Each customer's and offer's smoothed click rate and count in the training rows (the
    interaction history in two numbers; a newcomer gets the overall rate and a count of 0)."""
    frame = frame.copy()
    seen = frame.iloc[train].assign(click=y[train])
    prior, strength = float(y[train].mean()), 5.0
    for key, prefix in (("user", "customer"), ("item", "offer")):
        stats = seen.groupby(key)["click"].agg(["sum", "count"])
        rate = (stats["sum"] + prior * strength) / (stats["count"] + strength)
        frame[f"{prefix}_click_rate"] = frame[key].map(rate).fillna(prior)
        frame[f"{prefix}_ratings"] = frame[key].map(stats["count"]).fillna(0).astype(float)
    return frame


# ---- one task ---------------------------------------------------------------------------------
def run_task(args, frame, y, split: Split, serialize: SerializeConfig, tabular, segments) -> dict:
    rng = np.random.default_rng(0)
    train, val, test = split.train, split.val, split.test
    if args.train_rows and args.train_rows < len(train):
        train = np.sort(rng.choice(train, args.train_rows, replace=False))
        val = np.sort(rng.choice(val, min(len(val), max(args.train_rows // 5, 500)), replace=False))
    test_pick = np.arange(len(test))
    if args.test_rows and args.test_rows < len(test):
        test_pick = np.sort(rng.choice(len(test), args.test_rows, replace=False))
    test = test[test_pick]
    segments = {k: v[test_pick] for k, v in segments.items()}
    result: dict = {"rows": {"train": len(train), "val": len(val), "test": len(test)}, "models": {}}
    y_test = y[test]
    baselines: dict[str, TabularBaseline] = {}
    models = args.models.split(",")

    for kind in ("lightgbm", "logistic"):
        if kind not in models:
            continue
        log(f"{kind}: training on {len(train)} rows")
        started = time.perf_counter()
        model = TabularBaseline(BaselineConfig(kind=kind, threads=args.threads, columns=tabular))
        model.fit(frame.iloc[train], y[train], frame.iloc[val], y[val])
        fit_s = time.perf_counter() - started
        entry, _ = evaluate(model, frame.iloc[test], y_test, segments)
        entry["training_rows_per_s"] = len(train) / fit_s
        baselines[kind] = model
        result["models"][kind] = entry

    serializer = TextSerializer(serialize).fit(frame.iloc[train])
    result["example_text"] = serializer.texts(frame.iloc[train[:1]])[0]
    best_bert: tuple[float, str, ClickModel] | None = None
    for mode in ("full", "lora", "frozen"):
        if mode not in models:
            continue
        config = bert_config(args, mode, len(train))
        log(f"{mode}: training on {len(train)} rows, budget {config.time_budget_s:.0f}s")
        model = ClickModel(config, serializer).fit(
            frame.iloc[train],
            y[train],
            frame.iloc[val],
            y[val],
            progress=lambda p: (
                p.val_auc is not None
                and log(
                    f"  step {p.step}/{p.total_steps} loss {p.loss:.4f} val_auc {p.val_auc:.4f}"
                )
            ),
        )
        entry, _ = evaluate(model, frame.iloc[test], y_test, segments)
        entry.update(
            {
                "training_rows_per_s": model.train_rows_per_s_,
                "fit_seconds": model.fit_seconds_,
                "steps": model.steps_,
                "best_val_auc": model.best_val_auc_,
                "epochs_run": model.steps_ * config.batch_size / len(train),
                "config": {
                    k: getattr(config, k)
                    for k in (
                        "mode",
                        "frozen_layers",
                        "num_layers",
                        "learning_rate",
                        "head_learning_rate",
                        "lora_r",
                        "epochs",
                        "batch_size",
                        "head_hidden",
                        "time_budget_s",
                    )
                },
            }
        )
        quick = quantized_for_cpu(model)
        q_entry, _ = evaluate(quick, frame.iloc[test], y_test, segments)
        entry["int8"] = {k: q_entry[k] for k in ("test_auc", "log_loss", "scoring_rows_per_s")}
        result["models"][mode] = entry
        # The BERT model served (fast path, blend) is chosen on validation, never on test.
        if best_bert is None or model.best_val_auc_ > best_bert[2].best_val_auc_:
            best_bert = (entry["test_auc"], mode, model)

    if best_bert is not None:
        result["fast_path"] = fast_path(args, best_bert, frame, y, train, test, tabular, segments)
    if "lightgbm" in baselines and best_bert is not None:
        # The product's best model: the served BERT model and LightGBM, stacked by weights
        # fitted on the validation rows (the test rows are only scored).
        log("blend: fitting the stacker on the validation rows")
        blend = StackedModel({best_bert[1]: best_bert[2], "lightgbm": baselines["lightgbm"]})
        blend.fit(frame.iloc[val], y[val])
        entry, _ = evaluate(blend, frame.iloc[test], y_test, segments)
        entry.update(
            weights=blend.weights,
            fitted_on="validation rows",
            val_rows=len(val),
            val_auc_out_of_fold=blend.out_of_fold_auc_,
        )
        result["models"]["blend"] = entry
    return result


def bert_config(args, mode: str, n_train: int) -> TrainConfig:
    rates = {"full": 1e-4, "lora": 1e-3, "frozen": 1e-3}
    budgets = {
        "full": args.time_budget_full,
        "lora": args.time_budget_lora,
        "frozen": args.time_budget_frozen,
    }
    steps_per_epoch = max(1, -(-n_train // args.batch_size))
    return TrainConfig(
        base_model=args.base_model,
        mode=mode,
        learning_rate=rates[mode],
        frozen_layers=args.frozen_layers if mode != "frozen" else 0,
        num_layers=args.num_layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        time_budget_s=budgets[mode],
        threads=args.threads,
        eval_every=max(1, steps_per_epoch // args.evals_per_epoch),
        patience=args.patience,
        max_length=96,
        head_hidden=args.head_hidden,
        numeric_hidden=64,
        eval_batch_size=512,
    )


def evaluate(model, frame: pd.DataFrame, y: np.ndarray, segments: dict) -> tuple[dict, np.ndarray]:
    started = time.perf_counter()
    p = np.concatenate(list(score_in_chunks(model, [frame], ScoreConfig(chunk_size=10_000))))
    seconds = time.perf_counter() - started
    metrics = click_metrics(y, p)
    entry = {
        "test_auc": metrics.roc_auc,
        "log_loss": metrics.log_loss,
        "pr_auc": metrics.pr_auc,
        "brier": metrics.brier,
        "lift": metrics.lift,
        "scoring_rows_per_s": len(frame) / seconds,
    }
    for name, mask in segments.items():
        if mask.any() and 0 < y[mask].mean() < 1:
            entry[f"test_auc_{name}"] = click_metrics(y[mask], p[mask]).roc_auc
    return entry, p


def fast_path(args, best, frame, y, train, test, tabular, segments) -> dict:
    """A LightGBM student learns the served BERT model's logits from the tabular columns."""
    served_auc, mode, model = best
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(train, min(len(train), args.student_rows), replace=False))
    log(f"fast path: distilling {mode} on {len(rows)} rows")
    teacher = model.predict_logits(frame.iloc[rows])
    student = DistilledScorer(StudentConfig(columns=tabular, threads=args.threads))
    student.fit(frame.iloc[rows], teacher)
    entry, _ = evaluate(student, frame.iloc[test], y[test], segments)
    entry.update(
        {"serves": mode, "served_test_auc": served_auc, "auc_loss": served_auc - entry["test_auc"]}
    )
    return entry


if __name__ == "__main__":
    main()
