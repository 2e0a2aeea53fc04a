"""One person against every item of a catalogue, with a LightGBM model, exactly and fast.

A next-best-offer request scores one customer with every offer: n rows that share the
customer's columns. Walking each tree for each row costs n x trees node visits, far more
than a request may spend. But a tree's leaf for a (person, item) row is the only leaf
whose path both halves agree with: the splits on the person's columns and those on the
item's columns. So the work is split in two:

* once per catalogue (``ItemScorer``): for every tree, which of its leaves each item's
  splits allow. Items with the same set share a code; the sets are kept as bit masks;
* per person: which leaves of every tree the person's splits allow (one vectorised pass
  over the nodes and the leaves' paths), as one mask per tree; then for each item set the
  single leaf both allow and its value, and each item's score is the sum over the trees of
  its set's value, one gather (once per distinct combination of sets, which items share).

The decisions are LightGBM's own (``NumericalDecision`` and ``CategoricalDecision``:
missing values by ``missing_type`` and ``default_left``, a categorical value that is
missing or negative goes right), read from the booster's dump, and the inputs are encoded
as the model's ``_typed`` and LightGBM's reading of a pandas frame encode them, so the
scores equal the model's ``predict_proba`` on the joined rows (the tests compare them on
random rows with missing and unseen values).

Models it knows: ``DistilledScorer`` (the fast scorer), a LightGBM ``TabularBaseline``,
and ``OutOfSample`` over them (the cross-fitted fold models for the customers a model
learned from). Anything else, or trees of more than 64 leaves: ``factored`` returns None
and the caller scores the joined rows as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# LightGBM's zero threshold for missing_type "Zero" (kZeroThreshold).
_ZERO = 1e-35
_NONE, _ZERO_MISSING, _NAN_MISSING = 0, 1, 2
_MISSING_TYPES = {"None": _NONE, "Zero": _ZERO_MISSING, "NaN": _NAN_MISSING}
MAX_LEAVES = 64


class NotFactorable(Exception):
    """The model is not one this module can split into person and item halves."""


@dataclass
class _Forest:
    """The booster's trees as flat arrays: every split node of every tree, every leaf."""

    feature: np.ndarray  # per node: the feature's index
    threshold: np.ndarray  # per node: the numeric threshold (NaN for categorical)
    categorical: np.ndarray  # per node: a categorical split
    left_categories: list[frozenset[int]]  # per node: the categories that go left
    default_left: np.ndarray  # per node
    missing: np.ndarray  # per node: _NONE, _ZERO_MISSING or _NAN_MISSING
    leaf_tree: np.ndarray  # per leaf: its tree
    leaf_bit: np.ndarray  # per leaf: its bit in its tree's mask (uint64)
    leaf_value: np.ndarray  # per leaf
    tree_first_leaf: np.ndarray  # per tree: its first leaf's index
    # The path of every leaf, flat: the leaf, the node, whether the path goes left there.
    path_leaf: np.ndarray
    path_node: np.ndarray
    path_left: np.ndarray

    @property
    def trees(self) -> int:
        return len(self.tree_first_leaf)


