"""Accuracy versus diversity of offer lists on MovieLens 100K, JSON on stdout.

    .venv/bin/python bench/diversity_movielens.py                  # EASE scores, default lambdas
    .venv/bin/python bench/diversity_movielens.py --model popularity_genre --cap-share 0.03

Split: each customer's latest 20 % of ratings are held out (recengine.data.split_by_user);
a held-out rating >= 4 is a click. Candidates: every movie the customer did not rate in the
training part. Relevance: a model fitted on the training clicks only (scoring every
customer x movie pair with the BERT click model does not fit a 2-core bench):

- "ease": a linear item-to-item model with a closed form (Steck, 2019),
- "popularity_genre": movie click popularity plus the customer's genre affinity.

Movie similarity: Jaccard over genre sets. The baseline is lambda 0 (pure relevance); each
larger lambda is compared with it, including the target "intra-list diversity at least 20 %
higher for at most 5 % NDCG loss". A per-offer cap example and an audience-diversity
example (who the top 10 % for one movie leaves out) close the report.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recengine.data import split_by_user  # noqa: E402
from recengine.datasets import DatasetMissing, load_movielens  # noqa: E402
from recengine.diversity import (  # noqa: E402
    AudienceConfig,
    OfferSimilarity,
    RerankConfig,
    ScoreMatrix,
    audience_diversity,
    click_matrix,
    diversity_curve,
    evaluate,
    offer_popularity,
    recommend,
)

MODELS = {
    "ease": "EASE: item-to-item weights in closed form on the training clicks "
            "(L2 penalty --ease-l2), score = clicks x weights",
    "popularity_genre": "z-score of log click popularity + z-score of the customer's share of "
                        "training clicks in the movie's genres",
}


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    try:
        data = load_movielens(negatives_per_rating=0)
    except DatasetMissing as missing:
        print(json.dumps({"skipped": str(missing)}))
        return
    rows = data.frame
    split = split_by_user(rows["user"].to_numpy(), rows["time"].to_numpy(), test_size=0.2,
                          val_size=0.0, seed=args.seed)
    train, test = rows.iloc[split.train], rows.iloc[split.test]
    movies = rows.drop_duplicates("item").sort_values("item")[["item", "title", "genres"]]
    customers = np.sort(rows["user"].unique())
    offers = movies["item"].to_numpy()
    rated = click_matrix(train, customers, offers, customer="user", offer="item")
    liked = click_matrix(train[train["click"] == 1], customers, offers, "user", "item")
    held_out = click_matrix(test[test["click"] == 1], customers, offers, "user", "item")
    similarity = OfferSimilarity.from_categories(movies["genres"].tolist())

    fit_started = time.perf_counter()
    relevance = fit_scores(args, liked, similarity.features)
    fit_seconds = time.perf_counter() - fit_started
    scores = ScoreMatrix(np.where(rated, np.nan, relevance), customers, offers)
    popularity = offer_popularity(rated)
    config = RerankConfig(k=args.k, pool_size=args.pool, penalty=args.penalty)

    curve = diversity_curve(scores, similarity, held_out, lambdas=args.lambdas, config=config,
                            popularity=popularity)
    trade = curve.tradeoff(min_diversity_gain=0.20, max_accuracy_loss=0.05)
    most_popular = ScoreMatrix(np.where(rated, np.nan, popularity[None, :]), customers, offers)
    popular_lists = evaluate(recommend(most_popular, config), held_out, similarity, popularity)

    report = {
        "settings": {**vars(args), "lambdas": sorted({0.0, *args.lambdas})},
        "data": {
            "customers": len(customers), "movies": len(offers),
            "train_ratings": len(train), "held_out_ratings": len(test),
            "held_out_clicks": int(held_out.sum()),
            "candidates_per_customer": float((~rated).sum(axis=1).mean()),
            "genres": similarity.categories,
        },
        "relevance_model": {"name": args.model, "how": MODELS[args.model],
                            "fit_seconds": round(fit_seconds, 2)},
        "reference_most_popular_at_lambda_0": popular_lists.to_dict(),
        "curve": curve.to_dict()["points"],
        "baseline_lambda_0": trade.baseline,
        "check": {
            "diversity_rises": trade.diversity_rises,
            "diversity_monotone": trade.diversity_monotone,
            "ild_20pct_higher_for_at_most_5pct_ndcg_loss": trade.meets_target,
            "best_lambda": trade.best_lambda,
            "accuracy_measure": trade.accuracy,
            "changes_vs_lambda_0": trade.changes,
            # Jaccard dissimilarity is at most 1, so a 20 % gain is only possible below
            # a baseline of 1 / 1.2.
            "ild_needed_for_target": 1.2 * trade.baseline["intra_list_diversity"],
            "ild_largest_possible": 1.0,
        },
        "other_settings": other_settings(args, scores, held_out, similarity),
        "offer_cap": cap_example(args, scores, held_out, similarity, popularity, config,
                                 trade.best_lambda),
        "audience_diversity": audience_example(rows, scores),
        "seconds": round(time.perf_counter() - started, 1),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(report, indent=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="ease")
    parser.add_argument("--ease-l2", type=float, default=200.0,
                        help="EASE L2 penalty (fixed, not tuned on the held-out data)")
    parser.add_argument("--k", type=int, default=10, help="offers per list")
    parser.add_argument("--pool", type=int, default=100,
                        help="best-scored candidates per customer the re-ranking chooses from")
    parser.add_argument("--penalty", choices=["max", "mean"], default="max",
                        help="MMR penalty: closest listed movie (classic) or mean similarity")
    parser.add_argument("--lambdas", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.1, 0.2, 0.3, 0.5, 0.7])
    parser.add_argument("--cap-share", type=float, default=0.05,
                        help="cap example: most customers per movie, as a share of customers")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def fit_scores(args: argparse.Namespace, liked: np.ndarray, genres: np.ndarray) -> np.ndarray:
    """Relevance of every customer x movie pair from the training clicks only."""
    clicks = liked.astype(np.float64)
    if args.model == "ease":
        gram = clicks.T @ clicks
        gram[np.diag_indices_from(gram)] += args.ease_l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        return clicks @ weights
    popular = np.log1p(clicks.sum(axis=0))
    genre_clicks = clicks @ genres  # customers x genres
    share = genre_clicks / np.maximum(genre_clicks.sum(axis=1, keepdims=True), 1.0)
    n_genres = np.maximum(genres.sum(axis=1), 1.0)
    affinity = share @ genres.T / n_genres[None, :]
    return zscore(popular)[None, :] + zscore(affinity)


def zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() or 1.0)


def other_settings(args, scores, held_out, similarity) -> list[dict]:
    """The same check for other pool sizes and penalties, so one setting is not the story."""
    rows = []
    for penalty in ("max", "mean"):
        for pool in (30, 100, None):
            config = RerankConfig(k=args.k, pool_size=pool, penalty=penalty)
            curve = diversity_curve(scores, similarity, held_out, lambdas=args.lambdas,
                                    config=config)
            trade = curve.tradeoff(min_diversity_gain=0.20, max_accuracy_loss=0.05)
            rows.append({
                "penalty": penalty, "pool": pool, "meets_target": trade.meets_target,
                "best_lambda": trade.best_lambda,
                "lambda, ild_gain, ndcg_loss": [
                    [c["mmr_lambda"], round(c["diversity_gain"], 4), round(c["accuracy_loss"], 4)]
                    for c in trade.changes
                ],
            })
    return rows


def cap_example(args, scores, held_out, similarity, popularity, config, best_lambda) -> dict:
    """The same lists with no movie going to more than `cap-share` of the customers."""
    cap = math.ceil(args.cap_share * scores.n_customers)
    result = {"cap_customers_per_movie": cap, "runs": []}
    for lam in sorted({0.0, best_lambda if best_lambda is not None else 0.3}):
        for offer_cap in (None, cap):
            run_config = RerankConfig(k=config.k, mmr_lambda=lam, pool_size=None,
                                      offer_cap=offer_cap, penalty=config.penalty)
            started = time.perf_counter()
            recs = recommend(scores, run_config, similarity)
            seconds = time.perf_counter() - started
            exposure = recs.exposure()
            result["runs"].append({
                "mmr_lambda": lam, "offer_cap": offer_cap, "seconds": round(seconds, 3),
                "max_customers_per_movie": int(exposure.max()),
                "movies_at_cap": int((exposure == cap).sum()) if offer_cap else None,
                "empty_slots": int((recs.positions < 0).sum()),
                **evaluate(recs, held_out, similarity, popularity).to_dict(),
            })
    result["note"] = ("pool = every candidate here, so capped customers can move down to "
                      "less-scored movies instead of running out")
    return result


def audience_example(rows: pd.DataFrame, scores: ScoreMatrix) -> dict:
    """Single-offer view: who the top 10 % of customers for the most-scored movie leaves out."""
    column = int(np.nanargmax(np.nanmean(scores.values, axis=0)))
    profiles = rows.drop_duplicates("user").set_index("user").loc[scores.customers]
    frame = profiles[["age", "gender", "occupation"]].reset_index(drop=True)
    score = scores.values[:, column]
    # Customers who already rated the movie are not its audience: below every candidate.
    frame["score"] = np.where(np.isnan(score), np.nanmin(score) - 1.0, score)
    result = audience_diversity(frame, AudienceConfig(top_share=0.1, max_groups=8))
    title = rows.loc[rows["item"] == scores.offers[column], "title"].iloc[0]
    summary = result.to_dict()
    return {
        "movie": title,
        "audience_size": summary["audience_size"],
        "base_size": summary["base_size"],
        "divergence": {a["attribute"]: round(a["js_divergence"], 4)
                       for a in summary["attributes"]},
        "flagged": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in group.items()
             if k in ("attribute", "group", "base_share", "audience_share", "ratio", "flag")}
            for group in summary["flagged"]
        ],
    }


if __name__ == "__main__":
    main()
