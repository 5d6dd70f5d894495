"""Lead-scoring assets: train a candidate, promote it only past a blocking check, score every open lead.

ml/lead_score_candidate  trains on ml.ml_lead_features (weekly, or on drift), writes the model folder,
                         its model card and an ml.ml_models row; metadata: headline figures and plots
  check beats_production_and_baseline (blocking): the promotion rule of leadron/lead_scoring.py
ml/lead_score_model      the promoted model (production.json), only materialized when the check passed
marts/mart_lead_scores   daily, after the marts: every open lead scored (model or baseline)
"""

import base64
import json
from datetime import UTC, datetime

import dagster as dg
import duckdb

from orchestration.lib.resources import WarehouseResource

ML_GROUP = "ml"
FEATURES_KEY = dg.AssetKey(["ml", "ml_lead_features"])
CANDIDATE_KEY = dg.AssetKey(["ml", "lead_score_candidate"])
MODEL_KEY = dg.AssetKey(["ml", "lead_score_model"])
SCORES_KEY = dg.AssetKey(["marts", "mart_lead_scores"])
PROMOTION_CHECK = "beats_production_and_baseline"


class TrainingConfig(dg.Config):
    """The seed, and LightGBM hyperparameters to pin (unset: chosen by ml.train.fit's validation search)."""

    seed: int = 0
    learning_rate: float | None = None
    num_leaves: int | None = None
    max_depth: int | None = None
    min_data_in_leaf: int | None = None
    lambda_l2: float | None = None
    num_boost_round: int | None = None  # the most rounds early stopping may use
    # Weight the classes equally while growing trees (the isotonic map then restores probabilities).
    is_unbalance: bool | None = None


def _candidate_version(instance: dg.DagsterInstance) -> str:
    """The version the latest candidate materialization trained (its metadata)."""
    event = instance.get_latest_materialization_event(CANDIDATE_KEY)
    return event.asset_materialization.metadata["model_version"].value


