"""Lead scoring for the warehouse: training frames, the promotion rule and scoring.

Pure functions over DataFrames and files (no Dagster); orchestration/defs/ml/assets.py calls them; the model
registry is leadron/model_registry.py.

- Training rows: ml.ml_lead_features rows whose 90-day label is known; features are every column but
  the identifiers; the split is by snapshot date (the latest snapshots are held back).
- Promotion: a candidate is promoted when, on its held-back rows, its ROC-AUC beats the baseline's
  and the production model's (scored on the same rows), and its Brier score is no worse than the
  baseline's.
- Scoring: every open lead at the newest snapshot. Tenants with fewer than LEADRON_ML_MIN_LEADS open
  leads or LEADRON_ML_MIN_CONVERSIONS labelled conversions (and every tenant while no model is
  promoted) are scored with the baseline: the engagement score, calibrated to a probability.
- Score = round(100 * probability). Tier within the tenant by the share of its open leads ranked
  higher (plus the lead itself): A = top 10%, B = to 30%, C = to 60%, D = the rest. The rank is the
  booster's score (same order as the probability, without the ties of the isotonic steps), or the
  engagement score for the baseline; equal scores share the better tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import duckdb
import numpy as np
import orjson
import pandas as pd

from ml.calibration import Isotonic
from ml.evaluate import evaluate
from ml.train import TrainedModel

FEATURES_TABLE = "ml.ml_lead_features"
LABEL = "converted_within_90d"
TIME_COLUMN = "snapshot_date"
BASELINE = "engagement_score"
IDENTIFIERS = ["feature_key", "tenant_id", "lead_id"]
BASELINE_VERSION = "baseline-engagement-v1"
SCORE_COMPONENTS = {
    "score_reply": "replies",
    "score_form": "form submissions",
    "score_click": "clicks",
    "score_visit": "page visits",
    "score_open": "opens",
}
TIERS = (("A", 0.10), ("B", 0.30), ("C", 0.60), ("D", 1.01))  # cumulative share of the tenant's leads


def load_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {FEATURES_TABLE} ORDER BY tenant_id, lead_id, snapshot_date").df()


def load_open_leads(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The newest snapshot only: the open leads to score today."""
    return con.execute(
        f"SELECT * FROM {FEATURES_TABLE} WHERE snapshot_date = (SELECT max(snapshot_date) "
        f"FROM {FEATURES_TABLE}) ORDER BY tenant_id, lead_id"
    ).df()


