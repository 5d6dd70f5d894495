"""The top factors of a lead's score, phrased for a rep: "replied 2 days ago: +18".

Built column by column, not lead by lead: a million leads take seconds. Texts and JSON fragments are
made once per distinct value and copied, because values repeat a lot (counts, days since).
A lead's factors are a prefix of its top three (a factor that rounds to no points is left out, and later
ones matter less), so `Factors` holds per position the text and JSON of those present.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import orjson
import pandas as pd

TOP = 3
SCORE_COMPONENTS = {
    "score_reply": "replies",
    "score_form": "form submissions",
    "score_click": "clicks",
    "score_visit": "page visits",
    "score_open": "opens",
}
# What a rep reads for the "days since" features: the action, then when ("replied 2 days ago"), or its absence.
SINCE = {
    "days_since_last_reply": ("replied", "never replied"),
    "days_since_last_send": ("last e-mailed", "never e-mailed"),
    "days_since_last_engagement": ("last engaged", "never engaged"),
    "days_since_first_touch": ("first contacted", "never contacted"),
}


@dataclass
class Factors:
    """Per position k < TOP: the factor's text (None where the lead has fewer factors); per lead: the JSON list."""

    texts: list[np.ndarray]
    json: np.ndarray

    @classmethod
    def empty(cls, rows: int) -> Factors:
        return cls([np.full(rows, None, dtype=object) for _ in range(TOP)], np.full(rows, "[]", dtype=object))

    def put(self, where: np.ndarray, other: Factors) -> None:
        """Write `other`'s rows at the positions `where` (a boolean mask) of these."""
        for mine, theirs in zip(self.texts, other.texts):
            mine[where] = theirs
        self.json[where] = other.json


@lru_cache(maxsize=65536)
def describe(feature: str, value: object) -> str:
    """A person's reading of a feature value ("replied 2 days ago", "3 replies in the last 30 days")."""
    if value is None or pd.isna(value):
        if feature in SINCE:
            return SINCE[feature][1]
        return f"no {feature.removeprefix('days_since_').replace('_', ' ')}"
    number = float(value) if isinstance(value, (int, float, np.number)) else None
    shown = (
        f"{int(number)}"
        if number is not None and number.is_integer()
        else f"{number:.1f}"
        if number is not None
        else str(value)
    )
    if feature in SINCE:
        when = "today" if number == 0 else f"{shown} day ago" if number == 1 else f"{shown} days ago"
        return f"{SINCE[feature][0]} {when}"
    if feature.startswith("days_since_"):
        return f"{feature.removeprefix('days_since_').replace('_', ' ')} {shown} days ago"
    if feature == "lead_age_days":
        return f"lead created {shown} days ago"
    if feature.startswith("score_"):
        return f"recent {SCORE_COMPONENTS.get(feature, feature)} (decayed weight {shown})"
    if feature.endswith("_total"):
        return f"{shown} {feature.removesuffix('_total').replace('_', ' ')}"
    if feature.endswith("_30d"):
        return f"{shown} {feature.removesuffix('_30d').replace('_', ' ')} in the last 30 days"
    return f"{feature.replace('_', ' ')} {shown}"


def _scalar(value: object) -> object:
    """A hashable plain-Python value (missing -> None) for the describe() cache."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def round_tenths(values: np.ndarray) -> np.ndarray:
    """Python's round(v, 1) of each value, without a Python call per value. v * 10 is inexact, so numpy's
    rounding can differ from Python's (correctly rounded) one only next to a half: those few go through round()."""
    values = np.asarray(values, dtype="float64")
    scaled = values * 10
    out = np.round(scaled) / 10
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    out[near_half] = [round(float(v), 1) for v in values[near_half]]
    return out


def _each_distinct(values: np.ndarray, make) -> np.ndarray:  # noqa: ANN001 - a one-argument callable
    """make(v) for every value, called once per distinct value (missing values share one call with None)."""
    codes, uniques = pd.factorize(values)
    made = [make(_scalar(u)) for u in uniques]
    made.append(make(None) if (codes < 0).any() else None)
    return np.array(made, dtype=object)[codes]  # code -1 (missing) takes the last


