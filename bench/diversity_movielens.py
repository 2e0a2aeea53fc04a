"""Accuracy versus diversity of offer lists on MovieLens 100K, JSON on stdout.

    .venv/bin/python bench/diversity_movielens.py                  # settings chosen on validation
    .venv/bin/python bench/diversity_movielens.py --method dpp --similarity collaborative --pool 0
    .venv/bin/python bench/diversity_movielens.py --model click     # the product's click model

Split: each customer's latest 20 % of ratings are held out (recengine.data.split_by_user);
a held-out rating >= 4 is a click. Candidates: every movie the customer did not rate in the
training part. Relevance (`--model`): a model fitted on the training part only.

- "ease" (default): a linear item-to-item model with a closed form (Steck, 2019),
- "click": the product's click model as it is served for millions of rows, the LightGBM
  baseline (recengine.baseline.TabularBaseline) on the features of bench/click_model.py's
  MovieLens task: customer fields, offer genres, smoothed click rate and count of the
  customer and of the offer (add_click_rates over the training rows); trained on the rated
  movies (rating >= 4 = click) plus sampled unrated movies as non-clicks. Scoring all
  ~1.6 M customer x movie pairs with the BERT model does not fit a 2-core bench. Sampled
  non-clicks per rating (`--click-negatives`): 4, chosen on the validation part only
  (NDCG@10 there 0.098 with 4 against 0.061 with click_model.py's 0.5, most-popular 0.071).
  It takes minutes (fitted twice: validation and test), so it is fitted only with
  `--model click`. Its lists beat most-popular but reach about half of EASE's NDCG@10 (no
  customer x movie history beyond the two rates): EASE stays the default and is measured
  beside it,
- "popularity_genre": movie click popularity plus the customer's genre affinity.

"relevance_models_compared" puts every fitted model's lists at lambda 0 next to
most-popular, and each model's curve with the chosen re-ranking and its check.

Movie similarity (`--similarity`; the re-ranking and the intra-list diversity use the same
one):

- "text": cosine of sentence-encoder embeddings of each movie as the product writes an offer
  ("movie Toy Story (1995) | genres animation children's comedy"): offers that look alike to
  the customer, which is what a marketer means by a repetitive list,
- "genres": Jaccard over genre sets (coarse: 18 genres, most movies have one or two),
- "collaborative": cosine of offer vectors from a truncated SVD of the training clicks
  (offers the same customers take), fitted on the training part only.

Re-ranking (`--method`): MMR with the max or mean similarity penalty (`--penalty`), or the
greedy DPP (recengine.diversity), each from the 100 best-scored candidates or all of them
(`--pool`, 0 = all), each with flat relevance or relevance weighed by the slot's NDCG
discount (`--discount`: the top of a list stays relevance-led, variety comes in lower
down). Every curve is measured on one fixed lambda grid, 0, 0.1, ..., 0.9.

The defaults are chosen on a validation part carved from the training ratings (each
customer's latest 20 % of them; relevance and collaborative vectors refitted on the rest):
the re-ranker x similarity x pool with the largest intra-list diversity gain within 5 % NDCG
loss. The test part is then measured once with that choice. The baseline is lambda 0 (pure
relevance); each larger lambda is compared with it, including the target "intra-list
diversity at least 20 % higher for at most 5 % NDCG loss". "variants" repeats the check on
the test part for every similarity x re-ranker (at the pool validation chose for the pair)
and measures its lists in all three spaces. A per-offer cap example and an
audience-diversity example (who the top 10 % for one movie leaves out) close the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.click_model import add_click_rates  # noqa: E402
from recengine.audience_diversity import AudienceConfig, audience_diversity  # noqa: E402
from recengine.baseline import BaselineConfig, TabularBaseline  # noqa: E402
from recengine.data import sample_negatives, split_by_user  # noqa: E402
from recengine.datasets import DatasetMissing, load_movielens  # noqa: E402
from recengine.diversity import (  # noqa: E402
    OfferSimilarity,
    RerankConfig,
    ScoreMatrix,
    click_matrix,
    recommend,
)
from recengine.embeddings import collaborative_embeddings, offer_text_embeddings  # noqa: E402
from recengine.list_metrics import (  # noqa: E402
    CurvePoint,
    DiversityCurve,
    evaluate,
    intra_list_diversity,
    offer_popularity,
)
from recengine.serialize import SerializeConfig, TextSerializer  # noqa: E402

MODELS = {
    "click": "the product's click model, fast production path: recengine.baseline."
    "TabularBaseline (LightGBM) on the click-model features of bench/click_model.py's "
    "MovieLens task (customer age, gender, occupation; offer genres; smoothed click "
    "rate and count of the customer and of the offer in the training rows), trained "
    "on the training part's rated movies (rating >= 4 = click) plus --click-negatives "
    "sampled unrated movies per rating as non-clicks, early stopping on 10 % of those "
    "rows; score = P(click) of every (customer, unrated movie) pair",
    "ease": "EASE: item-to-item weights in closed form on the training clicks "
    "(L2 penalty --ease-l2), score = clicks x weights",
    "popularity_genre": "z-score of log click popularity + z-score of the customer's share of "
    "training clicks in the movie's genres",
}
SIMILARITIES = {
    "text": "cosine of all-MiniLM-L6-v2 embeddings (mean pooled, L2-normalised) of the movie "
    "as the product writes an offer: title and genres",
    "genres": "Jaccard over genre sets",
    "collaborative": "cosine of offer vectors from a truncated SVD (--svd-dims) of the "
    "training click matrix",
}


# The diversity weights every curve is measured at, fixed before any run: a uniform grid,
# lambda 0 (pure relevance) being the baseline of each comparison.
LAMBDAS = tuple(round(0.1 * step, 1) for step in range(10))
# Re-rankings compared: MMR with either penalty, and the DPP, each with flat relevance and
# with relevance weighed by the slot's NDCG discount (RerankConfig.discount).
RERANKERS = {
    "mmr_max": {"method": "mmr", "penalty": "max", "discount": False},
    "mmr_mean": {"method": "mmr", "penalty": "mean", "discount": False},
    # The DPP has no penalty kind; "max" is unused.
    "dpp": {"method": "dpp", "penalty": "max", "discount": False},
    "mmr_max_discount": {"method": "mmr", "penalty": "max", "discount": True},
    "mmr_mean_discount": {"method": "mmr", "penalty": "mean", "discount": True},
    "dpp_discount": {"method": "dpp", "penalty": "max", "discount": True},
}
# Pools the re-ranking may choose from: the 100 best-scored candidates, or all of them.
POOLS = (100, None)
TARGET = {"min_diversity_gain": 0.20, "max_accuracy_loss": 0.05}
# The click model's features (bench/click_model.py's MovieLens task, tabular columns).
CUSTOMER_FIELDS = ["age", "gender", "occupation"]
CLICK_HISTORY = ["customer_click_rate", "customer_ratings", "offer_click_rate", "offer_ratings"]


@dataclasses.dataclass
class Split:
    """One train / held-out split, ready to re-rank: scores from the training part only."""

    scores: ScoreMatrix
    held_out: np.ndarray
    spaces: dict[str, OfferSimilarity]
    popularity: np.ndarray
    build_seconds: dict[str, float]
    # The other relevance models' scores on the same candidates, measured beside it.
    others: dict[str, ScoreMatrix] = dataclasses.field(default_factory=dict)
    # Seconds each relevance model took to fit and score every pair.
    model_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    # What the click model's fit reports (rows, trees, early-stopping AUC).
    click_fit: dict = dataclasses.field(default_factory=dict)
    # Curves measured so far, by similarity and settings, so none is measured twice.
    curves: dict[tuple[str, str], tuple] = dataclasses.field(default_factory=dict)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    try:
        data = load_movielens(negatives_per_rating=0)
    except DatasetMissing as missing:
        print(json.dumps({"skipped": str(missing)}))
        return
    rows = data.frame
    train, test = split_latest(rows, args.seed)
    # Validation: each customer's latest 20 % of the TRAINING ratings; the test part is not
    # looked at until every choice below is made.
    fit_part, validation = split_latest(train, args.seed)
    movies = rows.drop_duplicates("item").sort_values("item")[["item", "title", "genres"]]
    customers = np.sort(rows["user"].unique())
    genres = OfferSimilarity.from_categories(movies["genres"].tolist())
    text_started = time.perf_counter()
    text = text_similarity(movies)
    catalogue = {"text": text, "genres": genres}
    catalogue_seconds = {"text": round(time.perf_counter() - text_started, 2), "genres": 0.0}

    validation_started = time.perf_counter()
    valid = prepare(args, fit_part, validation, customers, movies, catalogue, catalogue_seconds)
    selection = select_on_validation(args, valid)
    validation_seconds = time.perf_counter() - validation_started
    chosen = selection["chosen"]
    method = args.method or RERANKERS[chosen["reranker"]]["method"]
    penalty = args.penalty or RERANKERS[chosen["reranker"]]["penalty"]
    discount = RERANKERS[chosen["reranker"]]["discount"] if args.discount is None else args.discount
    name = args.similarity or chosen["similarity"]
    pool = chosen["pool"] if args.pool is None else (None if args.pool == 0 else args.pool)
    config = RerankConfig(
        k=args.k, pool_size=pool, penalty=penalty, method=method, discount=discount
    )

    fit_started = time.perf_counter()
    split = prepare(args, train, test, customers, movies, catalogue, catalogue_seconds)
    fit_seconds = time.perf_counter() - fit_started
    similarity = split.spaces[name]
    variants_started = time.perf_counter()
    variants = variants_on_test(args, split, selection)
    variants_seconds = time.perf_counter() - variants_started
    curve, _ = measured_curve(split, name, config)
    trade = curve.tradeoff(**TARGET)
    most_popular = ScoreMatrix(
        np.where(np.isnan(split.scores.values), np.nan, split.popularity[None, :]),
        customers,
        split.scores.offers,
    )
    popular_lists = evaluate(
        recommend(most_popular, config), split.held_out, similarity, split.popularity
    )
    at_chosen = next(p for p in curve.points if p.mmr_lambda == chosen["mmr_lambda"])
    overridden = any(
        getattr(args, option) is not None
        for option in ("method", "penalty", "similarity", "pool", "discount")
    )

    report = {
        "settings": {
            **vars(args),
            "lambdas": list(LAMBDAS),
            "pools": list(POOLS),
            "rerankers": RERANKERS,
        },
        "default_chosen_by": (
            "validation: each customer's latest 20 % of the training ratings held out, "
            "relevance and collaborative vectors refitted on the rest; every re-ranker x "
            "similarity x pool measured on the fixed lambda grid; chosen = the largest "
            "intra-list diversity gain (in its own space) within 5 % NDCG loss. Options given "
            "on the command line override it."
        ),
        "validation": selection,
        "data": {
            "customers": len(customers),
            "movies": len(movies),
            "train_ratings": len(train),
            "held_out_ratings": len(test),
            "validation_ratings": len(validation),
            "held_out_clicks": int(split.held_out.sum()),
            "candidates_per_customer": float((~np.isnan(split.scores.values)).sum(axis=1).mean()),
            "genres": genres.categories,
        },
        "rerank": {
            "method": method,
            "penalty": penalty if method == "mmr" else None,
            "pool": pool,
            "discount": discount,
        },
        "similarity": {
            "name": name,
            "how": SIMILARITIES[name],
            "build_seconds": split.build_seconds[name],
        },
        "relevance_model": {
            "name": args.model,
            "how": MODELS[args.model],
            "fit_and_score_seconds": split.model_seconds[args.model],
            **({"click_model_fit": split.click_fit} if args.model == "click" else {}),
        },
        "relevance_models_compared": compare_models(
            args, split, name, config, popular_lists.to_dict()
        ),
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
            "ild_needed_for_target": 1.2 * trade.baseline["intra_list_diversity"],
            # The operating point a marketer would be offered: validation's lambda, once.
            "at_lambda_chosen_on_validation": None
            if overridden
            else {
                "mmr_lambda": chosen["mmr_lambda"],
                "ild_gain": relative(
                    at_chosen.metrics.intra_list_diversity, trade.baseline["intra_list_diversity"]
                ),
                "ndcg_loss": -relative(at_chosen.metrics.ndcg, trade.baseline["ndcg"]),
            },
            **space_reference(similarity),
        },
        "variants": variants,
        "offer_cap": cap_example(
            args,
            split,
            similarity,
            config,
            trade.best_lambda if overridden else chosen["mmr_lambda"],
        ),
        "audience_diversity": audience_example(rows, split.scores),
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_by_part": {
            "text_embeddings": catalogue_seconds["text"],
            "validation": round(validation_seconds, 1),
            "test_relevance_models_fit": round(fit_seconds, 1),
            "test_variants": round(variants_seconds, 1),
        },
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(report, indent=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="ease")
    parser.add_argument(
        "--method",
        choices=["mmr", "dpp"],
        default=None,
        help="re-ranking (default: the one chosen on the validation part)",
    )
    parser.add_argument(
        "--similarity",
        choices=list(SIMILARITIES),
        default=None,
        help="movie similarity for re-ranking and intra-list diversity "
        "(default: the one chosen on the validation part)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=None,
        help="best-scored candidates per customer the re-ranking chooses "
        "from, 0 = all (default: chosen on the validation part)",
    )
    parser.add_argument(
        "--penalty",
        choices=["max", "mean"],
        default=None,
        help="MMR penalty: closest listed movie (classic) or mean similarity "
        "(default: chosen on the validation part)",
    )
    parser.add_argument(
        "--discount",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="weigh relevance by each slot's NDCG discount (default: chosen "
        "on the validation part)",
    )
    parser.add_argument(
        "--svd-dims",
        type=int,
        default=64,
        help="width of the collaborative offer vectors (fixed, not tuned)",
    )
    parser.add_argument(
        "--click-negatives",
        type=float,
        default=4.0,
        help="click model: sampled unrated movies per rated one, as "
        "non-clicks (chosen on the validation part, see the docstring)",
    )
    parser.add_argument(
        "--ease-l2",
        type=float,
        default=200.0,
        help="EASE L2 penalty (fixed, not tuned on the held-out data)",
    )
    parser.add_argument("--k", type=int, default=10, help="offers per list")
    parser.add_argument(
        "--cap-share",
        type=float,
        default=0.05,
        help="cap example: most customers per movie, as a share of customers",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def split_latest(rows: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each customer's latest 20 % of ratings held out, the rest kept for fitting."""
    split = split_by_user(
        rows["user"].to_numpy(), rows["time"].to_numpy(), test_size=0.2, val_size=0.0, seed=seed
    )
    return rows.iloc[split.train], rows.iloc[split.test]


