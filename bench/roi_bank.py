"""ROI planner on UCI Bank Marketing: BERT click model vs LightGBM baseline vs random, JSON out.

    .venv/bin/python bench/roi_bank.py                          # train BERT (frozen) ~4 minutes
    .venv/bin/python bench/roi_bank.py --save-model /tmp/bert   # ... and keep it
    .venv/bin/python bench/roi_bank.py --model-dir /tmp/bert    # plan with a saved model

Data: bank-additional-full without `duration` (only known after the call); the test customers
are train_test_split(test_size=0.2, stratify=y, random_state=0), as in bench/click_model.py.
Each model scores the test customers and the planner turns those scores into a campaign with
the economics printed under "economics". Two views of the same ranking:
- forecast: the planner's expected profit from the model's own probabilities (what the marketer
  sees before spending);
- measured: the profit the ranking really earns on the test customers' actual answers, against
  random targeting at the actual response rate. The check "beats random at every depth from 5 %
  to 50 %" uses the measured view at every whole percent, since the forecast view is above
  random by construction for any non-constant scores.
Realised ROI: the test customers the budget-limited plan would contact, their actual answers
beside the forecast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, log, quiet_torch  # noqa: E402
from recengine.baseline import BaselineConfig, TabularBaseline  # noqa: E402
from recengine.data import SplitConfig, split_rows  # noqa: E402
from recengine.datasets import load_bank  # noqa: E402
from recengine.metrics import click_metrics  # noqa: E402
from recengine.roi import (  # noqa: E402
    CampaignEconomics,
    backtest,
    plan_campaign,
    realised_roi,
)
from recengine.serialize import SerializeConfig, TextSerializer  # noqa: E402
from recengine.train import ClickModel, TrainConfig  # noqa: E402

CHECK_DEPTHS_PCT = range(5, 51)


def main() -> None:
    args = parse_args()
    quiet_torch(args.threads)
    economics = CampaignEconomics(
        cost_per_contact=args.cost_per_contact,
        value_per_conversion=args.value_per_conversion,
        fixed_cost=args.fixed_cost,
        budget=args.budget,
    )
    data = load_bank()
    frame, y = data.frame, data.y
    split = split_rows(y, SplitConfig(test_size=0.2, val_size=0.1, seed=0))
    rng = np.random.default_rng(0)
    test = split.test
    y_test = y[test]
    report: dict = {
        "settings": vars(args),
        "economics": economics.as_dict(),
        "economics_reading": (
            f"a call costs {economics.cost_per_contact:g} (about ten minutes of an agent's "
            f"time at the defaults), a term-deposit subscription earns a margin of "
            f"{economics.value_per_conversion:g}, the set-up (script, list, briefing) costs "
            f"{economics.fixed_cost:g}, and the campaign may spend {economics.budget:g} in all"
        ),
        "rows": {"train": len(split.train), "val": len(split.val), "test": len(test)},
        "test_response_rate": float(y_test.mean()),
        "models": {},
    }

    log(f"lightgbm: training on {len(split.train)} rows")
    started = time.perf_counter()
    baseline = TabularBaseline(
        BaselineConfig(kind="lightgbm", threads=args.threads, columns=data.customer_fields)
    )
    baseline.fit(frame.iloc[split.train], y[split.train], frame.iloc[split.val], y[split.val])
    scores = {"lightgbm": baseline.predict_proba(frame.iloc[test])}
    seconds = {"lightgbm": time.perf_counter() - started}

    started = time.perf_counter()
    if args.model_dir:
        log(f"bert: loading {args.model_dir}")
        bert = ClickModel.load(args.model_dir)
        bert_info = {"loaded_from": args.model_dir}
    else:
        train = np.sort(
            rng.choice(split.train, min(args.train_rows, len(split.train)), replace=False)
        )
        val = np.sort(rng.choice(split.val, min(args.val_rows, len(split.val)), replace=False))
        serializer = TextSerializer(
            SerializeConfig(
                fields=data.customer_fields,
                labels=data.labels,
                numeric_text="omit",
            )
        ).fit(frame.iloc[train])
        config = TrainConfig(
            base_model=args.base_model,
            mode=args.mode,
            learning_rate=1e-3,
            frozen_layers=args.frozen_layers if args.mode != "frozen" else 0,
            num_layers=args.num_layers or None,
            epochs=args.epochs,
            batch_size=32,
            time_budget_s=args.time_budget,
            threads=args.threads,
            eval_every=None,
            patience=1,
            max_length=96,
        )
        log(f"bert ({args.mode}): training on {len(train)} rows, budget {args.time_budget:.0f}s")
        bert = ClickModel(config, serializer).fit(
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
        bert_info = {
            "mode": args.mode,
            "num_layers": args.num_layers,
            "train_rows": len(train),
            "steps": bert.steps_,
            "steps_per_epoch": -(-len(train) // 32),
            "fit_seconds": bert.fit_seconds_,
            "best_val_auc": bert.best_val_auc_,
        }
        if args.save_model:
            bert.save(args.save_model)
            bert_info["saved_to"] = args.save_model
    log(f"bert: scoring {len(test)} test customers")
    scores["bert"] = bert.predict_proba(frame.iloc[test])
    seconds["bert"] = time.perf_counter() - started

    for name, p in scores.items():
        entry = campaign(p, y_test, economics)
        entry["seconds_train_and_score"] = seconds[name]
        report["models"][name] = entry
    report["models"]["bert"]["model"] = bert_info
    bert_entry, lgb_entry = report["models"]["bert"], report["models"]["lightgbm"]
    report["check"] = {
        "claim": "the ROI planner's profit curve for the BERT model's scores beats random "
        "targeting at every depth from 5% to 50%",
        "bert_beats_random_5_to_50_pct": bert_entry["measured"]["beats_random_5_to_50_pct"],
        "bert_min_margin_5_to_50_pct": bert_entry["measured"]["min_margin_5_to_50_pct"],
        "lightgbm_beats_random_5_to_50_pct": lgb_entry["measured"]["beats_random_5_to_50_pct"],
        "lightgbm_min_margin_5_to_50_pct": lgb_entry["measured"]["min_margin_5_to_50_pct"],
        "bert_minus_lightgbm_best_measured_profit": (
            bert_entry["measured"]["best"]["profit"] - lgb_entry["measured"]["best"]["profit"]
        ),
    }
    report["load_average"] = load_average()
    print(json.dumps(report, indent=1))


def campaign(p: np.ndarray, y: np.ndarray, economics: CampaignEconomics) -> dict:
    plan = plan_campaign(p, economics)
    measured = backtest(p, y, economics)
    margins = {pct: measured["profit_over_random"][pct - 1] for pct in CHECK_DEPTHS_PCT}
    worst = min(margins, key=margins.get)
    forecast_margins = [
        plan["curve"]["profit"][pct - 1] - plan["curve"]["random_profit"][pct - 1]
        for pct in CHECK_DEPTHS_PCT
    ]
    targeted = np.argsort(-p, kind="stable")[: plan["budget"]["best_within_budget"]["contacts"]]
    realised = realised_roi(p[targeted], y[targeted], economics)
    table = [
        {
            k: row[k]
            for k in (
                "depth_pct",
                "contacts",
                "expected_conversions",
                "profit",
                "roi",
                "random_profit",
            )
        }
        | {
            "actual_conversions": measured["actual_conversions"][round(row["depth_pct"]) - 1],
            "actual_profit": measured["actual_profit"][round(row["depth_pct"]) - 1],
            "actual_random_profit": measured["random_profit"][round(row["depth_pct"]) - 1],
        }
        for row in plan["table"]
    ]
    return {
        "test_auc": click_metrics(y, p).roc_auc,
        "mean_score": float(p.mean()),
        "table": table,
        "forecast": {
            "best": plan["best"],
            "budget": {
                k: plan["budget"][k]
                for k in ("max_contacts", "max_depth_pct", "best_within_budget")
            },
            "random_best": plan["random"]["best"],
            "random_budget_best": plan["random"]["budget"]["best_within_budget"],
            "min_margin_over_random_5_to_50_pct": min(forecast_margins),
        },
        "measured": {
            "best": measured["best"],
            "beats_random_5_to_50_pct": all(m > 0 for m in margins.values()),
            "min_margin_5_to_50_pct": margins[worst],
            "min_margin_at_depth_pct": worst,
        },
        "realised_at_budget_plan": {
            k: realised[k]
            for k in (
                "contacts",
                "forecast",
                "actual",
                "difference",
                "expected_conversions_range",
                "within_expected_range",
            )
        }
        | {
            "deciles": [
                {k: d[k] for k in ("decile", "customers", "forecast_rate", "actual_rate")}
                for d in realised["deciles"]
            ]
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    # Frozen: one cached encoder pass per row, then only the head learns (fastest on a CPU).
    parser.add_argument("--mode", default="frozen", choices=["lora", "frozen", "full"])
    # The budget counts the encoder pass over the training and validation rows too.
    parser.add_argument("--time-budget", type=float, default=300, help="BERT training seconds")
    parser.add_argument("--train-rows", type=int, default=4000, help="BERT training sample")
    parser.add_argument("--val-rows", type=int, default=800, help="BERT validation sample")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--num-layers", type=int, default=3, help="keep only the lowest N encoder layers (0 = all)"
    )
    parser.add_argument(
        "--frozen-layers",
        type=int,
        default=3,
        help="lowest encoder layers frozen and cached (speed)",
    )
    parser.add_argument("--base-model", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--model-dir", default=None, help="saved ClickModel folder to use")
    parser.add_argument("--save-model", default=None, help="folder to save the trained model")
    parser.add_argument("--cost-per-contact", type=float, default=5.0)
    parser.add_argument("--value-per-conversion", type=float, default=80.0)
    parser.add_argument("--fixed-cost", type=float, default=500.0)
    parser.add_argument("--budget", type=float, default=10_000.0)
    return parser.parse_args()


if __name__ == "__main__":
    main()