def model_factors(
    frame: pd.DataFrame, group: np.ndarray, raw: np.ndarray, contributions: np.ndarray, names: list[str]
) -> Factors:
    """Top factors from the booster's contributions (`names`' columns, bias excluded), given per group of rows
    (`group`: each row's; ml.explain): the features whose removal from the log-odds moves the (uncalibrated)
    probability most, in score points (100 * probability change), with their sign; those that round to 0
    points are left out."""
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    points = 100.0 * (sigmoid(raw)[:, None] - sigmoid(raw[:, None] - contributions))
    order = np.argsort(-np.abs(points), axis=1, kind="stable")[:, :TOP]  # ties keep the feature order
    chosen = np.round(np.take_along_axis(points, order, axis=1), 1)[group]
    order = order[group]
    kept = np.rint(chosen) != 0  # "+0" is no factor
    texts = np.full(order.shape, None, dtype=object)
    for k in range(order.shape[1]):
        for j, rows in _rows_by_value(np.where(kept[:, k], order[:, k], -1)):
            name = names[j]
            said = _each_distinct(frame[name].to_numpy()[rows], lambda v, name=name: describe(name, v))
            texts[rows, k] = said + _each_distinct(chosen[rows, k], lambda p: f": {p:+.0f}")
    return _assemble(names, order, chosen, texts, kept)


def _rows_by_value(values: np.ndarray):  # noqa: ANN202 - a generator of (value, rows)
    """(value, the rows holding it) for each value >= 0, from one sort."""
    rows = np.argsort(values, kind="stable")
    ordered = values[rows]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    for start, end in zip(starts, [*starts[1:], len(rows)]):
        if ordered[start] >= 0:
            yield int(ordered[start]), rows[start:end]


def baseline_factors(frame: pd.DataFrame) -> Factors:
    """Top factors of the baseline: the largest components of the engagement score (engagement points)."""
    names = list(SCORE_COMPONENTS)
    components = frame[names].to_numpy(dtype="float64")
    order = np.argsort(-components, axis=1, kind="stable")[:, :TOP]
    chosen = np.take_along_axis(components, order, axis=1)
    points = np.empty(chosen.shape)
    texts = np.full(order.shape, None, dtype=object)
    for k in range(order.shape[1]):
        # Components are continuous (about one distinct value per lead); their tenths repeat.
        points[:, k] = round_tenths(chosen[:, k])
        for j, rows in _rows_by_value(order[:, k]):
            label = SCORE_COMPONENTS[names[j]]
            texts[rows, k] = _each_distinct(
                points[rows, k], lambda c, label=label: f"recent {label}: +{c:.1f} engagement"
            )
    return _assemble(names, order, points, texts, points > 0)


def _assemble(names: list[str], order: np.ndarray, points: np.ndarray, texts: np.ndarray, kept: np.ndarray) -> Factors:
    """Factors from the top-TOP cells: each position's texts, and each lead's JSON list of
    {"feature", "points", "text"} (one orjson fragment per distinct factor)."""
    rows = len(order)
    out = Factors.empty(rows)
    json = np.full(rows, "[", dtype=object)
    for k in range(order.shape[1]):
        at = np.flatnonzero(kept[:, k])
        out.texts[k][at] = texts[at, k]
        text_ids, text_values = pd.factorize(texts[at, k])
        point_ids, point_values = pd.factorize(points[at, k])
        key = (text_ids.astype(np.int64) * len(point_values) + point_ids) * len(names) + order[at, k]
        ids, distinct = pd.factorize(key)
        fragments = np.array(
            [
                orjson.dumps(
                    {
                        "feature": names[c % len(names)],
                        "points": float(point_values[c // len(names) % len(point_values)]),
                        "text": text_values[c // len(names) // len(point_values)],
                    }
                ).decode()
                for c in distinct
            ],
            dtype=object,
        )
        json[at] = json[at] + ("," if k else "") + fragments[ids]
    out.json = json + "]"
    return out