def text_similarity(movies: pd.DataFrame) -> OfferSimilarity:
    """Cosine of sentence-encoder embeddings of each movie as the product writes an offer."""
    serializer = TextSerializer(
        SerializeConfig(
            fields=["title", "genres"],
            labels={"title": "movie"},
            numeric_tower=False,
        )
    ).fit(movies)
    return OfferSimilarity.from_embeddings(offer_text_embeddings(serializer.texts(movies)))


def prepare(
    args: argparse.Namespace,
    fit_part: pd.DataFrame,
    held_out_part: pd.DataFrame,
    customers: np.ndarray,
    movies: pd.DataFrame,
    catalogue: dict[str, OfferSimilarity],
    catalogue_seconds: dict[str, float],
) -> Split:
    """Scores and collaborative vectors from `fit_part` only; clicks of `held_out_part`.
    Candidates: every movie the customer did not rate in `fit_part`."""
    offers = movies["item"].to_numpy()
    rated = click_matrix(fit_part, customers, offers, customer="user", offer="item")
    liked = click_matrix(fit_part[fit_part["click"] == 1], customers, offers, "user", "item")
    held_out = click_matrix(
        held_out_part[held_out_part["click"] == 1], customers, offers, "user", "item"
    )
    started = time.perf_counter()
    collaborative = OfferSimilarity.from_embeddings(
        collaborative_embeddings(liked, dimensions=args.svd_dims, seed=args.seed)
    )
    seconds = {**catalogue_seconds, "collaborative": round(time.perf_counter() - started, 2)}
    matrices, model_seconds, click_fit = {}, {}, {}
    # The click model takes minutes on 2 cores: fitted only when it is the relevance model.
    for model in [m for m in MODELS if m != "click" or args.model == "click"]:
        started = time.perf_counter()
        if model == "click":
            relevance, click_fit = click_model_scores(args, fit_part, customers, movies)
        else:
            relevance = fit_scores(model, args, liked, catalogue["genres"].features)
        model_seconds[model] = round(time.perf_counter() - started, 2)
        matrices[model] = ScoreMatrix(np.where(rated, np.nan, relevance), customers, offers)
    scores = matrices.pop(args.model)
    return Split(
        scores,
        held_out,
        {**catalogue, "collaborative": collaborative},
        offer_popularity(rated),
        seconds,
        others=matrices,
        model_seconds=model_seconds,
        click_fit=click_fit,
    )


