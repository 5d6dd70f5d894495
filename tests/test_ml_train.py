"""ml.train.fit on plain DataFrames: types handled by itself, deterministic, calibrated, honest figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml import explain as ml_explain
from ml.evaluate import deciles, evaluate, population_stability_index
from ml.train import TrainedModel, fit


def synthetic(n: int = 12_000, seed: int = 5) -> pd.DataFrame:
    """Labels drawn from a known logistic model over a number (with gaps), a count, a text and a flag."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "activity": rng.normal(size=n),
            "visits": rng.poisson(2, n),
            "source": rng.choice(["webinar", "outbound", "referral", None], n),
            "is_vip": rng.random(n) < 0.1,
            "week": np.repeat(pd.date_range("2026-01-05", periods=12, freq="7D").date, n // 12),
        }
    )
    frame.loc[rng.random(n) < 0.15, "activity"] = np.nan
    logit = (
        -2.0
        + 1.3 * frame["activity"].fillna(-1)
        + 0.25 * frame["visits"]
        + 0.9 * (frame["source"] == "referral")
        + 0.7 * frame["is_vip"]
    )
    frame["converted"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def auc_by_pairs(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC from its definition: the share of (positive, negative) pairs ranked right, ties half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    order = np.sort(neg)
    below = np.searchsorted(order, pos, side="left")
    equal = np.searchsorted(order, pos, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def model() -> tuple[TrainedModel, pd.DataFrame]:
    frame = synthetic()
    frame["baseline"] = frame["activity"].fillna(0)
    return fit(frame, "converted", time_column="week", seed=0, baseline_column="baseline"), frame


def test_same_data_and_seed_give_the_same_model_bit_for_bit(model):
    trained, frame = model
    again = fit(frame, "converted", time_column="week", seed=0, baseline_column="baseline")
    assert again.booster.model_to_string() == trained.booster.model_to_string()
    assert again.version == trained.version
    assert np.array_equal(again.predict_proba(frame), trained.predict_proba(frame))
    other_seed = fit(
        frame, "converted", time_column="week", seed=1, baseline_column="baseline", params={"feature_fraction": 0.5}
    )
    assert other_seed.version != trained.version


def test_types_are_handled_without_preparation(model):
    trained, frame = model
    assert set(trained.features) == {"activity", "visits", "source", "is_vip", "baseline"}
    assert trained.schema.categorical["source"] == ["outbound", "referral", "webinar"]
    # Unseen category, missing number, None text, text digits for a number: still one probability each.
    odd = pd.DataFrame(
        {
            "activity": [np.nan, "1.5"],
            "visits": [3, None],
            "source": ["partner", None],
            "is_vip": [True, False],
            "baseline": [0.0, 1.0],
        }
    )
    p = trained.predict_proba(odd)
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()


def test_identifier_like_text_and_timestamps_are_left_out():
    frame = synthetic(3000)
    frame["lead_id"] = [f"lead-{i}" for i in range(len(frame))]
    frame["seen_at"] = pd.Timestamp("2026-01-01")
    trained = fit(frame, "converted", seed=0)
    assert "lead_id" not in trained.features and "seen_at" not in trained.features
    assert set(trained.evaluation["dropped_columns"]) == {"lead_id", "seen_at"}


def test_time_split_holds_back_the_latest_period(model):
    trained, frame = model
    split = trained.evaluation["split"]
    assert split["method"] == "time"
    weeks = sorted(frame["week"].unique())
    # 12 equal weeks: the last 20% is weeks 10..12 (3 weeks >= 20%), calibration the 2 weeks before.
    assert split["test_from"] == str(weeks[9])
    assert split["test_rows"] == 3 * 1000 and split["calibration_rows"] == 2 * 1000 and split["train_rows"] == 7 * 1000


def test_random_split_is_stratified():
    frame = synthetic(6000).drop(columns=["week"])
    trained = fit(frame, "converted", seed=3)
    split = trained.evaluation["split"]
    assert split["method"] == "random_stratified" and split["test_rows"] == 1200
    assert abs(trained.evaluation["model"]["positive_rate"] - frame["converted"].mean()) < 0.002


def test_evaluation_figures_match_an_independent_computation(model):
    trained, frame = model
    test = frame[frame["week"].astype(str) >= trained.evaluation["split"]["test_from"]]
    y, p = test["converted"].to_numpy(), trained.predict_proba(test)
    figures = trained.evaluation["model"]
    assert figures["rows"] == len(test) and figures["positives"] == int(y.sum())
    assert figures["roc_auc"] == pytest.approx(auc_by_pairs(y, p), abs=1e-6)
    assert figures["brier"] == pytest.approx(float(np.mean((p - y) ** 2)), abs=1e-6)
    top = np.argsort(-p, kind="stable")[: len(p) // 10]
    assert figures["deciles"][0]["observed_rate"] == pytest.approx(y[top].mean(), abs=1e-6)
    assert figures["deciles"][-1]["cumulative_gain"] == 1.0
    # The model knows the generating features, so it beats a baseline that sees only one of them.
    assert figures["roc_auc"] > trained.evaluation["baseline"]["roc_auc"]


def test_probabilities_are_calibrated(model):
    trained, frame = model
    table = trained.evaluation["model"]["deciles"]
    # Held-back period: per decile, predicted and observed rates agree within 3.5 standard errors of the
    # observed proportion (plus 0.01 for the step function's resolution).
    for row in table:
        p, n = row["observed_rate"], row["rows"]
        assert abs(row["mean_predicted"] - p) < 3.5 * (p * (1 - p) / n) ** 0.5 + 0.01, row
    observed = sum(r["observed_rate"] * r["rows"] for r in table)
    predicted = sum(r["mean_predicted"] * r["rows"] for r in table)
    assert abs(predicted - observed) / observed < 0.1


def test_explanations_add_up_to_the_raw_score(model):
    trained, frame = model
    explained = trained.explain(frame.head(50))
    assert list(explained.columns) == [*trained.features, "bias"]
    assert np.allclose(explained.sum(axis=1).to_numpy(), trained.raw_score(frame.head(50)))


def test_explain_equals_pred_contrib_on_every_row(model):
    # explain() computes contributions once per decision pattern; LightGBM's own pred_contrib on every row
    # is the reference. Exact zeros, values on a threshold and unseen categories are edge cases of the keys.
    trained, frame = model
    rows = frame.copy()
    rows.loc[rows.index[:300], "activity"] = 0.0
    thresholds = ml_explain.split_thresholds(trained.booster)
    on_cut = thresholds[trained.features.index("activity")]
    rows.loc[rows.index[300 : 300 + len(on_cut)], "activity"] = on_cut
    rows.loc[rows.index[400:450], "source"] = "trade show"
    X = trained.schema.transform(rows)
    expected = trained.booster.predict(X, pred_contrib=True)
    # Tree by tree, the sums are added in another order than LightGBM's: equal to the last bits.
    assert np.allclose(trained.explain(rows).to_numpy(), expected, rtol=0, atol=1e-12)
    group, raw, _ = trained.explain_grouped(rows)
    assert np.array_equal(raw[group], trained.raw_score(rows))  # scores are LightGBM's own, bit for bit
    keys = ml_explain.decision_keys(trained.booster, X)
    group, first = ml_explain.decision_groups(keys)
    assert len(first) == np.unique(keys, axis=1).shape[1] < len(rows)  # the reuse happened: fewer patterns than rows
    assert (keys[:, first][:, group] == keys).all()


def test_explain_of_trees_too_large_to_pack_is_pred_contrib():
    # More than MAX_TREE_SPLITS splits a tree: the contributions come from pred_contrib on the distinct rows.
    frame = synthetic(3600)
    trained = fit(
        frame, "converted", time_column="week", params={"num_leaves": 64, "max_depth": -1, "min_data_in_leaf": 5}
    )
    assert max(map(len, ml_explain.tree_splits(trained.booster))) > ml_explain.MAX_TREE_SPLITS
    expected = trained.booster.predict(trained.schema.transform(frame), pred_contrib=True)
    assert np.array_equal(trained.explain(frame).to_numpy(), expected)


def test_saved_model_predicts_the_same(model, tmp_path):
    trained, frame = model
    trained.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    assert loaded.version == trained.version
    assert np.array_equal(loaded.predict_proba(frame), trained.predict_proba(frame))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["version"] == trained.version


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0, 1, None, 1], "1 missing values"),
        ([0, 1, 2, 1], "only 0 and 1"),
    ],
)
def test_bad_labels_are_named(bad, message):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": bad})
    with pytest.raises(ValueError, match=message):
        fit(frame, "y")
    with pytest.raises(ValueError, match="'nope' is not in the frame"):
        fit(frame, "nope")