def _forest(booster: Any) -> _Forest:
    # The trees a prediction uses: up to the best iteration where early stopping found one.
    dump = booster.dump_model()
    nodes: dict[str, list[Any]] = {
        k: [] for k in ("feature", "threshold", "categorical", "left", "default_left", "missing")
    }
    leaves: dict[str, list[Any]] = {k: [] for k in ("tree", "bit", "value")}
    paths: dict[str, list[int]] = {"leaf": [], "node": [], "left": []}
    first_leaf: list[int] = []

    def walk(tree: int, node: dict[str, Any], path: list[tuple[int, bool]]) -> None:
        if "leaf_value" in node or "split_index" not in node:
            leaf = len(leaves["tree"])
            bit = leaf - first_leaf[tree]
            if bit >= MAX_LEAVES:
                raise NotFactorable(f"a tree has more than {MAX_LEAVES} leaves")
            leaves["tree"].append(tree)
            leaves["bit"].append(1 << bit)
            leaves["value"].append(float(node.get("leaf_value", 0.0)))
            for index, left in path:
                paths["leaf"].append(leaf)
                paths["node"].append(index)
                paths["left"].append(left)
            return
        index = len(nodes["feature"])
        nodes["feature"].append(int(node["split_feature"]))
        categorical = node["decision_type"] == "=="
        nodes["categorical"].append(categorical)
        if categorical:
            nodes["threshold"].append(math.nan)
            nodes["left"].append(frozenset(int(c) for c in str(node["threshold"]).split("||")))
        elif node["decision_type"] == "<=":
            nodes["threshold"].append(float(node["threshold"]))
            nodes["left"].append(frozenset())
        else:
            raise NotFactorable(f"unknown split {node['decision_type']!r}")
        nodes["default_left"].append(bool(node["default_left"]))
        nodes["missing"].append(_MISSING_TYPES[node["missing_type"]])
        walk(tree, node["left_child"], [*path, (index, True)])
        walk(tree, node["right_child"], [*path, (index, False)])

    for tree, info in enumerate(dump["tree_info"]):
        first_leaf.append(len(leaves["tree"]))
        walk(tree, info["tree_structure"], [])
    return _Forest(
        feature=np.array(nodes["feature"], dtype=np.int64),
        threshold=np.array(nodes["threshold"], dtype=np.float64),
        categorical=np.array(nodes["categorical"], dtype=bool),
        left_categories=nodes["left"],
        default_left=np.array(nodes["default_left"], dtype=bool),
        missing=np.array(nodes["missing"], dtype=np.int8),
        leaf_tree=np.array(leaves["tree"], dtype=np.int64),
        leaf_bit=np.array(leaves["bit"], dtype=np.uint64),
        leaf_value=np.array(leaves["value"], dtype=np.float64),
        tree_first_leaf=np.array(first_leaf, dtype=np.int64),
        path_leaf=np.array(paths["leaf"], dtype=np.int64),
        path_node=np.array(paths["node"], dtype=np.int64),
        path_left=np.array(paths["left"], dtype=bool),
    )


def _goes_left(forest: _Forest, nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """LightGBM's decision at ``nodes`` for the feature values ``values`` (one per node, or
    nodes x rows): True where the row goes to the left child."""
    shape = (-1,) + (1,) * (values.ndim - 1)
    threshold = forest.threshold[nodes].reshape(shape)
    missing = forest.missing[nodes].reshape(shape)
    default_left = forest.default_left[nodes].reshape(shape)
    nan = np.isnan(values)
    numeric = np.where(nan & (missing != _NAN_MISSING), 0.0, values)
    is_missing = ((missing == _ZERO_MISSING) & (np.abs(numeric) <= _ZERO)) | (
        (missing == _NAN_MISSING) & np.isnan(numeric)
    )
    with np.errstate(invalid="ignore"):
        left = np.where(is_missing, default_left, numeric <= threshold)
    positions = np.flatnonzero(forest.categorical[nodes])
    if not len(positions):
        return left
    # A category goes left when the node lists it; missing or negative goes right.
    codes = values[positions]
    codes = np.where(np.isnan(codes) | (codes < 0), -1, codes).astype(np.int64)
    size = int(codes.max(initial=-1)) + 2
    for position, node_codes in zip(positions, codes, strict=True):
        goes = np.zeros(size, dtype=bool)  # the last place: code -1
        listed = [c for c in forest.left_categories[nodes[position]] if c < size - 1]
        goes[listed] = True
        left[position] = goes[node_codes]
    return left


@dataclass(frozen=True)
class _Paths:
    """Path entries of one half's splits, grouped leaf by leaf (once per model)."""

    nodes: np.ndarray  # per entry: its node
    goes_left: np.ndarray  # per entry: whether the leaf's path goes left there
    leaves: np.ndarray  # the leaves with entries
    starts: np.ndarray  # per such leaf: where its entries start

    @classmethod
    def of(cls, forest: _Forest, entries: np.ndarray) -> _Paths:
        leaves, starts = np.unique(forest.path_leaf[entries], return_index=True)
        return cls(forest.path_node[entries], forest.path_left[entries], leaves, starts)


def _allowed_leaves(forest: _Forest, paths: _Paths, left: np.ndarray) -> np.ndarray:
    """Per leaf (x rows, as ``left``): whether every decision at the half's path entries
    ``paths`` agrees with the leaf's path; ``left``: the decision at each entry's node. A
    leaf without such entries is allowed."""
    shape = (len(forest.leaf_value), *left.shape[1:])
    allowed = np.ones(shape, dtype=bool)
    if not len(paths.nodes):
        return allowed
    wrong = left != paths.goes_left.reshape((-1,) + (1,) * (left.ndim - 1))
    allowed[paths.leaves] = ~np.logical_or.reduceat(wrong, paths.starts, axis=0)
    return allowed


def _masks(forest: _Forest, allowed: np.ndarray) -> np.ndarray:
    """Per tree (x rows): the bits of the allowed leaves."""
    bits = forest.leaf_bit.reshape((-1, 1)) if allowed.ndim == 2 else forest.leaf_bit
    chosen = np.where(allowed, bits, np.uint64(0))
    return np.bitwise_or.reduceat(chosen, forest.tree_first_leaf, axis=0)


@dataclass
class _Encoder:
    """A model's columns as LightGBM reads them from the model's typed frame: a category's
    position among the training categories (missing or unseen: NaN), numbers as floats."""

    columns: list[str]
    categories: dict[str, dict[str, int]]

    def frame(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)))
        for j, column in enumerate(self.columns):
            values = frame[column] if column in frame else pd.Series(np.nan, index=frame.index)
            if column in self.categories:
                index = self.categories[column]
                codes = [index.get(v) for v in values.astype(str)]
                out[:, j] = [math.nan if c is None else c for c in codes]
            else:
                out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def row(self, values: dict[str, Any]) -> np.ndarray:
        out = np.empty(len(self.columns))
        for j, column in enumerate(self.columns):
            value = values.get(column, math.nan)
            if column in self.categories:
                code = self.categories[column].get(str(value))
                out[j] = math.nan if code is None else code
            else:
                out[j] = math.nan if value is None else float(value)
        return out