def rerank_config(args: argparse.Namespace, reranker: str, pool: int | None) -> RerankConfig:
    return RerankConfig(k=args.k, pool_size=pool, **RERANKERS[reranker])


def select_on_validation(args: argparse.Namespace, valid: Split) -> dict:
    """Every re-ranker x similarity x pool on the validation part; the chosen one has the
    largest ILD gain within 5 % NDCG loss. A curve stops at the first lambda losing more
    than 5 % NDCG (larger lambdas trade relevance away further; this keeps the bench short)."""
    rows = []
    for name, similarity in valid.spaces.items():
        for reranker in RERANKERS:
            for pool in POOLS:
                config = rerank_config(args, reranker, pool)
                base = evaluate(
                    recommend(valid.scores, config, similarity), valid.held_out, similarity
                )
                best = {"mmr_lambda": 0.0, "ild_gain": 0.0, "ndcg_loss": 0.0}
                measured = []
                for lam in LAMBDAS[1:]:
                    recs = recommend(
                        valid.scores, dataclasses.replace(config, mmr_lambda=lam), similarity
                    )
                    metrics = evaluate(recs, valid.held_out, similarity)
                    point = {
                        "mmr_lambda": lam,
                        "ild_gain": round(
                            relative(metrics.intra_list_diversity, base.intra_list_diversity), 4
                        ),
                        "ndcg_loss": round(-relative(metrics.ndcg, base.ndcg), 4),
                    }
                    measured.append([lam, point["ild_gain"], point["ndcg_loss"]])
                    if point["ndcg_loss"] > TARGET["max_accuracy_loss"]:
                        break
                    if point["ild_gain"] > best["ild_gain"]:
                        best = point
                rows.append(
                    {
                        "similarity": name,
                        "reranker": reranker,
                        "pool": pool,
                        "ndcg_at_lambda_0": round(base.ndcg, 4),
                        "ild_at_lambda_0": round(base.intra_list_diversity, 4),
                        "best_within_5pct_ndcg_loss": best,
                        "meets_target": best["ild_gain"] >= TARGET["min_diversity_gain"],
                        "lambda, ild_gain, ndcg_loss": measured,
                    }
                )
    winner = max(rows, key=lambda row: row["best_within_5pct_ndcg_loss"]["ild_gain"])
    return {
        "runs": rows,
        "chosen": {
            "similarity": winner["similarity"],
            "reranker": winner["reranker"],
            "pool": winner["pool"],
            "mmr_lambda": winner["best_within_5pct_ndcg_loss"]["mmr_lambda"],
        },
    }