def test_deciles_and_psi():
    assert deciles(np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2, 0.8, 0.6, 0.4, 0.0])).tolist() == [
        1,
        9,
        5,
        3,
        7,
        8,
        2,
        4,
        6,
        10,
    ]
    rng = np.random.default_rng(0)
    base = rng.beta(2, 8, 20_000)
    assert population_stability_index(base, rng.beta(2, 8, 20_000)) < 0.01
    assert population_stability_index(base, rng.beta(4, 6, 20_000)) > 0.2
    with pytest.raises(ValueError, match="both classes"):
        evaluate(np.zeros(10), np.linspace(0, 1, 10))


def test_a_known_signal_is_found_and_noise_is_not():
    rng = np.random.default_rng(7)
    n = 8000
    x = rng.normal(size=(n, 4))
    strong = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    strong["y"] = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=n) > 1.0).astype(int)
    assert fit(strong, "y", seed=0).evaluation["model"]["roc_auc"] > 0.95
    noise = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    noise["y"] = (rng.random(n) < 0.2).astype(int)
    assert 0.45 < fit(noise, "y", seed=0).evaluation["model"]["roc_auc"] < 0.55


def _breast_cancer() -> tuple[pd.DataFrame, str]:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame, "target"  # 569 real tumours, 30 measurements