def _image(png: bytes, title: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _write_model_row(con: duckdb.DuckDBPyConnection, run_id: str, card: dict) -> None:
    """One row per training run (a retrained, identical model gets a row of its own)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("""CREATE TABLE IF NOT EXISTS ml.ml_models (
        training_run_id VARCHAR PRIMARY KEY, model_version VARCHAR, trained_at TIMESTAMPTZ, status VARCHAR,
        status_reason VARCHAR,
        training_rows BIGINT, positive_rate DOUBLE, held_back_from VARCHAR, roc_auc DOUBLE, pr_auc DOUBLE,
        brier DOUBLE, baseline_roc_auc DOUBLE, baseline_pr_auc DOUBLE, baseline_brier DOUBLE, model_card JSON)""")
    model, baseline = card["evaluation"]["model"], card["evaluation"]["baseline"]
    con.execute(
        "INSERT INTO ml.ml_models VALUES (?, ?, ?, 'candidate', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            card["model_version"],
            card["trained_at"],
            card["rows"],
            card["positive_rate"],
            card["training_window"]["held_back_from"],
            model["roc_auc"],
            model["pr_auc"],
            model["brier"],
            baseline["roc_auc"],
            baseline["pr_auc"],
            baseline["brier"],
            json.dumps(card),
        ],
    )


@dg.asset(
    key=CANDIDATE_KEY,
    deps=[FEATURES_KEY],
    group_name=ML_GROUP,
    kinds={"lightgbm", "python"},
    description="A LightGBM lead-score model trained on ml_lead_features (time split by snapshot date), "
    "calibrated and evaluated against the engagement-score baseline on the held-back period.",
)
def lead_score_candidate(
    context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    # The ML stack (LightGBM, scikit-learn, matplotlib: ~2.7 s of imports) loads when an ML step runs, not with
    # the definitions every run and the landing sensor's refreshes load.
    from leadron import lead_scoring as ls
    from leadron import model_registry as registry
    from ml.plots import lift_png, reliability_png
    from ml.train import fit

    settings = warehouse.settings()
    # Only the labelled rows leave the warehouse (read under the writer lock: one process opens the file).
    with warehouse.writer() as con:
        frame = ls.load_labelled(con)
    params = {k: v for k, v in config.model_dump(exclude={"seed"}).items() if v is not None}
    context.log.info(f"training on {len(frame):,} labelled lead snapshots ({frame[ls.LABEL].mean():.2%} positive)")
    model = fit(
        frame, ls.LABEL, time_column=ls.TIME_COLUMN, seed=config.seed, params=params, baseline_column=ls.BASELINE
    )
    card = ls.model_card(model, datetime.now(UTC), frame)
    folder = registry.model_folder(settings.models_dir, model.version)
    reliability, lift = reliability_png(model.evaluation), lift_png(model.evaluation)
    # Content-addressed: an identical retrain finds its folder written (with the first training's card).
    if not (folder / "model_card.json").exists():
        model.save(folder)
        (folder / "reliability.png").write_bytes(reliability)
        (folder / "lift.png").write_bytes(lift)
        (folder / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    with warehouse.writer() as con:
        _write_model_row(con, context.run.run_id, card)
    m, b = model.evaluation["model"], model.evaluation["baseline"]
    return dg.MaterializeResult(
        metadata={
            "model_version": model.version,
            "roc_auc": m["roc_auc"],
            "pr_auc": m["pr_auc"],
            "brier": m["brier"],
            "baseline_roc_auc": b["roc_auc"],
            "baseline_pr_auc": b["pr_auc"],
            "baseline_brier": b["brier"],
            "training_rows": card["rows"],
            "positive_rate": card["positive_rate"],
            "held_back_from": card["training_window"]["held_back_from"],
            "top_decile_lift": m["deciles"][0]["lift"],
            "model_card": dg.MetadataValue.path(str(folder / "model_card.json")),
            "reliability_plot": _image(reliability, "reliability"),
            "lift_plot": _image(lift, "lift"),
        }
    )


@dg.asset_check(
    asset=CANDIDATE_KEY,
    name=PROMOTION_CHECK,
    blocking=True,
    description="The candidate beats the baseline and the production model on its held-back period "
    "(ROC-AUC), with a Brier score no worse than the baseline's. Blocks promotion.",
)
def beats_production_and_baseline(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    from leadron import lead_scoring as ls
    from leadron import model_registry as registry
    from ml.train import TrainedModel

    settings = warehouse.settings()
    version = _candidate_version(context.instance)
    candidate = TrainedModel.load(registry.model_folder(settings.models_dir, version))
    production = registry.load_production(settings.models_dir)
    production_eval = None
    if production is not None:  # the same version cannot beat itself: retraining unchanged data promotes nothing
        with warehouse.writer() as con:
            held_back = ls.load_labelled(con, since=candidate.evaluation["split"]["test_from"])
        production_eval = ls.evaluate_on(production, held_back)
    decision = ls.decide_promotion(candidate.evaluation["model"], candidate.evaluation["baseline"], production_eval)
    with warehouse.writer() as con:
        con.execute(
            "UPDATE ml.ml_models SET status = ?, status_reason = ? WHERE training_run_id = ?",
            ["approved" if decision.promote else "refused", decision.reason, context.run.run_id],
        )
    return dg.AssetCheckResult(
        passed=decision.promote,
        metadata={
            "model_version": version,
            "reason": decision.reason,
            "candidate_roc_auc": decision.candidate_roc_auc,
            "baseline_roc_auc": decision.baseline_roc_auc,
            "production_roc_auc": decision.production_roc_auc if decision.production_roc_auc is not None else "none",
        },
    )


@dg.asset(
    key=MODEL_KEY,
    deps=[CANDIDATE_KEY],
    group_name=ML_GROUP,
    kinds={"lightgbm"},
    description="The production lead-score model (LEADRON_HOME/models/production.json): the last candidate "
    "that passed beats_production_and_baseline.",
)
def lead_score_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from leadron import model_registry as registry

    settings = warehouse.settings()
    version = _candidate_version(context.instance)
    previous = registry.production_version(settings.models_dir)
    with warehouse.writer() as con:
        reason = con.execute(
            "SELECT status_reason FROM ml.ml_models WHERE training_run_id = ?", [context.run.run_id]
        ).fetchone()[0]
        registry.promote(settings.models_dir, version, reason)
        con.execute("UPDATE ml.ml_models SET status = 'retired' WHERE status = 'production'")
        con.execute("UPDATE ml.ml_models SET status = 'production' WHERE training_run_id = ?", [context.run.run_id])
    context.log.info(f"promoted {version} (previous: {previous or 'none'}): {reason}")
    return dg.MaterializeResult(
        metadata={"model_version": version, "previous_version": previous or "none", "reason": reason}
    )


@dg.asset(
    key=SCORES_KEY,
    deps=[FEATURES_KEY, MODEL_KEY],
    group_name="marts",
    kinds={"lightgbm", "duckdb"},
    description="Every open lead's probability of converting in the next 90 days, score 0-100, tier A-D, "
    "top 3 factors, model version (or the baseline) and scored-at time.",
)
def mart_lead_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from leadron import lead_scoring as ls
    from leadron import model_registry as registry
    from ml.evaluate import population_stability_index

    settings = warehouse.settings()
    model = registry.load_production(settings.models_dir)
    # Only what scoring needs leaves the warehouse: today's open leads, per-tenant counts, and labelled rows
    # for the baseline map (no model yet) or for the drift reference (the model's held-back period).
    with warehouse.writer() as con:
        current = ls.load_open_leads(con)
        tenants = ls.tenant_history(con, settings.ml_min_leads, settings.ml_min_conversions)
        labelled = None if model else ls.load_labelled(con, columns=(ls.BASELINE, ls.LABEL))
        held_back = ls.load_labelled(con, since=model.evaluation["split"]["test_from"]) if model else None
    scores = ls.score_leads(current, model, tenants, datetime.now(UTC), ls.baseline_calibration(model, labelled))
    psi = None
    if model is not None and (scores["scoring_method"] == "model").any():
        psi = population_stability_index(
            model.predict_proba(held_back), scores.loc[scores["scoring_method"] == "model", "probability"].to_numpy()
        )
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.register("scores_frame", scores)
        con.execute("CREATE OR REPLACE TABLE marts.mart_lead_scores AS SELECT * FROM scores_frame")
        con.unregister("scores_frame")
    by_method = scores["scoring_method"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "leads_scored": dg.MetadataValue.int(len(scores)),
            "by_model": int(by_method.get("model", 0)),
            "by_baseline": int(by_method.get("baseline", 0)),
            "model_version": model.version if model else "none (baseline only)",
            "tenants_on_baseline": ", ".join(t for t, v in tenants.items() if not v["model_eligible"]) or "none",
            "score_psi_vs_training": round(psi, 4) if psi is not None else "n/a",
            "tier_counts": dg.MetadataValue.json(scores["tier"].value_counts().sort_index().to_dict()),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[lead_score_candidate, lead_score_model, mart_lead_scores], asset_checks=[beats_production_and_baseline]
    )