def compare_models(
    args: argparse.Namespace,
    split: Split,
    name: str,
    config: RerankConfig,
    popular: dict,
) -> dict:
    """On the test part: every relevance model's lists at lambda 0 beside most-popular, and
    the other models' curves with the chosen re-ranker x similarity x pool and the check."""
    result: dict = {
        "most_popular_at_lambda_0": {
            "ndcg": round(popular["ndcg"], 4),
            "intra_list_diversity": round(popular["intra_list_diversity"], 4),
        }
    }
    for model, scores in {args.model: split.scores, **split.others}.items():
        other = dataclasses.replace(split, scores=scores, curves={})
        curve, across = (
            measured_curve(split, name, config)
            if model == args.model
            else measured_curve(other, name, config)
        )
        summary = variant_summary(name, split.spaces[name], curve, across)
        base = summary["table"][0]
        result[model] = {
            "how": MODELS[model],
            "fit_and_score_seconds": split.model_seconds[model],
            "ndcg_at_lambda_0": base["ndcg"],
            "ild_at_lambda_0": base["ild"],
            "ndcg_vs_most_popular": round(relative(base["ndcg"], popular["ndcg"]), 4),
            **({"click_model_fit": split.click_fit} if model == "click" else {}),
            "with_chosen_reranking": {
                key: summary[key]
                for key in (
                    "diversity_rises",
                    "diversity_monotone",
                    "ild_20pct_higher_for_at_most_5pct_ndcg_loss",
                    "best_lambda",
                    "largest_ild_gain_within_5pct_ndcg_loss",
                )
            },
            "lambda, ndcg, ild, ild_gain, ndcg_loss": [
                [row["mmr_lambda"], row["ndcg"], row["ild"], row["ild_gain"], row["ndcg_loss"]]
                for row in summary["table"]
            ],
        }
    return result


