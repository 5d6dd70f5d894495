"""Calibration maps from the booster's raw score (log-odds) to a probability, serialisable: isotonic (two short
lists, the fitted step function) or none (the booster's own sigmoid, kept when isotonic does not help)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression


@dataclass(frozen=True)
class Isotonic:
    x: list[float]
    y: list[float]

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> Isotonic:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        iso.fit(np.asarray(scores, dtype="float64"), np.asarray(labels, dtype="float64"))
        return cls([float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_])

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        # np.interp clips outside the fitted range, as out_of_bounds="clip" does.
        return np.interp(np.asarray(scores, dtype="float64"), self.x, self.y)

    def to_dict(self) -> dict:
        return {"method": "isotonic", "x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, data: dict) -> Isotonic:
        return cls(list(data["x"]), list(data["y"]))


@dataclass(frozen=True)
class Sigmoid:
    """No calibration: the booster's own probability, 1 / (1 + e^-raw)."""

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype="float64")))

    def to_dict(self) -> dict:
        return {"method": "none"}


def calibrator_from_dict(data: dict) -> Isotonic | Sigmoid:
    return Sigmoid() if data.get("method") == "none" else Isotonic.from_dict(data)
