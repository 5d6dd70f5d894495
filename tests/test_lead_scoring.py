"""Lead scoring end to end: dbt features without leakage, training and promotion through Dagster, scores."""

from __future__ import annotations

import bisect
import json
import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from leadron import lead_scoring as ls
from leadron.settings import exported
from orchestration.lib.dbt_project import dbt_cli, leadron_dbt_project
from tests.conftest import build, query, query_dicts, use_home

pytestmark = pytest.mark.slow  # left out of `make test-quick`

AS_OF = "2026-08-31 23:59:59"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Eight months of generated data, built, then the training job run twice (same data)."""
    from leadron.demo_data import generate
    from leadron.importer import import_folder
    from orchestration.runner import run_training

    root = tmp_path_factory.mktemp("scoring")
    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, root / "home")
        mp.setenv("LEADRON_AS_OF", AS_OF)
        generate(root / "input", events=60_000, tenants=3, seed=5, end=date(2026, 8, 31), days=240)
        assert import_folder(root / "input", settings).ok
        build(settings)
        instance = dg.DagsterInstance.ephemeral()
        first = run_training(settings, instance=instance, log_level="WARNING")
        first_scores = query_dicts(settings, "SELECT * FROM marts.mart_lead_scores ORDER BY tenant_id, lead_id")
        second = run_training(settings, instance=instance, log_level="WARNING")
        yield settings, first, second, first_scores, mp


def features(settings) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return ls.load_features(con)


def test_first_model_is_promoted_by_the_rule_and_the_card_is_complete(scored):
    settings, first, _, _, _ = scored
    (row,) = query_dicts(settings, "SELECT * FROM ml.ml_models WHERE status = 'production'")
    card = json.loads(row["model_card"])
    decision = ls.decide_promotion(card["evaluation"]["model"], card["evaluation"]["baseline"], None)
    assert first.success == decision.promote, (first.failed_steps, decision)
    assert decision.promote, f"the generated data should let the model beat the baseline: {decision.reason}"
    assert json.loads((settings.models_dir / "production.json").read_text())["version"] == row["model_version"]
    folder = settings.models_dir / row["model_version"]
    on_disk = json.loads((folder / "model_card.json").read_text())
    assert on_disk == card
    for key in ("training_window", "rows", "positive_rate", "features", "hyperparameters", "evaluation"):
        assert card[key], key
    for part in ("model", "baseline"):
        figures = card["evaluation"][part]
        assert {"roc_auc", "pr_auc", "brier", "deciles"} <= set(figures)
        assert len(figures["deciles"]) == 10 and figures["deciles"][-1]["cumulative_gain"] == 1.0
    # The card's rows and positive rate are those of the labelled feature rows.
    labelled = ls.training_frame(features(settings))
    assert card["rows"] == len(labelled)
    assert card["positive_rate"] == pytest.approx(labelled[ls.LABEL].mean(), abs=1e-6)
    for image in ("reliability.png", "lift.png"):
        assert (folder / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retraining_the_same_data_gives_the_same_model_and_is_refused(scored):
    settings, first, second, first_scores, _ = scored
    # Deterministic: the second candidate is bit for bit the first (same content-addressed version) ...
    runs = query(settings, "SELECT model_version, status, status_reason FROM ml.ml_models ORDER BY trained_at")
    assert len(runs) == 2 and runs[0][0] == runs[1][0]
    assert runs[0][1] == "production"
    assert runs[1][1] == "refused" and "does not beat the production model" in runs[1][2]
    # ... and it cannot beat itself, so the blocking check refuses it and production stays as it was.
    assert not second.success
    assert second.failed_checks == ["ml/lead_score_candidate:beats_production_and_baseline"]
    # Refused, so the scores were not recomputed by this run: identical to the first run's.
    again = query_dicts(settings, "SELECT * FROM marts.mart_lead_scores ORDER BY tenant_id, lead_id")
    assert again == first_scores


def test_every_open_lead_has_a_score_tier_and_factors(scored):
    settings, _, _, scores, _ = scored
    frame = features(settings)
    newest = frame[frame["snapshot_date"] == frame["snapshot_date"].max()]
    assert len(scores) == len(newest)
    assert {(s["tenant_id"], s["lead_id"]) for s in scores} == set(zip(newest["tenant_id"], newest["lead_id"]))
    for s in scores:
        assert 0.0 <= s["probability"] <= 1.0
        assert s["score"] == int(np.rint(s["probability"] * 100))
        assert s["scored_at"] is not None and s["model_version"]
        factors = json.loads(s["top_factors"])
        assert [f["text"] for f in factors] == [s[f"factor_{k + 1}"] for k in range(len(factors))]
        # Only factors that matter: none that rounds to zero, so fewer than three when fewer matter.
        assert len(factors) <= 3 and all(f["text"][-2:] not in ("+0", "-0", ".0") for f in factors)
        if s["scoring_method"] == "model":
            assert all(round(f["points"]) != 0 and f["text"].endswith(f"{f['points']:+.0f}") for f in factors)
        else:
            assert all(f["points"] > 0 for f in factors)
    # Tiers: rank by the booster's score (the engagement score for baseline tenants) within the tenant; the share of
    # leads ranked strictly higher, plus the lead itself: A <= 10%, B <= 30%, C <= 60%, else D.
    from ml.train import TrainedModel

    production = TrainedModel.load(
        settings.models_dir / json.loads((settings.models_dir / "production.json").read_text())["version"]
    )
    newest = newest.reset_index(drop=True)
    key = dict(zip(zip(newest["tenant_id"], newest["lead_id"]), production.raw_score(newest)))
    baseline_key = dict(zip(zip(newest["tenant_id"], newest["lead_id"]), newest[ls.BASELINE]))
    by_tenant: dict[str, list[float]] = {}
    rank = {}
    for s in scores:
        k = (s["tenant_id"], s["lead_id"])
        rank[k] = key[k] if s["scoring_method"] == "model" else baseline_key[k]
        by_tenant.setdefault(s["tenant_id"], []).append(rank[k])
    for values in by_tenant.values():
        values.sort()
    tiers = []
    for s in scores:
        others = by_tenant[s["tenant_id"]]
        share = (len(others) - bisect.bisect_right(others, rank[(s["tenant_id"], s["lead_id"])]) + 1) / len(others)
        expected = "A" if share <= 0.1 else "B" if share <= 0.3 else "C" if share <= 0.6 else "D"
        assert s["tier"] == expected
        tiers.append(s["tier"])
    assert {"A", "B", "C", "D"} <= set(tiers)


def test_tenants_with_too_little_history_are_scored_with_the_baseline(scored):
    settings, _, _, scores, mp = scored
    frame = features(settings)
    newest = frame[frame["snapshot_date"] == frame["snapshot_date"].max()]
    open_leads = newest.groupby("tenant_id").size().sort_values()
    conversions = frame[frame[ls.LABEL] == 1].groupby("tenant_id").size()
    # Defaults (100 leads, 20 conversions): worked out here from the features, not from the code under test.
    expected_baseline = {t for t in open_leads.index if open_leads[t] < 100 or conversions.get(t, 0) < 20}
    on_baseline = {s["tenant_id"] for s in scores if s["scoring_method"] == "baseline"}
    assert on_baseline == expected_baseline
    # Raise the lead threshold above the smallest tenant's open leads: that tenant moves to the baseline.
    smallest = open_leads.index[0]
    mp.setenv("LEADRON_ML_MIN_LEADS", str(int(open_leads.iloc[0]) + 1))
    from orchestration.defs.ml.assets import mart_lead_scores
    from orchestration.lib.resources import WarehouseResource

    # Only the scoring asset (its inputs are built): what the daily build runs after the marts.
    outcome = dg.materialize(
        [mart_lead_scores], resources={"warehouse": WarehouseResource()}, instance=dg.DagsterInstance.ephemeral()
    )
    mp.delenv("LEADRON_ML_MIN_LEADS")
    assert outcome.success
    rows = query(settings, "SELECT DISTINCT tenant_id, scoring_method, model_version FROM marts.mart_lead_scores")
    assert (smallest, "baseline", ls.BASELINE_VERSION) in rows
    assert all(method == "baseline" for tenant, method, _ in rows if tenant == smallest)


def test_features_do_not_leak_the_future(scored, tmp_path):
    """Rewrite every event after a snapshot (retime, retype, delete, add) and rebuild with dbt: no
    feature of that snapshot or an earlier one changes; later snapshots do."""
    settings, _, _, _, mp = scored
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse_path, copy)
    before = features(settings)
    cut = sorted(before["snapshot_date"].unique())[-4]
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM raw.events WHERE occurred_at >= ? AND hash(event_id) % 3 = 0", [cut])
        con.execute(
            "UPDATE raw.events SET event_type = 'email_reply', sentiment = 'positive', "
            "occurred_at = occurred_at + INTERVAL 1 HOUR WHERE occurred_at >= ? AND hash(event_id) % 3 = 1",
            [cut],
        )
        con.execute(
            "INSERT INTO raw.events SELECT * REPLACE ('x' || event_id AS event_id, 'form_submission' AS "
            "event_type, occurred_at + INTERVAL 2 DAY AS occurred_at) FROM raw.events "
            "WHERE occurred_at >= ? AND hash(event_id) % 3 = 2",
            [cut],
        )
    project = leadron_dbt_project()
    with exported({"LEADRON_WAREHOUSE_PATH": str(copy)}):
        dbt_cli(project).cli(
            ["run", "--full-refresh", "--select", "+ml_lead_features", "--vars", json.dumps({"as_of": AS_OF})],
            target_path=project.target_path,
        ).wait()
    with duckdb.connect(str(copy), read_only=True) as con:
        after = ls.load_features(con)
    columns = [c for c in before.columns if c != ls.LABEL]
    old = before[before["snapshot_date"] <= cut][columns].reset_index(drop=True)
    new = after[after["snapshot_date"] <= cut][columns].reset_index(drop=True)
    assert len(old) > 0
    pd.testing.assert_frame_equal(old, new)
    later_old = before[before["snapshot_date"] > cut][columns].reset_index(drop=True)
    later_new = after[after["snapshot_date"] > cut][columns].reset_index(drop=True)
    assert not later_old.equals(later_new), "the rewrite should have changed later snapshots"


def snapshot_dates(as_of: date, count: int = 13, every: int = 28) -> list[date]:
    """The snapshots macros/ml_snapshots.sql defines, computed here in Python: the as-of day and the latest
    `count - 1` days before it that are a multiple of `every` days from 1970-01-01."""
    epoch = date(1970, 1, 1)
    last_grid = (as_of - epoch).days - 1
    last_grid -= last_grid % every
    return sorted({as_of, *(epoch + timedelta(days=last_grid - k * every) for k in range(count - 1))})


def test_features_kept_across_days_equal_a_full_build(scored, tmp_path):
    """A later day (the as-of day moved past a grid day and past a snapshot's 90-day label horizon): the kept
    and newly derived features equal a full build on that day; each run leaves exactly the day's snapshots."""
    settings, _, _, _, _ = scored
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse_path, copy)
    project = leadron_dbt_project()
    first = date(2026, 8, 20)
    last = date(2026, 9, 3)
    # 2026-08-27 is a grid day (day 20,692 = 739 * 28 from 1970-01-01) between the two days; the label horizon of
    # the 2026-06-04 snapshot ends on 2026-09-02 (null on 08-20, labelled on 09-03).
    assert date(2026, 8, 27) in snapshot_dates(last) and date(2026, 8, 27) not in snapshot_dates(first)
    assert date(2026, 6, 4) in snapshot_dates(first)

    def run(as_of: date, *options: str) -> pd.DataFrame:
        with exported({"LEADRON_WAREHOUSE_PATH": str(copy)}):
            dbt_cli(project).cli(
                ["run", *options, "--select", "ml_lead_features", "--vars", json.dumps({"as_of": f"{as_of} 12:00:00"})],
                target_path=project.target_path,
            ).wait()
        with duckdb.connect(str(copy), read_only=True) as con:
            frame = ls.load_features(con)
            (first_lead,) = con.execute("SELECT min(created_at) FROM staging.stg_leadron__leads").fetchone()
        # A snapshot before the first lead has no row.
        expected = [d for d in snapshot_dates(as_of) if d > first_lead.date()]
        assert sorted(pd.to_datetime(frame["snapshot_date"]).dt.date.unique()) == expected, as_of
        return frame

    def labels_of_june_4(frame: pd.DataFrame) -> pd.Series:
        return frame.loc[frame["snapshot_date"] == pd.Timestamp("2026-06-04"), ls.LABEL]

    assert labels_of_june_4(run(first, "--full-refresh")).isna().all()
    kept = run(last)
    labelled = labels_of_june_4(kept)
    assert len(labelled) > 0 and labelled.notna().all()
    pd.testing.assert_frame_equal(kept, run(last, "--full-refresh"), check_exact=True)