def relative(value: float, base: float) -> float:
    return (value - base) / base if base else 0.0


def variants_on_test(args: argparse.Namespace, split: Split, selection: dict) -> dict:
    """On the test part, every similarity x re-ranker at the pool validation chose for that
    pair: its lambda table and the issue's check, in that similarity's space."""
    chosen_pool = {}
    for row in selection["runs"]:
        key = (row["similarity"], row["reranker"])
        gain = row["best_within_5pct_ndcg_loss"]["ild_gain"]
        if key not in chosen_pool or gain > chosen_pool[key][1]:
            chosen_pool[key] = (row["pool"], gain)
    result: dict[str, dict] = {}
    for name in split.spaces:
        result[name] = {}
        for reranker in RERANKERS:
            pool = chosen_pool[(name, reranker)][0]
            curve, across = measured_curve(split, name, rerank_config(args, reranker, pool))
            result[name][reranker] = {
                "pool": pool,
                **variant_summary(name, split.spaces[name], curve, across),
            }
    return result


def measured_curve(
    split: Split, name: str, config: RerankConfig
) -> tuple[DiversityCurve, dict[float, dict[str, float]]]:
    """The accuracy-vs-diversity curve with similarity `name` on the fixed lambda grid, plus
    each lambda's lists' intra-list diversity measured in every space (does variety in one
    show in the others?)."""
    key = (name, repr(dataclasses.replace(config, mmr_lambda=0.0)))
    if key in split.curves:
        return split.curves[key]
    points, across = [], {}
    for lam in LAMBDAS:
        started = time.perf_counter()
        recs = recommend(
            split.scores, dataclasses.replace(config, mmr_lambda=lam), split.spaces[name]
        )
        seconds = round(time.perf_counter() - started, 3)
        points.append(
            CurvePoint(
                lam, evaluate(recs, split.held_out, split.spaces[name], split.popularity), seconds
            )
        )
        across[lam] = {
            other: round(intra_list_diversity(recs.positions, space), 4)
            for other, space in split.spaces.items()
        }
    split.curves[key] = DiversityCurve(points, config), across
    return split.curves[key]