def load_labelled(
    con: duckdb.DuckDBPyConnection, since: str | None = None, columns: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Labelled rows as training_frame shapes them (optionally from `since` on, optionally some columns)."""
    select = ", ".join(columns) if columns else "*"  # names are this module's constants
    sql = f"SELECT {select} FROM {FEATURES_TABLE} WHERE {LABEL} IS NOT NULL"
    params: list = []
    if since is not None:
        sql += f" AND {TIME_COLUMN} >= CAST(? AS TIMESTAMP)"
        params.append(since)
    return _shape_labelled(
        con.execute(sql + " ORDER BY tenant_id, lead_id, snapshot_date" if not columns else sql, params).df()
    )


def tenant_history(con: duckdb.DuckDBPyConnection, min_leads: int, min_conversions: int) -> dict[str, dict]:
    """Per tenant: open leads at the newest snapshot, labelled conversions, and whether the model may score it
    (computed in the warehouse: no feature row moves)."""
    rows = con.execute(f"""SELECT tenant_id,
            count(*) FILTER (WHERE snapshot_date = (SELECT max(snapshot_date) FROM {FEATURES_TABLE})),
            count(*) FILTER (WHERE {LABEL} = 1)
        FROM {FEATURES_TABLE} GROUP BY tenant_id ORDER BY tenant_id""").fetchall()
    return {
        t: {
            "open_leads": int(n),
            "labelled_conversions": int(c),
            "model_eligible": n >= min_leads and c >= min_conversions,
        }
        for t, n, c in rows
    }


def training_frame(features: pd.DataFrame) -> pd.DataFrame:
    return _shape_labelled(features[features[LABEL].notna()])


def _shape_labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Labelled rows for training: identifiers dropped, the label as 0/1 integers."""
    frame = frame.drop(columns=[c for c in IDENTIFIERS if c in frame.columns]).reset_index(drop=True)
    frame[LABEL] = frame[LABEL].astype("int64")
    return frame


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate_roc_auc: float
    baseline_roc_auc: float
    production_roc_auc: float | None


def decide_promotion(candidate: dict, baseline: dict, production: dict | None) -> Decision:
    """The promotion rule (module docstring) on evaluations of the same held-back rows."""
    c, b = candidate["roc_auc"], baseline["roc_auc"]
    p = production["roc_auc"] if production else None
    if c <= b:
        return Decision(False, f"ROC-AUC {c:.4f} does not beat the baseline's {b:.4f}", c, b, p)
    if candidate["brier"] > baseline["brier"]:
        return Decision(
            False, f"Brier {candidate['brier']:.4f} is worse than the baseline's {baseline['brier']:.4f}", c, b, p
        )
    if p is not None and c <= p:
        return Decision(False, f"ROC-AUC {c:.4f} does not beat the production model's {p:.4f}", c, b, p)
    against = f" and the production model's {p:.4f}" if p is not None else " (no production model yet)"
    return Decision(True, f"ROC-AUC {c:.4f} beats the baseline's {b:.4f}{against}", c, b, p)


def evaluate_on(model: TrainedModel, rows: pd.DataFrame) -> dict:
    return evaluate(rows[LABEL].to_numpy(), model.predict_proba(rows))


def model_card(model: TrainedModel, trained_at: datetime, labelled: pd.DataFrame) -> dict:
    """The card of a model trained on `labelled` (training rows)."""
    return {
        "model_version": model.version,
        "trained_at": trained_at.isoformat(),
        "algorithm": "LightGBM gradient-boosted trees, hyperparameters chosen on a time-ordered validation slice, "
        + (
            "isotonic calibration"
            if model.evaluation["calibration"]["method"] == "isotonic"
            else "the booster's own probabilities (isotonic did not lower the validation Brier)"
        ),
        "label": f"{LABEL}: the lead converts within 90 days after the snapshot date",
        "training_window": {
            "first_snapshot": str(labelled[TIME_COLUMN].min()),
            "last_labelled_snapshot": str(labelled[TIME_COLUMN].max()),
            "held_back_from": model.evaluation["split"]["test_from"],
        },
        "rows": model.evaluation["training_rows"],
        "positive_rate": model.evaluation["positive_rate"],
        "features": model.features,
        "dropped_columns": model.evaluation["dropped_columns"],
        "hyperparameters": model.params,
        "search": model.evaluation["search"],
        "calibration": model.evaluation["calibration"],
        "split": model.evaluation["split"],
        "evaluation": {"model": model.evaluation["model"], "baseline": model.evaluation["baseline"]},
    }


# --- scoring ----------------------------------------------------------------------------------------


def _tiers(key: pd.Series, tenant: pd.Series) -> pd.Series:
    """Tier by the share of the tenant's leads ranked strictly higher by `key` (ties share a tier)."""
    higher = key.groupby(tenant).rank(method="min", ascending=False)  # 1 + leads strictly above
    share = higher / key.groupby(tenant).transform("size")
    tier = pd.Series("D", index=key.index)
    for name, upto in reversed(TIERS):
        tier[share <= upto] = name
    return tier


# What a rep reads for the "days since" features: the action, then when ("replied 2 days ago"), or its absence.
SINCE = {
    "days_since_last_reply": ("replied", "never replied"),
    "days_since_last_send": ("last e-mailed", "never e-mailed"),
    "days_since_last_engagement": ("last engaged", "never engaged"),
    "days_since_first_touch": ("first contacted", "never contacted"),
}


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


def _model_factors(model: TrainedModel, frame: pd.DataFrame, top: int = 3) -> list[list[dict]]:
    """Top factors per row: the features whose removal from the log-odds moves the (uncalibrated)
    probability most, in score points (100 * probability change), with their sign; a factor that rounds to
    0 points is left out, so fewer than `top` are given when fewer matter."""
    contributions = model.explain(frame)
    raw = contributions.to_numpy().sum(axis=1)  # the booster's log-odds, bias included
    contributions = contributions.drop(columns=["bias"])
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    points = 100.0 * (sigmoid(raw)[:, None] - sigmoid(raw[:, None] - contributions.to_numpy()))
    names = list(contributions.columns)
    # Top `top` per row at once (stable: ties keep the feature order), then only those cells are read.
    order = np.argsort(-np.abs(points), axis=1, kind="stable")[:, :top]
    chosen = np.round(np.take_along_axis(points, order, axis=1), 1)
    values = frame[names].to_numpy(dtype=object)
    picked = np.take_along_axis(values, order, axis=1)  # the top features' values, row by row
    # describe() is cached: values repeat a lot (counts, days), so most texts are dictionary lookups.
    return [
        [
            {"feature": names[j], "points": float(p), "text": f"{describe(names[j], _scalar(v))}: {p:+.0f}"}
            for j, p, v in zip(order[i], chosen[i], picked[i])
            if np.rint(p) != 0
        ]  # "+0" is no factor
        for i in range(len(frame))
    ]


def _scalar(value: object) -> object:
    """A hashable plain-Python value (missing -> None) for the describe() cache."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _baseline_factors(frame: pd.DataFrame, top: int = 3) -> list[list[dict]]:
    """Top factors of the baseline: the largest components of the engagement score (engagement points)."""
    components = frame[list(SCORE_COMPONENTS)].to_numpy(dtype="float64")
    names = list(SCORE_COMPONENTS)
    order = np.argsort(-components, axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(components, order, axis=1)
    return [
        [
            {
                "feature": names[j],
                "points": round(float(c), 1),
                "text": f"recent {SCORE_COMPONENTS[names[j]]}: +{c:.1f} engagement",
            }
            for j, c in zip(order[i], chosen[i])
            if round(float(c), 1) > 0
        ]
        for i in range(len(frame))
    ]


def baseline_calibration(model: TrainedModel | None, labelled: pd.DataFrame | None) -> Isotonic | None:
    """Engagement score -> probability: the production model's baseline map, else one fitted on the labelled
    rows; None while no label is known yet (less than 90 days of history) or all labels agree."""
    if model is not None:
        return Isotonic.from_dict(model.evaluation["baseline"]["calibration"])
    if labelled is None or labelled[LABEL].nunique() < 2:
        return None
    return Isotonic.fit(labelled[BASELINE].to_numpy(), labelled[LABEL].to_numpy())


def score_leads(
    current: pd.DataFrame,
    model: TrainedModel | None,
    tenants: dict[str, dict],
    scored_at: datetime,
    baseline: Isotonic | None,
) -> pd.DataFrame:
    """mart_lead_scores rows for `current`, the open leads of the newest snapshot (load_open_leads);
    `baseline` maps the engagement score to a probability for tenants the model does not score."""
    current = current.reset_index(drop=True)
    by_model = current["tenant_id"].map(lambda t: model is not None and tenants[t]["model_eligible"]).to_numpy()
    probability = np.zeros(len(current))
    # Tiers rank the booster's score (its order is the probability's, without the ties of the isotonic
    # steps), or the engagement score for the baseline.
    rank_key = current[BASELINE].to_numpy(dtype="float64").copy()
    factors: list[list[dict]] = [[] for _ in range(len(current))]
    if by_model.any():
        rows = current[by_model]
        raw = model.raw_score(rows)
        rank_key[by_model] = raw
        probability[by_model] = model.calibrator(raw)
        for i, f in zip(np.flatnonzero(by_model), _model_factors(model, rows)):
            factors[i] = f
    if (~by_model).any():
        rows = current[~by_model]
        # Without labels there is no probability to give (NULL); the tier then ranks the engagement score.
        probability[~by_model] = baseline(rows[BASELINE].to_numpy()) if baseline else np.nan
        for i, f in zip(np.flatnonzero(~by_model), _baseline_factors(rows)):
            factors[i] = f
    out = pd.DataFrame(
        {
            "tenant_id": current["tenant_id"],
            "lead_id": current["lead_id"],
            "snapshot_date": current[TIME_COLUMN],
            "probability": probability.round(6),
            "score": pd.array(np.rint(probability * 100), dtype="Int64"),
        }
    )
    out["tier"] = _tiers(pd.Series(rank_key, index=out.index), out["tenant_id"])
    for k in range(3):
        out[f"factor_{k + 1}"] = [f[k]["text"] if len(f) > k else None for f in factors]
    out["top_factors"] = [orjson.dumps(f).decode() for f in factors]
    out["engagement_score"] = current[BASELINE].round(6)
    out["scoring_method"] = np.where(by_model, "model", "baseline")
    out["model_version"] = np.where(by_model, model.version if model else "", BASELINE_VERSION)
    out["scored_at"] = scored_at
    return out