def test_the_gate_refuses_a_worse_model(scored):
    """A deliberately weak candidate (one shallow tree) is refused; production and the scores stay."""
    settings, _, _, _, _ = scored
    from orchestration.runner import run_training

    production = json.loads((settings.models_dir / "production.json").read_text())["version"]
    before = query(settings, "SELECT count(*) FROM ml.ml_models")[0][0]
    outcome = run_training(
        settings,
        instance=dg.DagsterInstance.ephemeral(),
        log_level="WARNING",
        hyperparameters={"num_boost_round": 1, "num_leaves": 2, "max_depth": 1},
    )
    assert not outcome.success and outcome.failed_checks == ["ml/lead_score_candidate:beats_production_and_baseline"]
    (weak,) = query_dicts(settings, "SELECT * FROM ml.ml_models ORDER BY trained_at DESC LIMIT 1")
    assert query(settings, "SELECT count(*) FROM ml.ml_models")[0][0] == before + 1
    assert weak["status"] == "refused" and weak["model_version"] != production
    assert weak["roc_auc"] < weak["baseline_roc_auc"] or "production model" in weak["status_reason"]
    assert json.loads((settings.models_dir / "production.json").read_text())["version"] == production
    assert {
        v
        for (v,) in query(
            settings, "SELECT DISTINCT model_version FROM marts.mart_lead_scores WHERE scoring_method = 'model'"
        )
    } == {production}