def variant_summary(
    name: str,
    similarity: OfferSimilarity,
    curve: DiversityCurve,
    across: dict[float, dict[str, float]],
) -> dict:
    """One curve's lambda table and the issue's check, in that similarity's space."""
    trade = curve.tradeoff(**TARGET)
    changes = {c["mmr_lambda"]: c for c in trade.changes}
    table = []
    for point in curve.points:
        change = changes.get(point.mmr_lambda, {"diversity_gain": 0.0, "accuracy_loss": 0.0})
        table.append(
            {
                "mmr_lambda": point.mmr_lambda,
                "ndcg": round(point.metrics.ndcg, 4),
                "ild": round(point.metrics.intra_list_diversity, 4),
                "ild_gain": round(change["diversity_gain"], 4),
                "ndcg_loss": round(change["accuracy_loss"], 4),
                "coverage": round(point.metrics.coverage, 4),
                "seconds": point.seconds,
                "ild_in_every_space": across[point.mmr_lambda],
            }
        )
    return {
        "how": SIMILARITIES[name],
        "table": table,
        "diversity_rises": trade.diversity_rises,
        "diversity_monotone": trade.diversity_monotone,
        "ild_20pct_higher_for_at_most_5pct_ndcg_loss": trade.meets_target,
        "best_lambda": trade.best_lambda,
        "ild_needed_for_target": round(1.2 * trade.baseline["intra_list_diversity"], 4),
        # Lambda 0 (no loss) is always a candidate, so there is always an answer.
        "largest_ild_gain_within_5pct_ndcg_loss": max(
            (row for row in table if row["ndcg_loss"] <= 0.05), key=lambda row: row["ild_gain"]
        ),
        **space_reference(similarity),
    }


def space_reference(similarity: OfferSimilarity) -> dict:
    """Where lambda 0's ILD stands in the space: random lists' expected ILD (mean pairwise
    dissimilarity of the catalogue) and the largest dissimilarity of any two movies."""
    dissimilarity = 1.0 - similarity.matrix()[np.triu_indices(similarity.n_offers, 1)]
    return {
        "ild_of_random_lists": round(float(dissimilarity.mean()), 4),
        "largest_pair_dissimilarity": round(float(dissimilarity.max()), 4),
    }


