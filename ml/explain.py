"""Exact LightGBM contributions (pred_contrib) for many rows, computed once per distinct decision pattern.

TreeSHAP costs tens of microseconds a row (about 65 s for a million leads here). But a booster's every output,
contributions included, depends on a row only through the side of each split threshold its values fall on.
Rows that agree on every side are the same row to the booster, and leads repeat a lot (no reply yet, the
same counts, the same days since). So each row is reduced to a key per feature (which interval between the
model's thresholds, or missing, or zero), contributions are computed for one row per distinct key, and
copied to the rest. The result is the same to the last bit as pred_contrib on every row.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pandas as pd

# LightGBM treats |x| <= kZeroThreshold as zero (missing, under missing_type "Zero").
_ZERO = 1e-35


def tree_splits(booster: lgb.Booster) -> list[list[dict]]:
    """Per tree, its internal nodes (LightGBM's dump: split_feature, threshold, decision_type, ...)."""
    trees = []
    for tree in booster.dump_model()["tree_info"]:
        nodes, stack = [], [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                nodes.append(node)
                stack.extend((node["left_child"], node["right_child"]))
        trees.append(nodes)
    return trees


def split_thresholds(booster: lgb.Booster, trees: list[list[dict]] | None = None) -> dict[int, np.ndarray]:
    """Feature index -> the sorted numerical thresholds the model splits it at (categorical splits excluded)."""
    found: dict[int, set[float]] = {}
    for nodes in tree_splits(booster) if trees is None else trees:
        for node in nodes:
            if node["decision_type"] == "<=":
                found.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
    return {feature: np.array(sorted(values)) for feature, values in found.items()}


def decision_keys(booster: lgb.Booster, X: pd.DataFrame, thresholds: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """A (features, rows) integer array: two rows with equal keys go the same way at every split. A numerical
    feature's key is its interval between thresholds, len(cuts) + 1 for zero, len(cuts) + 2 for missing; a
    categorical feature's, its category code (-1 missing)."""
    thresholds = split_thresholds(booster) if thresholds is None else thresholds
    keys = np.zeros((X.shape[1], len(X)), dtype=np.int64)  # a feature's keys contiguous
    for j, name in enumerate(X.columns):
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            keys[j] = column.cat.codes.to_numpy()  # the category itself (-1: missing)
        elif j in thresholds:
            values = column.to_numpy(dtype="float64")
            cuts = thresholds[j]
            key = np.searchsorted(cuts, values, side="left")  # values <= cuts[i] exactly when key <= i
            key[np.abs(values) <= _ZERO] = len(cuts) + 1
            key[np.isnan(values)] = len(cuts) + 2
            keys[j] = key
        # a feature no split reads keeps key 0: its value changes nothing
    return keys


def decision_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each row, the first row of each group): rows with equal decision keys form a group."""
    keys = keys + 1  # >= 0 (a category's -1, missing, becomes 0)
    # Mixed-radix packing of the keys into as few int64 words as hold them, then one factorize per word.
    rows = keys.shape[1]
    group, word, span = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64), 1
    for column in keys:
        radix = int(column.max()) + 1
        if span * radix >= 2**62:
            group = _combine(group, word)
            word, span = np.zeros(rows, dtype=np.int64), 1
        word = word * radix + column
        span *= radix
    group = _combine(group, word)
    return group, _first_rows(group)


def _first_rows(ids: np.ndarray) -> np.ndarray:
    """For dense ids 0..n-1, the first row holding each."""
    first = np.empty(int(ids.max()) + 1 if len(ids) else 0, dtype=np.int64)
    first[ids[::-1]] = np.arange(len(ids) - 1, -1, -1)
    return first


def _combine(group: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Dense ids of the pairs (group, word)."""
    word_ids, words = pd.factorize(word, sort=False)
    return pd.factorize(group * len(words) + word_ids, sort=False)[0].astype(np.int64)


def grouped(booster: lgb.Booster, X: pd.DataFrame, num_threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group of each row of X, raw score of each group, pred_contrib of each group): a group's rows are one row
    to the booster. Contributions are (groups, features + 1), the last column the bias."""
    if len(X) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), booster.predict(X, pred_contrib=True)
    trees = tree_splits(booster)
    thresholds = split_thresholds(booster, trees)
    keys = decision_keys(booster, X, thresholds)
    group, first = decision_groups(keys)
    distinct = _as_matrix(X.iloc[first])
    raw = booster.predict(distinct, raw_score=True, num_threads=num_threads)
    if max(map(len, trees), default=0) <= MAX_TREE_SPLITS:
        contributions = _tree_by_tree(booster, distinct, keys.take(first, axis=1), trees, thresholds, num_threads)
    else:
        contributions = booster.predict(distinct, pred_contrib=True, num_threads=num_threads)
    return group, raw, contributions


def _as_matrix(X: pd.DataFrame) -> np.ndarray:
    """LightGBM's own reading of the frame, done once: numbers as floats, a category as its code, missing NaN
    (the frame's categories are the training ones: FeatureSchema.transform)."""
    out = np.empty(X.shape, dtype="float64")
    for j, name in enumerate(X.columns):
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy()
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = column.to_numpy(dtype="float64")
    return out


# A tree's local pattern packs one base-4 digit per split into an int64.
MAX_TREE_SPLITS = 31


def _tree_by_tree(
    booster: lgb.Booster,
    X: np.ndarray,
    keys: np.ndarray,
    trees: list[list[dict]],
    thresholds: dict[int, np.ndarray],
    num_threads: int,
) -> np.ndarray:
    """pred_contrib summed tree by tree. A tree's contributions depend only on the side each of its own few
    splits sends the row (at most 2^splits patterns, a handful in practice), so each tree explains one row per
    pattern it sees and the rows copy theirs; a tree writes only the columns of the features it splits on.
    Equal to pred_contrib over all trees up to the order of floating-point additions. The trees are cut into
    num_threads fixed runs summed apart (numpy releases the GIL), then added in order: deterministic."""
    # Zero and missing keys lie beyond the last cut: +1, +2 (see _side).
    beyond = {
        f: np.maximum(keys[f] - len(thresholds.get(f, ())), 0) for f in {n["split_feature"] for t in trees for n in t}
    }

    model = booster.model_to_string()

    def run(first: int, end: int) -> np.ndarray:
        # A booster of its own: LightGBM keeps a predict call's iteration range in the booster's state.
        own = lgb.Booster(model_str=model)
        phi = np.zeros((X.shape[1] + 1, len(X)))  # transposed: a feature's contributions are contiguous
        for t in range(first, end):
            pattern = np.zeros(len(X), dtype=np.int64)
            for node in trees[t]:
                feature = node["split_feature"]
                pattern = pattern * 4 + _side(node, keys[feature], thresholds, beyond[feature])
            ids, _ = pd.factorize(pattern)
            table = own.predict(
                X[_first_rows(ids)], pred_contrib=True, start_iteration=t, num_iteration=1, num_threads=1
            )
            for column in {node["split_feature"] for node in trees[t]} | {X.shape[1]}:  # and the bias
                phi[column] += table[ids, column]
        return phi

    cuts = np.linspace(0, len(trees), max(1, num_threads) + 1).astype(int)
    with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
        parts = list(pool.map(run, cuts[:-1], cuts[1:]))
    return sum(parts[1:], parts[0]).T


def _side(node: dict, key: np.ndarray, thresholds: dict[int, np.ndarray], beyond: np.ndarray) -> np.ndarray:
    """0 or 1 (one side or the other) for a split, 2 for zero and 3 for missing (their own, to be safe)."""
    if node["decision_type"] == "==":
        categories = [int(c) for c in str(node["threshold"]).split("||")]
        return np.where(key < 0, 3, np.where(np.isin(key, categories), 0, 1))
    at = int(np.searchsorted(thresholds[node["split_feature"]], float(node["threshold"])))
    # Keys above len(cuts) (zero: +1, missing: +2) are right of every cut and get 1 + 1 or 1 + 2.
    return (key > at) + beyond