def _digits() -> tuple[pd.DataFrame, str]:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame  # 1,797 real handwritten digits, 64 pixels
    frame["target"] = (frame["target"] < 5).astype(int)
    return frame, "target"


def _leads() -> tuple[pd.DataFrame, str]:
    return synthetic(), "converted"


@pytest.mark.parametrize("table", [_breast_cancer, _digits, _leads], ids=["breast_cancer", "digits", "leads"])
def test_at_least_as_good_as_a_plain_lightgbm_on_the_same_split(table):
    """A user's comparison: a default-configured LGBMClassifier fitted on the same training rows, both scored
    on the same held-back rows. fit's search and calibration must not lose to it."""
    from lightgbm import LGBMClassifier
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from ml.split import split_rows

    frame, label = table()
    time_column = "week" if "week" in frame else None
    model = fit(frame, label, time_column=time_column, seed=0)
    parts = split_rows(frame.reset_index(drop=True), label, time_column, 0)
    X, y = model.schema.transform(frame), frame[label].to_numpy()
    training = np.sort(np.concatenate([parts.train, parts.calibration]))
    plain = LGBMClassifier(random_state=0, verbose=-1).fit(X.iloc[training], y[training])
    held = parts.test
    ours, theirs = model.predict_proba(frame.iloc[held]), plain.predict_proba(X.iloc[held])[:, 1]
    assert roc_auc_score(y[held], ours) >= roc_auc_score(y[held], theirs) - 0.005
    assert brier_score_loss(y[held], ours) <= brier_score_loss(y[held], theirs)
    search = model.evaluation["search"]
    assert len(search["trials"]) == 4 and search["chosen"]["num_boost_round"] >= 1  # the card records the search
    assert model.evaluation["calibration"]["method"] in ("isotonic", "none")


def test_calibration_is_kept_only_where_it_lowers_validation_brier(model):
    trained, _ = model
    calibration = trained.evaluation["calibration"]
    kept = calibration["method"] == "isotonic"
    assert kept == (calibration["validation_brier_isotonic_crossfitted"] < calibration["validation_brier_uncalibrated"])
