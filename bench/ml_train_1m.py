"""Lead-score training and scoring time for 1 million leads x the feature set of ml_lead_features.

    .venv/bin/python bench/ml_train_1m.py [--home DIR] [--rows 1000000]

Reads ml.ml_lead_features from a built warehouse (default: the demo's, $LEADRON_HOME or ./.leadron)
and resamples its rows (with replacement, fixed seed) to --rows, so the columns, types and value
distributions are the real ones. Times, in this process:
  - reference: one bare lightgbm.train on the same rows with the parameters and rounds fit chose (no
    search, split, calibration, evaluation or type handling);
  - ml.train.fit: split, type handling, the hyperparameter search, the refit, the calibration decision,
    evaluation with the baseline;
  - scoring: leadron.lead_scoring.score_leads (probabilities, top-3 factors, tiers) for --rows leads.
Writes bench/results/ml_train_1m.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("LEADRON_HOME", str(ROOT / ".leadron")))
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    import duckdb
    import lightgbm as lgb
    import numpy as np

    from leadron import lead_scoring as ls
    from ml import explain
    from ml.train import _DETERMINISM, fit

    with duckdb.connect(str(Path(args.home) / "warehouse.duckdb"), read_only=True) as con:
        features = ls.load_features(con)
    labelled = ls.training_frame(features)
    rng = np.random.default_rng(0)
    frame = labelled.iloc[rng.integers(0, len(labelled), args.rows)].reset_index(drop=True)
    print(f"{len(labelled):,} labelled rows resampled to {len(frame):,}; {frame.shape[1] - 2} feature columns")

    started = time.perf_counter()
    model = fit(frame, ls.LABEL, time_column=ls.TIME_COLUMN, seed=0, baseline_column=ls.BASELINE)
    fit_seconds = time.perf_counter() - started
    params = {k: v for k, v in model.params.items() if k not in ("num_boost_round", "seed")}
    rounds = model.params["num_boost_round"]

    X = model.schema.transform(frame)
    started = time.perf_counter()
    lgb.train(
        {**params, **_DETERMINISM, "seed": 0}, lgb.Dataset(X, label=frame[ls.LABEL].to_numpy()), num_boost_round=rounds
    )
    reference_seconds = time.perf_counter() - started

    leads = features.iloc[rng.integers(0, len(features), args.rows)].reset_index(drop=True)
    leads["snapshot_date"] = leads["snapshot_date"].max()  # all of them "open leads of today"
    leads["lead_id"] = [f"bench-{i}" for i in range(len(leads))]
    tenants = {t: {"model_eligible": True} for t in leads["tenant_id"].unique()}
    started = time.perf_counter()
    model.predict_proba(leads)
    proba_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = ls.score_leads(leads, model, tenants, datetime.now(UTC), None)
    score_seconds = time.perf_counter() - started
    assert len(scores) == args.rows
    X_leads = model.schema.transform(leads)
    patterns = len(explain.decision_groups(explain.decision_keys(model.booster, X_leads))[1])
    # Reference: LightGBM's pred_contrib on every row (what explain() computed before it grouped rows).
    started = time.perf_counter()
    model.booster.predict(X_leads, pred_contrib=True, num_threads=os.cpu_count())
    contrib_all_seconds = time.perf_counter() - started
    # The demo's own feature rows, not resampled: every (lead, snapshot) once, as if all were open leads today.
    real = features.reset_index(drop=True).assign(snapshot_date=features["snapshot_date"].max())
    real["lead_id"] = [f"real-{i}" for i in range(len(real))]
    real_patterns = len(explain.decision_groups(explain.decision_keys(model.booster, model.schema.transform(real)))[1])
    started = time.perf_counter()
    ls.score_leads(real, model, tenants, datetime.now(UTC), None)
    real_seconds = time.perf_counter() - started

    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "rows": args.rows,
        "feature_columns": len(model.features),
        "boosting_rounds": rounds,
        "fit_seconds": round(fit_seconds, 1),
        "reference_lightgbm_train_seconds": round(reference_seconds, 1),
        "fit_to_reference": round(fit_seconds / reference_seconds, 2),
        "predict_proba_seconds": round(proba_seconds, 1),
        "score_with_factors_seconds": round(score_seconds, 1),
        "decision_patterns": patterns,
        "reference_pred_contrib_every_row_seconds": round(contrib_all_seconds, 1),
        "real_rows": len(real),
        "real_rows_decision_patterns": real_patterns,
        "real_rows_score_seconds": round(real_seconds, 1),
        "chosen": model.evaluation["search"]["chosen"],
        "calibration": model.evaluation["calibration"]["method"],
        "held_back_roc_auc": model.evaluation["model"]["roc_auc"],
        "baseline_roc_auc": model.evaluation["baseline"]["roc_auc"],
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ml_train_1m.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Lead-score training and scoring, 1M leads",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs: {args.rows:,} rows resampled from the demo's "
        f"ml_lead_features, {record['feature_columns']} features, one thread (deterministic). The search chose "
        f"{model.params['num_leaves']} leaves, learning rate {model.params['learning_rate']}, {rounds} rounds; "
        f"calibration: {record['calibration']}.",
        "",
        "| step | seconds | target |",
        "|---|---|---|",
        "| ml.train.fit (split, search, refit, calibration, evaluation of model and baseline) | "
        f"{record['fit_seconds']} "
        "| < 90 |",
        f"| reference: bare lightgbm.train, same rows, the chosen parameters and rounds | "
        f"{record['reference_lightgbm_train_seconds']} | |",
        f"| predict_proba (calibrated probabilities) for {args.rows:,} leads | "
        f"{record['predict_proba_seconds']} | < 10 |",
        f"| score_leads (probability, tier, top-3 factors via pred_contrib, texts) for {args.rows:,} leads | "
        f"{record['score_with_factors_seconds']} | < 10 |",
        f"| reference: LightGBM pred_contrib alone on every one of the {args.rows:,} rows | "
        f"{record['reference_pred_contrib_every_row_seconds']} | |",
        f"| score_leads on the demo's own {len(real):,} feature rows (not resampled: real leads) | "
        f"{record['real_rows_score_seconds']} | |",
        "",
        f"Scoring explains one row per decision pattern (ml/explain.py): the {args.rows:,} resampled leads fall in "
        f"{patterns:,} patterns, the demo's {len(real):,} real rows in {real_patterns:,}. "
        f"score_leads / pred_contrib on every row: "
        f"{record['score_with_factors_seconds'] / record['reference_pred_contrib_every_row_seconds']:.2f}x.",
        "",
        f"fit / reference: {record['fit_to_reference']}x",
        "",
        f"Held-back ROC-AUC of this resampled fit: model {record['held_back_roc_auc']}, "
        f"baseline {record['baseline_roc_auc']} (resampling repeats rows, so these are not the demo's figures).",
    ]
    (out / "ml_train_1m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
