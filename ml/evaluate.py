"""The figures of a model card, for any 0/1 labels and predicted probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def deciles(probabilities: np.ndarray) -> np.ndarray:
    """Decile of each row, 1 = the highest predicted tenth (ties kept in their original order)."""
    order = np.argsort(-probabilities, kind="stable")
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    return rank * 10 // len(order) + 1


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """ROC-AUC, PR-AUC, Brier score, and per decile of prediction (1 = highest): rows, mean predicted,
    observed rate (the reliability table), lift over the base rate and cumulative gain."""
    y = np.asarray(labels, dtype="float64")
    p = np.asarray(probabilities, dtype="float64")
    if len(y) == 0 or y.min() == y.max():
        raise ValueError("evaluation needs both classes among the held-back rows")
    base = float(y.mean())
    bucket = deciles(p)
    table, gained = [], 0.0
    for d in range(1, 11):
        mask = bucket == d
        rows = int(mask.sum())
        hits = float(y[mask].sum())
        gained += hits
        table.append(
            {
                "decile": d,
                "rows": rows,
                "mean_predicted": round(float(p[mask].mean()), 6) if mask.any() else None,
                "observed_rate": round(hits / rows, 6) if rows else None,
                "lift": round(hits / rows / base, 4) if rows else None,
                "cumulative_gain": round(gained / y.sum(), 6),
            }
        )
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "positive_rate": round(base, 6),
        "roc_auc": round(float(roc_auc_score(y, p)), 6),
        "pr_auc": round(float(average_precision_score(y, p)), 6),
        "brier": round(float(brier_score_loss(y, p)), 6),
        "deciles": table,
    }


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of `actual` against `expected` over the expected distribution's quantile bins."""
    expected = np.asarray(expected, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))
