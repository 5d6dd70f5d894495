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

import duckdb
import numpy as np
import pandas as pd

from leadron.score_factors import TOP, Factors, baseline_factors, model_factors
from ml.calibration import Isotonic
from ml.evaluate import evaluate
from ml.train import TrainedModel

FEATURES_TABLE = "ml.ml_lead_features"
LABEL = "converted_within_90d"
TIME_COLUMN = "snapshot_date"
BASELINE = "engagement_score"
IDENTIFIERS = ["feature_key", "tenant_id", "lead_id"]
BASELINE_VERSION = "baseline-engagement-v1"
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
    eligible = [t for t, v in tenants.items() if model is not None and v["model_eligible"]]
    by_model = current["tenant_id"].isin(eligible).to_numpy()
    probability = np.zeros(len(current))
    # Tiers rank the booster's score (its order is the probability's, without the ties of the isotonic
    # steps), or the engagement score for the baseline.
    rank_key = current[BASELINE].to_numpy(dtype="float64").copy()
    factors = Factors.empty(len(current))
    if by_model.any():
        rows = current[by_model]
        group, raw, contributions = model.explain_grouped(rows)
        rank_key[by_model] = raw[group]
        probability[by_model] = model.calibrator(raw[group])
        factors.put(by_model, model_factors(rows, group, raw, contributions[:, :-1], model.features))
    if (~by_model).any():
        rows = current[~by_model]
        # Without labels there is no probability to give (NULL); the tier then ranks the engagement score.
        probability[~by_model] = baseline(rows[BASELINE].to_numpy()) if baseline else np.nan
        factors.put(~by_model, baseline_factors(rows))
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
    for k in range(TOP):
        out[f"factor_{k + 1}"] = factors.texts[k]
    out["top_factors"] = factors.json
    out["engagement_score"] = current[BASELINE].round(6)
    out["scoring_method"] = np.where(by_model, "model", "baseline")
    out["model_version"] = np.where(by_model, model.version if model else "", BASELINE_VERSION)
    out["scored_at"] = scored_at
    return out
