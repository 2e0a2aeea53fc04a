"""Explanation benchmark on UCI Bank Marketing: field-level SHAP of a BERT click model against
TreeSHAP of the LightGBM baseline, JSON on stdout.

    .venv/bin/python bench/explain_bank.py --threads 2
    .venv/bin/python bench/explain_bank.py --model-dir var/registry/<run>/model   # trained one

Split: train_test_split(test_size=0.2, stratify=y, random_state=0) without `duration`
(recengine.data.split_rows), validation carved from the training part. The BERT model is
trained briefly (LoRA on the top layers, lowest layers frozen and cached, a time budget)
unless --model-dir names a saved ClickModel. Reported: wall time and rows/s of explaining
--customers test customers, the largest |base + contributions - logit| (local accuracy) of
each method, the top fields by mean |SHAP|, the same for LightGBM with TreeSHAP (and with the
field-masking explainer, as a check that both methods rank the fields alike), and the load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, log, quiet_torch  # noqa: E402
from recengine.baseline import BaselineConfig, TabularBaseline  # noqa: E402
from recengine.data import SplitConfig, split_rows  # noqa: E402
from recengine.datasets import load_bank  # noqa: E402
from recengine.explain import (  # noqa: E402
    ExplainConfig,
    FieldExplainer,
    GlobalImportance,
    field_explainer,
    global_importance,
)
from recengine.serialize import SerializeConfig, TextSerializer  # noqa: E402
from recengine.train import ClickModel, TrainConfig  # noqa: E402


def main() -> None:
    args = parse_args()
    quiet_torch(args.threads)
    report: dict = {"settings": vars(args), "loadavg_start": load_average()}

    data = load_bank()
    frame, y = data.frame, data.y
    split = split_rows(y, SplitConfig(test_size=0.2, val_size=0.1, seed=0))
    rng = np.random.default_rng(0)
    customers = frame.iloc[np.sort(rng.choice(split.test, args.customers, replace=False))]
    train_rows = split.train
    if args.train_rows and args.train_rows < len(train_rows):
        train_rows = np.sort(rng.choice(train_rows, args.train_rows, replace=False))
    val_rows = np.sort(rng.choice(split.val, min(len(split.val), args.val_rows), replace=False))
    config = ExplainConfig(
        background_size=args.background, permutations=args.permutations, labels=data.labels
    )

    log("lightgbm: training on the whole training part")
    baseline = TabularBaseline(BaselineConfig(columns=data.customer_fields, threads=args.threads))
    baseline.fit(frame.iloc[split.train], y[split.train], frame.iloc[split.val], y[split.val])
    tree = field_explainer(baseline, config).fit(frame.iloc[split.train])
    report["lightgbm_tree"] = summary(global_importance(tree, customers, chunk_rows=250), args)
    log("lightgbm: field-masking explainer (same background as BERT)")
    masked = FieldExplainer(baseline, config).fit(frame.iloc[split.train])
    check = customers.iloc[: args.check_customers]
    report["lightgbm_permutation"] = summary(global_importance(masked, check), args)
    report["lightgbm_permutation"]["rank_agreement_with_tree"] = rank_agreement(
        report["lightgbm_tree"]["importance"], report["lightgbm_permutation"]["importance"]
    )

    if args.model_dir:
        log(f"bert: loading {args.model_dir}")
        model = ClickModel.load(args.model_dir)
        report["bert_model"] = {"loaded_from": args.model_dir}
    else:
        model = train_bert(args, data, frame, y, train_rows, val_rows)
        report["bert_model"] = {
            "mode": args.mode,
            "train_rows": len(train_rows),
            "fit_seconds": model.fit_seconds_,
            "best_val_auc": model.best_val_auc_,
            "num_layers": args.num_layers,
            "frozen_layers": model.frozen_layers_,
        }
    log(f"bert: explaining {len(customers)} customers")
    bert = FieldExplainer(model, config).fit(frame.iloc[split.train])
    importance = global_importance(
        bert,
        customers,
        progress=lambda pct, message: log(f"  {pct:.0f}% {message}"),
    )
    report["bert"] = summary(importance, args)
    report["bert"].update(
        {
            "masked_rows_scored": bert.rows_scored_,
            "model_calls": bert.model_calls_,
            "masked_rows_per_customer": bert.rows_scored_ / len(customers),
        }
    )
    # Local accuracy against the model's own predict_logits (not the explainer's scorer).
    sample = customers.iloc[: args.check_customers]
    sums = np.array(
        [e.base_value + sum(c.contribution for c in e.contributions) for e in bert.explain(sample)]
    )
    report["bert"]["max_error_vs_predict_logits"] = float(
        np.max(np.abs(sums - model.predict_logits(sample)))
    )
    report["bert"]["rank_agreement_with_lightgbm_tree"] = rank_agreement(
        report["lightgbm_tree"]["importance"], report["bert"]["importance"]
    )
    report["bert_vs_tree_time"] = report["bert"]["seconds"] / report["lightgbm_tree"]["seconds"]
    report["loadavg_end"] = load_average()
    print(json.dumps(report, indent=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--customers", type=int, default=1000, help="test customers explained")
    parser.add_argument(
        "--check-customers",
        type=int,
        default=100,
        help="customers explained by both LightGBM methods (rank check)",
    )
    parser.add_argument("--background", type=int, default=5, help="background rows")
    parser.add_argument(
        "--permutations", type=int, default=1, help="antithetic permutations per customer"
    )
    parser.add_argument("--model-dir", default=None, help="a saved ClickModel folder")
    parser.add_argument("--mode", default="lora", choices=["lora", "frozen", "full"])
    parser.add_argument("--time-budget", type=float, default=180, help="BERT training seconds")
    parser.add_argument("--train-rows", type=int, default=4000, help="BERT training sample")
    parser.add_argument("--val-rows", type=int, default=1000, help="BERT validation sample")
    parser.add_argument("--frozen-layers", type=int, default=3)
    parser.add_argument("--num-layers", type=int, default=None, help="keep only N layers")
    parser.add_argument("--base-model", default="packaged:all-MiniLM-L6-v2")
    return parser.parse_args()


def train_bert(args, data, frame, y, train_rows, val_rows) -> ClickModel:
    serializer = TextSerializer(
        SerializeConfig(
            fields=data.customer_fields,
            labels=data.labels,
            numeric_text="omit",
        )
    ).fit(frame.iloc[train_rows])
    frozen = args.frozen_layers if args.mode != "frozen" else 0
    if args.num_layers:  # leave at least the top layer trainable
        frozen = min(frozen, args.num_layers - 1)
    config = TrainConfig(
        base_model=args.base_model,
        mode=args.mode,
        learning_rate=1e-4 if args.mode == "full" else 1e-3,
        frozen_layers=frozen,
        num_layers=args.num_layers,
        epochs=3,
        batch_size=32,
        time_budget_s=args.time_budget,
        threads=args.threads,
        patience=1,
        max_length=96,
    )
    log(f"bert: training {args.mode} on {len(train_rows)} rows, budget {args.time_budget:.0f}s")
    return ClickModel(config, serializer).fit(
        frame.iloc[train_rows], y[train_rows], frame.iloc[val_rows], y[val_rows]
    )


def summary(result: GlobalImportance, args) -> dict:
    return {
        "method": result.method,
        "customers": result.rows,
        "seconds": result.seconds,
        "rows_per_s": result.rows / result.seconds,
        "max_local_accuracy_error": result.max_local_accuracy_error,
        "top_fields": result.top(5),
        "importance": {f.field: round(f.mean_abs, 4) for f in result.fields},
    }


def rank_agreement(a: dict[str, float], b: dict[str, float]) -> float:
    """Spearman correlation of two importance rankings over their common fields."""
    common = [f for f in a if f in b]
    ra = np.argsort(np.argsort([-a[f] for f in common]))
    rb = np.argsort(np.argsort([-b[f] for f in common]))
    return float(np.corrcoef(ra, rb)[0, 1])


if __name__ == "__main__":
    main()