def test_calibration_repairs_a_class_weighted_booster_on_generated_data(scored):
    """Trained with balanced class weights, the booster's own probabilities are biased upwards; the
    isotonic map learned on the calibration slice lowers the held-back Brier score."""
    from ml.train import fit

    settings, _, _, _, _ = scored
    frame = ls.training_frame(features(settings))
    model = fit(
        frame, ls.LABEL, time_column=ls.TIME_COLUMN, seed=0, params={"is_unbalance": True}, baseline_column=ls.BASELINE
    )
    calibrated, raw = model.evaluation["model"], model.evaluation["uncalibrated"]
    assert calibrated["brier"] < raw["brier"]
    assert calibrated["roc_auc"] == pytest.approx(raw["roc_auc"], abs=0.01)  # a monotone map keeps the ranking


def test_drift_sensor_requests_training_only_above_the_threshold(scored):
    settings, _, _, _, _ = scored
    from orchestration.defs.ml.jobs import score_drift_sensor, train_job

    sensor = score_drift_sensor(train_job())
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["marts", "mart_lead_scores"])
    results = []
    for psi in (0.05, 0.31):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={"score_psi_vs_training": psi}))
        context = dg.build_sensor_context(instance=instance, cursor=results[-1][1] if results else None)
        result = sensor.evaluate_tick(context)
        results.append((result, context.cursor))
    assert not results[0][0].run_requests and "within 0.2" in results[0][0].skip_message
    assert len(results[1][0].run_requests) == 1
    # The same scores are not evaluated twice.
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=results[1][1]))
    assert not again.run_requests