class _TreeHalves:
    """One LightGBM model split into its person and item halves over a fixed item frame:
    ``raw(person)`` is the model's raw score of every item joined with the person."""

    def __init__(self, booster: Any, encoder: _Encoder, items: pd.DataFrame):
        self.encoder = encoder
        forest = _forest(booster)
        self.forest = forest
        item_feature = np.array([c in items.columns for c in encoder.columns], dtype=bool)
        on_item = item_feature[forest.feature[forest.path_node]]
        self._person_paths = _Paths.of(forest, np.flatnonzero(~on_item))
        # The person's split nodes, and each path entry's place among them.
        self._person_nodes, entry_node = np.unique(self._person_paths.nodes, return_inverse=True)
        self._entry_node = entry_node.reshape(-1)
        self._person_features = forest.feature[self._person_nodes]
        # The person's categorical splits by table: per feature, (category code, node) ->
        # goes left; the last row for a missing or unseen category (which goes right).
        self._category_tables: list[tuple[int, np.ndarray, np.ndarray]] = []
        categorical = forest.categorical[self._person_nodes]
        for feature in np.unique(self._person_features[categorical]):
            positions = np.flatnonzero(categorical & (self._person_features == feature))
            nodes = self._person_nodes[positions]
            size = max(
                len(encoder.categories.get(encoder.columns[feature], {})),
                *(max(forest.left_categories[node], default=0) + 1 for node in nodes),
            )
            table = np.zeros((size + 1, len(positions)), dtype=bool)
            for column, node in enumerate(nodes):
                table[sorted(forest.left_categories[node]), column] = True
            self._category_tables.append((int(feature), positions, table))
        self._numeric = np.flatnonzero(~categorical)
        # The item half, once: the leaves each item's splits allow, per tree, as bit masks.
        encoded = encoder.frame(items)
        item_entries = np.flatnonzero(on_item)
        item_nodes = forest.path_node[item_entries]
        unique_nodes, where = np.unique(item_nodes, return_inverse=True)
        left_at_node = _goes_left(
            forest, unique_nodes, encoded[:, forest.feature[unique_nodes]].T.copy()
        )
        allowed = _allowed_leaves(forest, _Paths.of(forest, item_entries), left_at_node[where])
        item_masks = _masks(forest, allowed)  # trees x items
        # Items of a tree that allow the same leaves share one code: the person's pass works
        # on the distinct masks only.
        masks: list[np.ndarray] = []
        tree_of_mask: list[np.ndarray] = []
        codes = np.empty((len(items), forest.trees), dtype=np.int64)
        offset = 0
        for tree in range(forest.trees):
            distinct, code = np.unique(item_masks[tree], return_inverse=True)
            masks.append(distinct)
            tree_of_mask.append(np.full(len(distinct), tree))
            codes[:, tree] = offset + code.reshape(-1)
            offset += len(distinct)
        self._mask = np.concatenate(masks) if masks else np.zeros(0, np.uint64)
        self._mask_tree = np.concatenate(tree_of_mask) if masks else np.zeros(0, np.int64)
        # Items whose codes agree in every tree get the same score: the person's pass sums
        # the trees for each distinct row of codes once (MovieLens: about 200 rows for 1,682
        # movies).
        self._codes, self._row_of_item = np.unique(codes, axis=0, return_inverse=True)
        self._row_of_item = self._row_of_item.reshape(-1)
        self.items = len(items)

    def raw(self, person: dict[str, Any]) -> np.ndarray:
        forest = self.forest
        if not self.items:
            return np.zeros(0)
        row = self.encoder.row(person)
        left = np.empty(len(self._person_nodes), dtype=bool)
        numeric = self._person_nodes[self._numeric]
        left[self._numeric] = _goes_left(forest, numeric, row[forest.feature[numeric]])
        for feature, positions, table in self._category_tables:
            value = row[feature]
            code = int(value) if not np.isnan(value) and 0 <= value < len(table) - 1 else -1
            left[positions] = table[code]
        allowed = _allowed_leaves(forest, self._person_paths, left[self._entry_node])
        person_mask = _masks(forest, allowed)  # per tree
        both = self._mask & person_mask[self._mask_tree]
        # Exactly one leaf of the tree is allowed by both halves: its bit gives its place.
        place = np.log2(both.astype(np.float64)).astype(np.int64)
        values = forest.leaf_value[forest.tree_first_leaf[self._mask_tree] + place]
        return values[self._codes].sum(axis=1)[self._row_of_item]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _halves(model: Any, items: pd.DataFrame) -> _TreeHalves:
    """The halves of a LightGBM model of this package: a student (a regressor of the
    teacher's logits) or a baseline classifier; the probability of either is the sigmoid of
    the raw score."""
    from recengine.baseline import TabularBaseline
    from recengine.score import DistilledScorer

    lightgbm = isinstance(model, DistilledScorer) or (
        isinstance(model, TabularBaseline) and model.config.kind == "lightgbm"
    )
    if not lightgbm:
        raise NotFactorable(type(model).__name__)
    positions = {
        column: {str(value): code for code, value in enumerate(values)}
        for column, values in model.categories_.items()
    }
    encoder = _Encoder(list(model.columns_), positions)
    return _TreeHalves(model.model_.booster_, encoder, items)


