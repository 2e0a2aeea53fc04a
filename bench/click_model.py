"""Click-model benchmark: baseline vs BERT (full, LoRA) on one fixed split, JSON on stdout.

    .venv/bin/python bench/click_model.py                      # full run, both data sets
    .venv/bin/python bench/click_model.py --train-rows 2000 --test-rows 2000 --threads 1

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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recengine.baseline import BaselineConfig, TabularBaseline  # noqa: E402
from recengine.data import Split, SplitConfig, split_by_user, split_rows  # noqa: E402
from recengine.datasets import DatasetMissing, load_bank, load_movielens  # noqa: E402
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
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    report: dict = {"settings": vars(args)}
    for name in args.datasets.split(","):
        loader = {"bank": bank_task, "movielens": movielens_task}[name]
        try:
            report[name] = run_task(args, *loader(args))
        except DatasetMissing as missing:
            report[name] = {"skipped": str(missing)}
        log(f"{name}: done")
    print(json.dumps(report, indent=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="bank,movielens")
    parser.add_argument("--models", default="lightgbm,logistic,full,lora",
                        help="comma list of lightgbm, logistic, full, lora, frozen")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-budget", type=float, default=1800,
                        help="training seconds per BERT model")
    parser.add_argument("--train-rows", type=int, default=None, help="sample of training rows")
    parser.add_argument("--test-rows", type=int, default=None, help="sample of test rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--frozen-layers", type=int, default=3,
                        help="lowest encoder layers frozen and cached (speed)")
    parser.add_argument("--num-layers", type=int, default=None, help="keep only N layers")
    parser.add_argument("--separator", default=" | ", help="between fields in the text")
    parser.add_argument("--student-rows", type=int, default=5000,
                        help="training rows the fast student learns the served model from")
    parser.add_argument("--base-model", default="packaged:all-MiniLM-L6-v2")
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- tasks ------------------------------------------------------------------------------------
def bank_task(args) -> tuple[pd.DataFrame, np.ndarray, Split, SerializeConfig, list[str], dict]:
    data = load_bank()
    split = split_rows(data.y, SplitConfig(test_size=0.2, val_size=0.1, seed=0))
    config = SerializeConfig(
        fields=data.customer_fields, labels=data.labels, numeric_text="omit",
        separator=args.separator,
    )
    return data.frame, data.y, split, config, data.customer_fields, {}


def movielens_task(args):
    data = load_movielens()
    frame, y = data.frame, data.y
    split = split_by_user(frame["user"].to_numpy(), frame["time"].to_numpy(), test_size=0.2,
                          val_size=0.1, cold_users=0.1, seed=0)
    rng = np.random.default_rng(0)
    items = frame["item"].unique()
    cold_items = set(rng.choice(items, size=len(items) // 10, replace=False).tolist())
    is_cold_item = frame["item"].isin(cold_items).to_numpy()
    split = Split(
        split.train[~is_cold_item[split.train]], split.val[~is_cold_item[split.val]],
        np.sort(np.concatenate([split.test, split.train[is_cold_item[split.train]],
                                split.val[is_cold_item[split.val]]])),
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
        fields=data.customer_fields + history, offer_fields=data.offer_fields + offer_stats,
        labels=data.labels, numeric_text="omit", separator=args.separator,
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
        val = np.sort(rng.choice(val, min(len(val), max(args.train_rows // 5, 500)),
                                 replace=False))
    test_pick = np.arange(len(test))
    if args.test_rows and args.test_rows < len(test):
        test_pick = np.sort(rng.choice(len(test), args.test_rows, replace=False))
    test = test[test_pick]
    segments = {k: v[test_pick] for k, v in segments.items()}
    result: dict = {"rows": {"train": len(train), "val": len(val), "test": len(test)},
                    "models": {}}
    y_test = y[test]
    scores: dict[str, np.ndarray] = {}
    models = args.models.split(",")

    for kind in ("lightgbm", "logistic"):
        if kind not in models:
            continue
        log(f"{kind}: training on {len(train)} rows")
        started = time.perf_counter()
        model = TabularBaseline(BaselineConfig(kind=kind, threads=args.threads, columns=tabular))
        model.fit(frame.iloc[train], y[train], frame.iloc[val], y[val])
        fit_s = time.perf_counter() - started
        entry, scores[kind] = evaluate(model, frame.iloc[test], y_test, segments)
        entry["training_rows_per_s"] = len(train) / fit_s
        result["models"][kind] = entry

    serializer = TextSerializer(serialize).fit(frame.iloc[train])
    result["example_text"] = serializer.texts(frame.iloc[train[:1]])[0]
    best_bert: tuple[float, str, ClickModel] | None = None
    for mode in ("full", "lora", "frozen"):
        if mode not in models:
            continue
        config = bert_config(args, mode)
        log(f"{mode}: training on {len(train)} rows, budget {args.time_budget:.0f}s")
        model = ClickModel(config, serializer).fit(
            frame.iloc[train], y[train], frame.iloc[val], y[val],
            progress=lambda p: p.val_auc is not None and log(
                f"  step {p.step}/{p.total_steps} loss {p.loss:.4f} val_auc {p.val_auc:.4f}"
            ),
        )
        entry, scores[mode] = evaluate(model, frame.iloc[test], y_test, segments)
        entry.update({
            "training_rows_per_s": model.train_rows_per_s_, "fit_seconds": model.fit_seconds_,
            "steps": model.steps_, "best_val_auc": model.best_val_auc_,
            "config": {k: getattr(config, k) for k in (
                "mode", "frozen_layers", "num_layers", "learning_rate", "lora_r", "epochs",
                "batch_size")},
        })
        quick = quantized_for_cpu(model)
        q_entry, _ = evaluate(quick, frame.iloc[test], y_test, segments)
        entry["int8"] = {k: q_entry[k] for k in ("test_auc", "log_loss", "scoring_rows_per_s")}
        result["models"][mode] = entry
        if best_bert is None or entry["test_auc"] > best_bert[0]:
            best_bert = (entry["test_auc"], mode, model)

    if best_bert is not None:
        result["fast_path"] = fast_path(args, best_bert, frame, y, train, test, tabular, segments)
        if "lightgbm" in scores:
            blend = (rank(scores[best_bert[1]]) + rank(scores["lightgbm"])) / 2
            result["models"]["blend"] = {
                "of": [best_bert[1], "lightgbm"],
                "test_auc": click_metrics(y_test, blend).roc_auc,
            }
    return result


def bert_config(args, mode: str) -> TrainConfig:
    rates = {"full": 1e-4, "lora": 1e-3, "frozen": 1e-3}
    return TrainConfig(
        base_model=args.base_model, mode=mode, learning_rate=rates[mode],
        frozen_layers=args.frozen_layers if mode != "frozen" else 0,
        num_layers=args.num_layers, epochs=args.epochs, batch_size=args.batch_size,
        time_budget_s=args.time_budget, threads=args.threads, eval_every=None, patience=1,
        max_length=96,
    )


def evaluate(model, frame: pd.DataFrame, y: np.ndarray, segments: dict) -> tuple[dict, np.ndarray]:
    started = time.perf_counter()
    p = np.concatenate(list(score_in_chunks(model, [frame], ScoreConfig(chunk_size=10_000))))
    seconds = time.perf_counter() - started
    metrics = click_metrics(y, p)
    entry = {
        "test_auc": metrics.roc_auc, "log_loss": metrics.log_loss, "pr_auc": metrics.pr_auc,
        "brier": metrics.brier, "lift": metrics.lift, "scoring_rows_per_s": len(frame) / seconds,
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
    entry.update({"serves": mode, "served_test_auc": served_auc,
                  "auc_loss": served_auc - entry["test_auc"]})
    return entry


def rank(p: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(p)) / len(p)


if __name__ == "__main__":
    main()
