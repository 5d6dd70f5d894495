"""Train / calibration / test split: by time when a time column is given (the latest rows are held back),
else random and stratified by the label. Deterministic for a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row positions
    calibration: np.ndarray
    test: np.ndarray
    method: str
    test_from: str | None = None  # first time value of the held-back period


def _time_cut(times: pd.Series, fraction: float) -> object:
    """The earliest time value such that rows at or after it are about `fraction` of all rows (whole
    time values only, so one snapshot is never split between two parts)."""
    counts = times.value_counts().sort_index(ascending=False)
    share = counts.cumsum() / counts.sum()
    reached = share[share >= fraction]
    return reached.index[0] if len(reached) else counts.index[-1]


def split_rows(
    frame: pd.DataFrame,
    label: str,
    time_column: str | None,
    seed: int,
    test_fraction: float = 0.2,
    calibration_fraction: float = 0.2,
) -> Split:
    positions = np.arange(len(frame))
    if time_column is not None:
        times = frame[time_column]
        if times.nunique() < 3:
            raise ValueError(f"{time_column}: a time-ordered split needs at least 3 distinct values")
        test_from = _time_cut(times, test_fraction)
        rest = times < test_from
        calibration_from = _time_cut(times[rest], calibration_fraction)
        train = positions[(times < calibration_from).to_numpy()]
        calibration = positions[(rest & (times >= calibration_from)).to_numpy()]
        test = positions[(times >= test_from).to_numpy()]
        return Split(train, calibration, test, "time", str(test_from))
    y = frame[label].to_numpy()
    rest, test = train_test_split(positions, test_size=test_fraction, random_state=seed, stratify=y)
    train, calibration = train_test_split(rest, test_size=calibration_fraction, random_state=seed, stratify=y[rest])
    return Split(np.sort(train), np.sort(calibration), np.sort(test), "random_stratified")
