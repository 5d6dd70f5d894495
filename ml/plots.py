"""Reliability and lift charts of an evaluation (PNG bytes), for the model card and the Dagster UI."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def reliability_png(evaluation: dict) -> bytes:
    """Mean predicted vs observed rate per decile, model and baseline, against the diagonal."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    top = 0.0
    for key, style in (("model", "o-"), ("baseline", "s--")):
        if key in evaluation:
            rows = evaluation[key]["deciles"]
            x = [r["mean_predicted"] for r in rows]
            y = [r["observed_rate"] for r in rows]
            top = max(top, *x, *y)
            ax.plot(x, y, style, label=f"{key} (Brier {evaluation[key]['brier']:.4f})")
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="perfect calibration")
    ax.set_xlabel("mean predicted probability (decile)")
    ax.set_ylabel("observed conversion rate")
    ax.set_title("Reliability on the held-back period")
    ax.legend(fontsize=8)
    return _png(fig)


def lift_png(evaluation: dict) -> bytes:
    """Lift per decile (bars) for the model and the baseline."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    width = 0.4
    for offset, key in ((-width / 2, "model"), (width / 2, "baseline")):
        if key in evaluation:
            rows = evaluation[key]["deciles"]
            ax.bar(
                [r["decile"] + offset for r in rows],
                [r["lift"] for r in rows],
                width=width,
                label=f"{key} (ROC-AUC {evaluation[key]['roc_auc']:.3f})",
            )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("decile of predicted probability (1 = highest)")
    ax.set_ylabel("lift over the base rate")
    ax.set_title("Lift by decile on the held-back period")
    ax.legend(fontsize=8)
    return _png(fig)