@dataclass
class ItemScorer:
    """``model.predict_proba(items.assign(**person))`` for one person at a time, without
    building the joined rows (see the module docstring)."""

    scorer: _TreeHalves
    # OutOfSample: the fold models and their calibration (slope, intercept).
    folds: list[_TreeHalves] | None = None
    calibration: tuple[float, float] = (1.0, 0.0)
    fold_column: str | None = None
    not_learned: int = -1

    def predict_proba(self, person: dict[str, Any]) -> np.ndarray:
        value = person.get(self.fold_column) if self.fold_column else None
        # As OutOfSample reads the column: missing (None, NaN) is a customer it never learned.
        fold = None if value is None or pd.isna(value) else int(value)
        if self.folds is None or fold is None or fold == self.not_learned:
            return _sigmoid(self.scorer.raw(person))
        from recengine.crossfit import calibrated

        return calibrated(_sigmoid(self.folds[fold].raw(person)), self.calibration)


def factored(model: Any, items: pd.DataFrame) -> ItemScorer | None:
    """An ``ItemScorer`` of ``model`` over the rows ``items`` (the item columns), or None
    for a model it cannot split (the caller then scores the joined rows)."""
    from recengine.crossfit import FOLD_COLUMN, NOT_LEARNED, OutOfSample

    try:
        if isinstance(model, OutOfSample):
            scorer = _halves(model.scorer, items)
            folds = [_halves(m, items) for m in model.crossfit.models_]
            return ItemScorer(
                scorer,
                folds=folds,
                calibration=getattr(model.crossfit, "calibration_", (1.0, 0.0)),
                fold_column=FOLD_COLUMN,
                not_learned=NOT_LEARNED,
            )
        return ItemScorer(_halves(model, items))
    except NotFactorable:
        return None