def click_model_scores(
    args: argparse.Namespace,
    fit_part: pd.DataFrame,
    customers: np.ndarray,
    movies: pd.DataFrame,
) -> tuple[np.ndarray, dict]:
    """P(click) of every customer x movie pair from the product's fast click model, trained
    on `fit_part` only: its rated movies (rating >= 4 = click) plus sampled unrated movies as
    non-clicks, with the click-model task's features (bench/click_model.py)."""
    rated = fit_part[["user", "item", "click"]]
    negatives = sample_negatives(
        rated, movies["item"].to_numpy(), args.click_negatives, seed=args.seed
    ).assign(click=0)
    pairs = pd.concat([rated, negatives], ignore_index=True)
    profiles = fit_part.drop_duplicates("user").set_index("user")[CUSTOMER_FIELDS]
    grid = pd.DataFrame(
        {
            "user": np.repeat(customers, len(movies)),
            "item": np.tile(movies["item"].to_numpy(), len(customers)),
        }
    )
    # Training rows first, then every pair to score: the history features come from the
    # training rows only (add_click_rates counts the rows it is given as training).
    frame = pd.concat([pairs, grid], ignore_index=True)
    frame = frame.join(profiles, on="user").join(movies.set_index("item")[["genres"]], on="item")
    y = np.concatenate([pairs["click"].to_numpy(), np.zeros(len(grid), dtype=np.int64)])
    frame = add_click_rates(frame, y, np.arange(len(pairs)))
    rng = np.random.default_rng(args.seed)
    stopping = rng.random(len(pairs)) < 0.1
    train, stop = np.flatnonzero(~stopping), np.flatnonzero(stopping)
    columns = CUSTOMER_FIELDS + ["genres"] + CLICK_HISTORY
    model = TabularBaseline(BaselineConfig(columns=columns, threads=2, seed=args.seed)).fit(
        frame.iloc[train], y[train], frame.iloc[stop], y[stop]
    )
    fit = {
        "training_rows": len(train),
        "clicks": int(y[train].sum()),
        "early_stopping_rows": len(stop),
        "trees": int(model.model_.best_iteration_ or 0),
        "early_stopping_auc": round(
            float(roc_auc_score(y[stop], model.predict_proba(frame.iloc[stop]))), 4
        ),
    }
    scores = model.predict_proba(frame.iloc[len(pairs) :])
    return scores.reshape(len(customers), len(movies)), fit


def fit_scores(
    model: str, args: argparse.Namespace, liked: np.ndarray, genres: np.ndarray
) -> np.ndarray:
    """Relevance of every customer x movie pair from the training clicks only."""
    clicks = liked.astype(np.float64)
    if model == "ease":
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


def cap_example(
    args: argparse.Namespace,
    split: Split,
    similarity: OfferSimilarity,
    config: RerankConfig,
    lam: float | None,
) -> dict:
    """The same lists, at lambda 0 and `lam`, with no movie going to more than `cap-share`
    of the customers."""
    cap = math.ceil(args.cap_share * split.scores.n_customers)
    result: dict = {"cap_customers_per_movie": cap, "method": config.method, "runs": []}
    for weight in sorted({0.0, lam if lam is not None else 0.3}):
        for offer_cap in (None, cap):
            run_config = dataclasses.replace(
                config, mmr_lambda=weight, pool_size=None, offer_cap=offer_cap
            )
            started = time.perf_counter()
            recs = recommend(split.scores, run_config, similarity)
            seconds = time.perf_counter() - started
            exposure = recs.exposure()
            result["runs"].append(
                {
                    "mmr_lambda": weight,
                    "offer_cap": offer_cap,
                    "seconds": round(seconds, 3),
                    "max_customers_per_movie": int(exposure.max()),
                    "movies_at_cap": int((exposure == cap).sum()) if offer_cap else None,
                    "empty_slots": int((recs.positions < 0).sum()),
                    **evaluate(recs, split.held_out, similarity, split.popularity).to_dict(),
                }
            )
    result["note"] = (
        "pool = every candidate here, so capped customers can move down to "
        "less-scored movies instead of running out"
    )
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
        "divergence": {a["attribute"]: round(a["js_divergence"], 4) for a in summary["attributes"]},
        "flagged": [
            {
                k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in group.items()
                if k in ("attribute", "group", "base_share", "audience_share", "ratio", "flag")
            }
            for group in summary["flagged"]
        ],
    }


if __name__ == "__main__":
    main()
