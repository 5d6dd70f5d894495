"""The column-wise factor texts and JSON equal a plain per-lead reading of the same contributions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from leadron.score_factors import SCORE_COMPONENTS, baseline_factors, describe, model_factors, round_tenths


def reference_model_factors(frame, raw, contributions, names):
    """Lead by lead, in plain Python: the three largest |points|, stable on ties, rounded; zeros left out."""
    out = []
    for i in range(len(frame)):
        p_all = 1 / (1 + np.exp(-raw[i]))
        points = [100.0 * (p_all - 1 / (1 + np.exp(-(raw[i] - contributions[i, j])))) for j in range(len(names))]
        order = sorted(range(len(names)), key=lambda j: -abs(points[j]))[:3]  # sorted() is stable
        factors = []
        for j in order:
            p = float(np.round(points[j], 1))
            if np.rint(p) == 0:
                continue
            value = frame[names[j]].iloc[i]
            value = None if pd.isna(value) else (value.item() if isinstance(value, np.generic) else value)
            factors.append({"feature": names[j], "points": p, "text": f"{describe(names[j], value)}: {p:+.0f}"})
        out.append(factors)
    return out


def sample_leads(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "days_since_last_reply": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "replies_total": rng.integers(0, 3, n).astype("float64"),
            "lead_source": rng.choice(["webinar", "referral"], n).astype(object),
            "score_open": rng.choice([0.0, 0.25, 1.5, 2.0], n),
            **{name: rng.choice([0.0, 0.04, 0.05, 0.3, 1.26], n) for name in SCORE_COMPONENTS if name != "score_open"},
        }
    )
    frame.loc[rng.random(n) < 0.2, "days_since_last_reply"] = pd.NA
    frame.loc[rng.random(n) < 0.1, "replies_total"] = np.nan
    frame.loc[rng.random(n) < 0.1, "lead_source"] = None
    return frame


def test_model_factors_equal_the_per_lead_reference():
    frame = sample_leads(3000, seed=1)
    names = ["days_since_last_reply", "replies_total", "lead_source", "score_open"]
    rng = np.random.default_rng(2)
    # Contributions on a coarse grid: ties in |points|, factors that round to 0 and to +-0.5 points.
    contributions = rng.choice([-0.6, -0.02, 0.0, 0.0, 0.01, 0.02, 0.3, 0.6, 1.1], (len(frame), len(names)))
    contributions[:50] = 0.0  # leads no feature moves: no factor at all
    raw = contributions.sum(axis=1) + rng.choice([-2.0, -0.5, 0.4], len(frame))
    got = model_factors(frame, np.arange(len(frame)), raw, contributions, names)
    # By group: rows 0 and 1 given the contributions of rows 2 and 3 read as theirs.
    group = np.r_[2, 3, 2, 3, np.arange(4, len(frame))]
    by_group = model_factors(frame, group, raw, contributions, names)
    again = reference_model_factors(frame, raw[group], contributions[group], names)
    assert [json.loads(j) for j in by_group.json] == again
    expected = reference_model_factors(frame, raw, contributions, names)
    assert [json.loads(j) for j in got.json] == expected
    for k in range(3):
        assert list(got.texts[k]) == [f[k]["text"] if len(f) > k else None for f in expected]
    assert all(j == "[]" for j in got.json[:50])
    assert {len(f) for f in expected} == {0, 1, 2, 3}  # every count of factors occurs


def test_baseline_factors_equal_the_per_lead_reference():
    frame = sample_leads(2000, seed=3)
    got = baseline_factors(frame)
    names = list(SCORE_COMPONENTS)
    for i in range(len(frame)):
        values = [float(frame[n].iloc[i]) for n in names]
        order = sorted(range(len(names)), key=lambda j: -values[j])[:3]
        expected = [
            {
                "feature": names[j],
                "points": round(values[j], 1),
                "text": f"recent {SCORE_COMPONENTS[names[j]]}: +{values[j]:.1f} engagement",
            }
            for j in order
            if round(values[j], 1) > 0
        ]
        assert json.loads(got.json[i]) == expected, i
        assert [got.texts[k][i] for k in range(3)] == [f["text"] for f in expected] + [None] * (3 - len(expected))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50))
def test_round_tenths_is_pythons_round(values):
    # Halves written in decimal (0.25, 2.675) are where binary scaling and correct rounding part ways.
    values = values + [0.25, 0.35, 2.675, 1.05, 0.15, 1234.45]
    assert round_tenths(np.array(values)).tolist() == [round(v, 1) for v in values]
